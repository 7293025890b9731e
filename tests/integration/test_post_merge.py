"""Post-merge verification on the sample repository: real git, the local forge, and the tests
run by the real sandbox image's `check` at the merge commit.

A merge that adds a failing test (its pre-merge checks faked green, as a flaky test or a
change in the environment would leave them) is reverted through a new PR whose tree is the
default branch before the merge, counted once as an escaped defect, and its ticket goes
``reverted``; the revert PR's ticket is in ``pr_open`` and the next governance run reviews it.
A clean merge is ``verified``. Re-running the conclusion changes nothing.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select
from triloop.adapters.git import git
from triloop.bootstrap import App
from triloop.domain.contracts import VerificationRequest
from triloop.domain.policy import RepoPolicy
from triloop.governance.postmerge import (
    VerificationError,
    conclude,
    prepare_verification,
    select_merges,
)
from triloop.governance.service import decide, human_verdict, merge, prepare_review, select_reviews
from triloop.status import read_status
from triloop.store.models import CheckRun, EscapedDefect, LedgerEntry, PullRequest, Repo, Ticket
from triloop_airflow.ui_html import render
from triloop_sandbox import SandboxOperator

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs, _pr_for_first_ticket
from tests.integration.test_governance_trust import _push_to_pr

pytestmark = pytest.mark.docker

FAILING = "tests/test_escape.py::test_escaped_defect"
ESCAPE = "def test_escaped_defect() -> None:\n    assert sum([1, 1]) == 3\n"


def _merged_pr(app: App, tmp: Path, files: dict[str, str] | None = None) -> tuple[str, int]:
    """An autofix PR (plus ``files`` pushed to it) that governance merges at autonomy 2."""
    app.policy.repos["sample"] = RepoPolicy(autonomy_level=2)
    repo_id, number = _pr_for_first_ticket(app, tmp)
    if files:
        _push_to_pr(app, tmp, number, files)
    reviewer = _actor("gov-1", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, reviewer)
    _fake_sandbox_outputs(review)  # the pre-merge checks said green
    decision = decide(app, review, reviewer)
    if not files:  # the reproduced autofix alone: low risk, merged by policy
        assert decision.outcome == "auto_merge", decision.reasons
        assert merge(app, decision, reviewer) is not None
        return repo_id, number
    # Files the ticket does not name: a person decides, and approves here.
    assert decision.outcome == "needs_human", decision.reasons
    assert any(r.startswith("scope: ") for r in decision.reasons), decision.reasons
    assert human_verdict(app, decision, "Approve", _actor("gov-1", "human_review")) is not None
    return repo_id, number


def _verify(app: App, image: str, repo_id: str, number: int) -> VerificationRequest:
    verifier = _actor("verify-1", "prepare_verification")
    assert select_merges(app, verifier) == [{"repo_id": repo_id, "number": number}]
    request = prepare_verification(app, repo_id, number, verifier)
    assert git("rev-parse", "HEAD", cwd=Path(request.workspace)) == request.merge_sha
    SandboxOperator(
        task_id="run_tests",
        command=["check", "--out", "/out"],
        workspace=request.workspace,
        output_dir=request.tests_out,
        workspace_root=str(app.settings.workspaces_dir),
        image=image,
        ticket_id=request.ticket_id,
    ).execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
    return request


def _footprint(app: App) -> tuple[object, ...]:
    with app.uow() as session:
        tickets = sorted((t.id, t.state) for t in session.scalars(select(Ticket)))
        prs = sorted(
            (p.number, p.branch, p.head_sha, p.state) for p in session.scalars(select(PullRequest))
        )
        defects = session.scalar(select(func.count()).select_from(EscapedDefect))
        acted = session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(or_(LedgerEntry.idempotency_key.is_not(None), LedgerEntry.to_state.is_not(None)))
        )
        remote = session.get_one(Repo, "sample").remote
    refs = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=Path(remote))
    return tickets, prs, defects, acted, refs


def test_a_red_merge_is_reverted_through_a_pr_and_counted_once(
    app: App, tmp_path: Path, sandbox_image: str
) -> None:
    repo_id, number = _merged_pr(app, tmp_path, {"tests/test_escape.py": ESCAPE})
    request = _verify(app, sandbox_image, repo_id, number)
    checks = json.loads(Path(request.tests_out, "checks.json").read_text())
    assert FAILING in next(c for c in checks["checks"] if c["check_id"] == "tests")["rule_ids"]

    concluder = _actor("verify-1", "conclude")
    result = conclude(app, request, concluder)
    assert (result.outcome, result.failing_tests) == ("reverted", [FAILING])
    assert result.revert is not None
    before = _footprint(app)
    assert conclude(app, request, _actor("verify-1", "conclude")) == result  # a cleared re-run
    assert _footprint(app) == before

    with app.uow() as session:
        original = session.get_one(Ticket, request.ticket_id)
        revert_ticket = session.get_one(Ticket, result.revert.ticket_id)
        revert_pr = session.scalars(
            select(PullRequest).where(PullRequest.number == result.revert.number)
        ).one()
        [defect] = session.scalars(select(EscapedDefect)).all()
        remote = session.get_one(Repo, repo_id).remote
        moves = session.scalars(
            select(LedgerEntry.action)
            .where(LedgerEntry.ticket_id == revert_ticket.id)
            .order_by(LedgerEntry.id)
        ).all()
    assert original.state == "reverted"
    assert (revert_ticket.state, revert_ticket.rule, revert_ticket.harness) == (
        "pr_open",
        "triloop.revert",
        "revert",
    )
    assert list(moves) == ["ticket.create", "forge.push", "ticket.open_revert", "forge.open_pr"]
    assert revert_pr.state == "open" and revert_pr.branch == f"triloop/revert-{original.id.lower()}"
    assert FAILING in revert_pr.body and f"#{number}" in revert_pr.title
    assert (defect.number, defect.merge_sha, defect.failing_tests) == (
        number,
        request.merge_sha,
        [FAILING],
    )
    assert (defect.revert_number, defect.verification_run) == (
        revert_pr.number,
        "triloop_test/verify-1",
    )
    # The revert's tree is the default branch before the merge: its diff undoes the merge.
    head = git("rev-parse", f"refs/heads/{revert_pr.branch}", cwd=Path(remote))
    assert git("rev-parse", f"{head}^{{tree}}", cwd=Path(remote)) == git(
        "rev-parse", f"{request.merge_sha}^1^{{tree}}", cwd=Path(remote)
    )
    assert git("log", "-1", "--format=%an %s", head, cwd=Path(remote)).startswith("Triloop Revert")

    # Through governance again: the next run reviews the revert, never as a low-risk autofix.
    reviewer = _actor("gov-2", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": revert_pr.number}]
    review = prepare_review(app, repo_id, revert_pr.number, reviewer)
    _fake_sandbox_outputs(review)
    decision = decide(app, review, reviewer)
    assert (decision.outcome, decision.risk) == ("needs_human", "medium"), decision.reasons
    assert "path: source change by revert (inventory/models.py)" in decision.reasons
    with app.uow() as session:
        ruff = session.scalars(
            select(CheckRun).where(
                CheckRun.check_id == "ruff", CheckRun.run_id == "triloop_test/gov-2"
            )
        ).one()
    assert ruff.status == "passed" and ruff.excerpt.startswith("restored by the revert")
    assert ruff.rule_ids  # the finding the autofix removed is back, and named

    report = read_status(app)
    assert report.verification == {"verified": 0, "reverted": 1, "escaped_defects": 1}
    assert "0 verified, 1 reverted,\n1 escaped defects" in render(report)  # the UI page


def test_a_green_merge_is_verified(app: App, tmp_path: Path, sandbox_image: str) -> None:
    repo_id, number = _merged_pr(app, tmp_path)
    request = _verify(app, sandbox_image, repo_id, number)
    result = conclude(app, request, _actor("verify-1", "conclude"))
    assert (result.outcome, result.failing_tests, result.revert) == ("verified", [], None)
    with app.uow() as session:
        assert session.get_one(Ticket, request.ticket_id).state == "verified"
        assert session.scalar(select(func.count()).select_from(EscapedDefect)) == 0
        assert len(session.scalars(select(PullRequest)).all()) == 1
    assert select_merges(app, _actor("verify-2")) == []  # verified: never picked again
    assert read_status(app).verification == {"verified": 1, "reverted": 0, "escaped_defects": 0}


def test_tests_that_did_not_run_refuse_the_verification_and_change_nothing(
    app: App, tmp_path: Path
) -> None:
    repo_id, number = _merged_pr(app, tmp_path)
    request = prepare_verification(app, repo_id, number, _actor("verify-1"))
    before = _footprint(app)
    with pytest.raises(VerificationError, match=rf"PR #{number} in sample: tests did not run"):
        conclude(app, request, _actor("verify-1", "conclude"))
    assert _footprint(app) == before
    with app.uow() as session:
        row = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()
        assert row is not None and (row.action, row.outcome) == ("postmerge.verify", "refused")
        assert "checks.json unreadable" in (row.error or "")
    with pytest.raises(VerificationError, match=r"pull request #99 in repo 'sample' does not"):
        prepare_verification(app, repo_id, 99, _actor("verify-1"))
