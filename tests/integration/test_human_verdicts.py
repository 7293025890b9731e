"""A human's verdict through the control plane: approve merges, request changes sends the ticket
back to ready with the feedback (dead letter once attempts are spent), reject closes it and starts
its cooldown; a CI change is high risk and waits for a human even at autonomy level 3."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from triloop.adapters.git import git
from triloop.bootstrap import App
from triloop.domain.contracts import Decision
from triloop.domain.policy import RepoPolicy
from triloop.errors import PermanentError
from triloop.governance.service import decide, prepare_review, select_reviews
from triloop.governance.verdicts import (
    APPROVE,
    REJECT,
    REQUEST_CHANGES,
    apply_verdict,
    review_feedback,
)
from triloop.store.models import Effect, LedgerEntry, PullRequest, Repo, Ticket

from tests.integration.test_control_plane import (
    _actor,
    _fake_sandbox_outputs,
    _host_scan,
    _pr_for_first_ticket,
)

REVIEWER = _actor("gov-1", "decide")


def _review(app: App, tmp_path: Path, level: int = 1) -> Decision:
    app.policy.repos["sample"] = RepoPolicy(autonomy_level=level)
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    assert select_reviews(app, REVIEWER) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, REVIEWER)
    _fake_sandbox_outputs(review, "passed")
    return decide(app, review, REVIEWER)


def _state(app: App) -> tuple[str, str, str | None]:
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        ticket = session.get_one(Ticket, pr.ticket_id)
        return pr.state, ticket.state, ticket.last_error


@pytest.mark.parametrize(
    ("chosen", "pr_state", "ticket_state"),
    [
        (APPROVE, "merged", "merged"),
        (REQUEST_CHANGES, "closed", "ready"),
        (REJECT, "closed", "closed"),
    ],
)
def test_each_verdict_applies_once(
    app: App, tmp_path: Path, chosen: str, pr_state: str, ticket_state: str
) -> None:
    decision = _review(app, tmp_path)
    assert decision.outcome == "needs_human"
    human = _actor("gov-1", "human_review")
    first = apply_verdict(app, decision, chosen, human, feedback="use a set", by="ana")
    assert first["applied"] is True and first["ticket_state"] == ticket_state
    state = _state(app)
    assert state[:2] == (pr_state, ticket_state)
    with app.uow() as session:
        ledger = len(session.scalars(select(LedgerEntry)).all())
    # Cleared and re-run (the same run), or a different answer recorded late: nothing changes.
    assert apply_verdict(app, decision, chosen, human, feedback="use a set", by="ana") == first
    assert apply_verdict(app, decision, REJECT, human) == first
    assert _state(app) == state
    with app.uow() as session:
        assert len(session.scalars(select(LedgerEntry)).all()) == ledger
        verdicts = session.scalars(select(Effect).where(Effect.kind == "verdict")).all()
        assert len(verdicts) == 1


def test_request_changes_reaches_the_next_harness_run(app: App, tmp_path: Path) -> None:
    from triloop.execution.service import claim, prepare

    decision = _review(app, tmp_path)
    human = _actor("gov-1", "human_review")
    apply_verdict(app, decision, REQUEST_CHANGES, human, feedback="Keep the import.", by="ana")
    _, state, error = _state(app)
    assert state == "ready" and error == "Request changes by ana: Keep the import."
    claims = claim(app, _actor("exec-2"))
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        assert "ana" in review_feedback(session, pr.ticket_id)
    again = next(c for c in claims if c.ticket_id == pr.ticket_id)
    request = prepare(app, again, _actor("exec-2", "prepare"))
    assert f"- PR #{pr.number} (ana): Keep the import." in request.details
    assert "Reviewer feedback:" in request.details


def test_request_changes_with_attempts_spent_goes_to_dead_letter(app: App, tmp_path: Path) -> None:
    app.policy.max_attempts = 1
    decision = _review(app, tmp_path)
    result = apply_verdict(
        app, decision, REQUEST_CHANGES, _actor("gov-1", "human_review"), feedback="no"
    )
    assert result["ticket_state"] == "dead_letter"
    assert _state(app)[:2] == ("closed", "dead_letter")


def test_timeout_default_requests_changes_with_a_note(app: App, tmp_path: Path) -> None:
    from triloop_airflow.approval import TIMEOUT_FEEDBACK

    decision = _review(app, tmp_path)
    human = _actor("gov-1", "human_review")
    apply_verdict(app, decision, REQUEST_CHANGES, human, feedback=TIMEOUT_FEEDBACK)
    _, state, error = _state(app)
    assert state == "ready" and error == f"Request changes by timeout default: {TIMEOUT_FEEDBACK}"


def test_reject_starts_the_cooldown(app: App, tmp_path: Path) -> None:
    decision = _review(app, tmp_path)
    apply_verdict(app, decision, REJECT, _actor("gov-1", "human_review"), by="ana")
    _host_scan(app, "scan-2")  # the finding is still on the default branch
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        ticket = session.get_one(Ticket, pr.ticket_id)
        quiet = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "suppression.cooldown")
        ).all()
    assert ticket.state == "closed"
    assert ticket.last_error == "Reject by ana"
    assert ticket.key in {row.payload.get("key") for row in quiet}


@pytest.mark.parametrize(
    ("chosen", "message"),
    [("Merge it", r"verdict 'Merge it' on PR #\d+ is not one of"), ("", "is not one of")],
)
def test_an_unknown_verdict_is_refused(app: App, tmp_path: Path, chosen: str, message: str) -> None:
    decision = _review(app, tmp_path)
    with pytest.raises(PermanentError, match=message):
        apply_verdict(app, decision, chosen, _actor("gov-1", "human_review"))
    assert _state(app)[:2] == ("open", "in_review")


def test_a_ci_config_change_waits_for_a_human_at_autonomy_3(app: App, tmp_path: Path) -> None:
    """The corpus case: all checks green, autofix, high confidence, but CI changes: high risk."""
    app.policy.repos["sample"] = RepoPolicy(autonomy_level=3)
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        remote, branch = session.get_one(Repo, repo_id).remote, pr.branch
    clone = tmp_path / "ci-change"
    git("clone", "-q", "--branch", branch, remote, str(clone))
    (clone / ".github" / "workflows").mkdir(parents=True)
    (clone / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    git("add", ".", cwd=clone)
    git("commit", "-q", "-m", "ci", cwd=clone)
    git("push", "-q", "origin", branch, cwd=clone)
    assert select_reviews(app, REVIEWER) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, REVIEWER)
    _fake_sandbox_outputs(review, "passed")
    decision = decide(app, review, REVIEWER)
    assert (decision.outcome, decision.risk) == ("needs_human", "high")
    assert decision.reasons[0] == "high risk needs a human at autonomy level 3"
    assert (
        "path .github/workflows/ci.yml: protected (.github/workflows/**), a human must review it"
        in decision.reasons
    )
    assert _state(app)[:2] == ("open", "in_review")
