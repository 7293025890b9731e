"""A reviewer's "request changes" on a revert PR closes it: execution has no ``revert`` harness.

The revert is opened as post-merge verification opens it (a merge whose tests failed at the
merge commit; its checks.json written on the host here), reviewed by governance, and a person
requests changes. Its ticket is closed with the feedback (never sent to ready, where nothing
could claim it), the PR is closed, a ledger row says why, and a re-run changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.governance.postmerge import conclude, prepare_verification
from triloop.governance.service import decide, prepare_review, select_reviews
from triloop.governance.verdicts import REQUEST_CHANGES, apply_verdict
from triloop.store.models import LedgerEntry, PullRequest, Ticket

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs
from tests.integration.test_post_merge import _merged_pr

FAILING = "tests/test_models.py::test_add_and_count"


def _red_checks(out: str) -> None:
    """What the sandbox's check writes when a test fails at the merge commit."""
    entry: dict[str, object] = {"check_id": "tests", "status": "failed", "suite": "post-merge"}
    entry.update(command="python -m pytest -q", excerpt=f"FAILED {FAILING}", rule_ids=[FAILING])
    Path(out, "checks.json").write_text(json.dumps({"schema_version": 1, "checks": [entry]}))


def test_request_changes_on_a_revert_closes_its_ticket_and_pr(app: App, tmp_path: Path) -> None:
    repo_id, number = _merged_pr(app, tmp_path)
    request = prepare_verification(app, repo_id, number, _actor("verify-1"))
    _red_checks(request.tests_out)
    result = conclude(app, request, _actor("verify-1", "conclude"))
    assert result.outcome == "reverted" and result.revert is not None
    revert_number = result.revert.number

    reviewer = _actor("gov-2", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": revert_number}]
    review = prepare_review(app, repo_id, revert_number, reviewer)
    _fake_sandbox_outputs(review)
    decision = decide(app, review, reviewer)
    assert decision.outcome == "needs_human", decision.reasons

    human = _actor("gov-2", "human_review")
    verdict = apply_verdict(
        app, decision, REQUEST_CHANGES, human, feedback="revert only models.py", by="ana"
    )
    assert (verdict["applied"], verdict["ticket_state"]) == (True, "closed")
    with app.uow() as session:
        ticket = session.get_one(Ticket, result.revert.ticket_id)
        pr = session.scalars(select(PullRequest).where(PullRequest.number == revert_number)).one()
        original = session.get_one(Ticket, request.ticket_id)
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.ticket_id == ticket.id).order_by(LedgerEntry.id)
        ).all()
        ledger = session.scalar(select(func.count()).select_from(LedgerEntry))
    assert (ticket.state, pr.state, original.state) == ("closed", "closed", "reverted")
    assert "revert only models.py" in (ticket.last_error or "")
    actions = [r.action for r in rows]
    assert actions[-4:] == [
        "ticket.request_changes",
        "ticket.wont_fix",
        "governance.close_revert",
        "governance.verdict",
    ]
    closing = rows[-2]
    assert closing.outcome == "closed" and "no harness reworks a revert" in (closing.error or "")
    assert "revert only models.py" in (closing.error or "")

    # Cleared and re-run: the same answer, nothing new written.
    again = apply_verdict(
        app, decision, REQUEST_CHANGES, human, feedback="revert only models.py", by="ana"
    )
    assert again == verdict
    with app.uow() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == ledger
