"""The execution DAG's claim task skips saying why while the circuit breaker is open."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from triloop.bootstrap import App
from triloop.store.ledger import Actor
from triloop.store.models import CircuitBreaker, LedgerEntry

from tests.support.rows import add_ticket

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "triloop_execution.py"


def test_claim_task_skips_with_the_breakers_reason(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowSkipException
    from triloop_airflow import runtime

    add_ticket(app, "T-ready")
    with app.uow() as session:
        session.add(
            CircuitBreaker(
                scope="global",
                state="open",
                opened_at=datetime.now(UTC),
                reason="3 failed harness runs in a row",
            )
        )
    run = Actor(name="airflow:x", dag_id="triloop_execution", run_id="r1", task_id="claim")
    monkeypatch.setattr(runtime, "app", lambda: app)
    monkeypatch.setattr(runtime, "actor", lambda context=None: run)
    task = DagBag(dag_folder=str(DAG_FILE)).dags["triloop_execution"].get_task("claim_tickets")
    with pytest.raises(AirflowSkipException, match=r"circuit breaker open since .*: 3 failed"):
        task.python_callable()  # type: ignore[attr-defined]
    with app.uow() as session:
        paused = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "execution.paused")
        ).one()
    assert paused.run_id == "r1" and "half-opens at" in (paused.error or "")
