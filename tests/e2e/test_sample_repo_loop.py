"""Discovery, execution and governance on a fresh copy of the sample repo, real sandboxes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from triloop.bootstrap import App, bootstrap
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import LedgerEntry, PullRequest, Scan, Ticket

RUFF = str(Path(sys.executable).with_name("ruff"))
pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _run(dags: dict[str, Any], dag_id: str) -> str:
    run = dags[dag_id].test()
    return str(run.state)


def _returned(dag_id: str, task_id: str) -> Any:
    """What ``task_id`` returned in the latest run of ``dag_id`` (its XCom return value)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            select(XComModel)
            .where(XComModel.dag_id == dag_id, XComModel.task_id == task_id)
            .where(XComModel.key == "return_value")
            .order_by(XComModel.timestamp.desc())
        ).first()
        assert row is not None, f"{dag_id}.{task_id} returned nothing"
        return XComModel.deserialize_value(row)


def _ruff_codes(remote: str, path: str, tmp: Path) -> list[str]:
    clone = tmp / "verify"
    subprocess.run(["git", "clone", "-q", remote, str(clone)], check=True)
    out = subprocess.run(
        [RUFF, "check", "--no-cache", "--output-format", "concise", "--exit-zero", path],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split()[1] for line in out.stdout.splitlines() if line.startswith(path)]


def test_findings_become_merged_pull_requests(
    factory: dict[str, Any], triloop_home: Path, tmp_path: Path
) -> None:
    app: App = bootstrap(home=triloop_home)
    repo = onboard(app, str(materialise_sample(app)), name="sample", actor=CLI)

    assert _run(factory, "triloop_discovery") == "success"
    with app.uow() as session:
        tickets = session.scalars(select(Ticket)).all()
        assert len(tickets) >= 3
        before = len(tickets)

    # The triloop://tickets event's extra (what the publishing task set) names every new ticket.
    announced = _returned("triloop_discovery", "publish_tickets")
    assert announced == {"schema_version": 1, "ticket_ids": sorted(t.id for t in tickets)}

    assert _run(factory, "triloop_execution") == "success"
    opened = _returned("triloop_execution", "publish_pull_requests")
    assert len(opened["pull_requests"]) == len([t for t in tickets if t.harness == "autofix"])
    assert _run(factory, "triloop_governance") == "success"

    with app.uow() as session:
        merged = session.scalars(select(PullRequest).where(PullRequest.state == "merged")).all()
        assert merged, "governance merged nothing"
        pr = merged[0]
        ticket = session.get_one(Ticket, pr.ticket_id)
        assert ticket.state == "merged" and ticket.harness == "autofix"
        actions = session.scalars(
            select(LedgerEntry.action)
            .where(LedgerEntry.ticket_id == ticket.id)
            .order_by(LedgerEntry.id)
        ).all()
    # Discovery shows the new ticket in the repository's tracker before execution claims it.
    assert actions[:5] == [
        "ticket.create",
        "ticket.triage_ready",
        "tracker.publish",
        "ticket.claim",
        "ticket.start",
    ]
    assert "forge.merge" in actions and actions[-1] == "forge.merge"

    # The finding is really gone from the default branch of the forge repository.
    assert ticket.rule not in _ruff_codes(repo.remote, ticket.path, tmp_path)

    # PRs whose base moved under them were sent back for a recheck; the next round merges more.
    assert _run(factory, "triloop_governance") == "success"
    with app.uow() as session:
        again = session.scalars(select(PullRequest).where(PullRequest.state == "merged")).all()
        assert len(again) > len(merged)

    # Discovery again: nothing new, and the merged ticket's finding is no longer reported.
    assert _run(factory, "triloop_discovery") == "success"
    with app.uow() as session:
        assert len(session.scalars(select(Ticket)).all()) == before
        latest = session.scalars(select(Scan).order_by(Scan.id.desc())).first()
        assert latest is not None and ticket.key not in latest.ticket_keys
    assert _run(factory, "triloop_janitor") == "success"
