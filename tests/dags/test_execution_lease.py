"""The execution DAG's harness renews its ticket's lease through the Triloop hook."""

from __future__ import annotations

from pathlib import Path

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "triloop_execution.py"


def test_the_harness_renews_its_ticket_lease() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from triloop_airflow.leases import ticket_lease
    from triloop_sandbox import SandboxOperator

    dag = DagBag(dag_folder=str(DAG_FILE)).dags["triloop_execution"]
    harness = dag.get_task("ticket.run_harness")
    assert isinstance(harness, SandboxOperator)
    assert harness.lease is ticket_lease
