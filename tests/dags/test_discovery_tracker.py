"""The discovery DAG shows each repository's new tickets in its tracker in a task of its own."""

from __future__ import annotations

from pathlib import Path

from triloop.retry import POLICIES

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "triloop_discovery.py"


def test_show_in_tracker_follows_the_upsert_with_the_forge_retries() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAG_FILE)).dags["triloop_discovery"]
    show = dag.get_task("repo.show_in_tracker")
    assert show.upstream_task_ids == {"repo.ingest_findings"}
    assert show.retries == POLICIES["forge"].retries
    assert show.pool == "triloop_forge"
    assert "repo.show_in_tracker" not in dag.get_task("publish_tickets").upstream_task_ids
