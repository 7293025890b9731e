"""A human decides in Airflow: on the sample repo at autonomy level 1, governance asks a reviewer
about each pull request; one is approved through the REST API (hitlDetails) and merged, the other
gets "request changes", so its ticket goes back to ready and its next harness run sees the
feedback. Real sandboxes, the real governance DAG under ``dag.test``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from triloop.bootstrap import App, bootstrap
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import LedgerEntry, PullRequest, Ticket

from tests.support.hitl import Reviewer

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]
FEEDBACK = "Keep the public name; fix only the unused import."


@pytest.fixture
def reviewed_by_a_human(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default policy with the sample at autonomy level 1 and two tickets a run."""
    policy = yaml.safe_load((ROOT / "include/policy/default.yaml").read_text())
    policy["claim_batch"] = 2
    policy["repos"]["sample"]["autonomy_level"] = 1
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("TRILOOP_POLICY_PATH", str(path))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")


def _answer(index: int, details: dict[str, Any]) -> dict[str, Any]:
    if index == 0:
        return {"chosen_options": ["Approve"], "params_input": {"feedback": ""}}
    return {"chosen_options": ["Request changes"], "params_input": {"feedback": FEEDBACK}}


@pytest.mark.usefixtures("reviewed_by_a_human")
def test_approve_merges_and_request_changes_sends_back(
    factory: dict[str, Any], triloop_home: Path
) -> None:
    app: App = bootstrap(home=triloop_home)
    onboard(app, str(materialise_sample(app)), name="sample", actor=CLI)
    assert factory["triloop_discovery"].test().state == "success"
    assert factory["triloop_execution"].test().state == "success"
    with app.uow() as session:
        opened = session.scalars(select(PullRequest).order_by(PullRequest.number)).all()
        assert len(opened) == 2

    reviewer = Reviewer("triloop_governance", "pull_request.human_review", _answer, 2).start()
    run = factory["triloop_governance"].test()
    reviewer.join()
    assert reviewer.errors == []
    assert reviewer.status == {0: 200, 1: 200}
    assert str(run.state) == "success"
    body = reviewer.asked[0]["body"]
    assert "| tests | passed |" in body and "**Risk: low.**" in body
    assert "low risk needs a human at autonomy level 1" in body
    assert reviewer.asked[0]["options"] == ["Approve", "Request changes", "Reject"]

    with app.uow() as session:
        prs = session.scalars(select(PullRequest).order_by(PullRequest.number)).all()
        assert sorted(pr.state for pr in prs) == ["closed", "merged"]
        sent_back = next(pr for pr in prs if pr.state == "closed")
        ticket = session.get_one(Ticket, sent_back.ticket_id)
        assert ticket.state == "ready"
        assert ticket.last_error == f"Request changes by Anonymous: {FEEDBACK}"
        verdicts = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "governance.verdict")
        ).all()
        assert sorted(v.payload["chosen"] for v in verdicts) == ["Approve", "Request changes"]
        assert {v.payload["by"] for v in verdicts} == {"Anonymous"}
        ticket_id = ticket.id

    # The next execution run claims the ticket again; its harness request carries the feedback.
    rerun = factory["triloop_execution"].test()
    assert rerun.state == "success"
    requests = [r for r in _prepared(rerun.run_id) if r["ticket_id"] == ticket_id]
    assert requests, "the ticket was not worked again"
    assert FEEDBACK in requests[0]["details"] and "Reviewer feedback:" in requests[0]["details"]


def _prepared(run_id: str) -> list[dict[str, Any]]:
    """The harness requests ``ticket.prepare_workspace`` returned in one execution run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == "triloop_execution",
                XComModel.run_id == run_id,
                XComModel.task_id == "ticket.prepare_workspace",
                XComModel.key == "return_value",
            )
        ).all()
        return [XComModel.deserialize_value(row) for row in rows]
