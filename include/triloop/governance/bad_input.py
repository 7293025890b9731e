"""Bad input on one pull request: a clear error on that PR only, recorded once, nothing else.

- A PR whose branch the forge no longer has (deleted before the review, or between two tries of
  it): :func:`branch_deleted` records a ``governance.branch_deleted`` ledger row naming the PR
  and the branch, closes the PR through the forge, sends its ticket back (attempts bounded,
  dead letter when spent) and returns the :class:`BranchDeleted` error the task fails with.
- A check sandbox that crashed (container error, harness crash, OOM, wall-clock limit): the
  DAG hands ``decide`` the failed task ids and their log URLs; :func:`apply_crashes` replaces
  whatever the crashed sandbox's output directory still holds (an earlier try's files prove
  nothing) with an ``error`` result naming the task and its log.

An ``error`` result blocks like a failure but sends the ticket back instead of closing it
(triloop.governance.risk.retry_when_blocked): the crash is no verdict on the change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.orm import Session

from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import CheckResult
from triloop.domain.states import PullRequestState, TicketState
from triloop.domain.unsafe_chars import escape_name
from triloop.errors import PermanentError
from triloop.forges import forge_for
from triloop.store import effects
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import PullRequest, Repo, Ticket

log = logging.getLogger(__name__)

SANDBOX_CHECKS: dict[str, str] = {
    "analyze_base": "scan",
    "analyze_merged": "scan",
    "tests_base": "tests-base",
    "run_tests": "tests",
    "tests_guard": "tests-base",
    "reproduce_autofix": "reproduction",
    "llm_review": "llm-review",
}
"""Each check sandbox task of the governance DAG, and the check id its output becomes."""
SCAN_DERIVED = frozenset({"scan", "ruff", "semgrep", "secrets", "ticket_resolved"})
SCAN_DERIVED |= {"licenses", "sbom"}  # the scan's dependency environment
COMMANDS = {
    "scan": "triloop-harness analyze --out /out",
    "tests": "triloop-harness test --out /out",
    "tests-base": "triloop-harness test --out /out  # the base's tests",
    "reproduction": "triloop-harness fix --request /out/request.json --out /out",
    "llm-review": "the reviewer harness (prepare_llm_review's command)",
}


class BranchDeleted(PermanentError):
    """The PR's branch is gone from the forge: nothing to review, the PR is closed."""


def send_back(app: App, session: Session, pr: PullRequest, actor: Actor, why: str) -> bool:
    """Close ``pr`` and send its ticket back to ready (dead letter once its attempts are spent).

    Only the run reviewing an open PR whose ticket is in review may do it (an older run's
    cleared task must not strand the ticket); returns whether it did.
    """
    ticket: Ticket = ticket_store.get(session, pr.ticket_id)
    ours = pr.review_owner == actor.run_owner
    if pr.state != PullRequestState.OPEN.value or not ours:
        return False
    if ticket.state != TicketState.IN_REVIEW.value:
        return False
    payload = {"pull_request": pr.number}
    ticket_store.transition(session, ticket, "request_changes", actor, error=why, payload=payload)
    context = {
        "attempts": ticket_store.attempts_used(ticket),
        "max_attempts": app.policy.max_attempts,
    }
    event = "requeue" if context["attempts"] < context["max_attempts"] else "exhaust"
    ticket_store.transition(session, ticket, event, actor, context=context)
    repo = repo_ref(session.get_one(Repo, pr.repo_id))
    note = f"Closed by governance: {why}"
    forge_for(app, session, pr.repo_id).close_pull_request(repo, pr.number, comment=note)
    return True


def branch_deleted(app: App, pr_id: int, actor: Actor) -> BranchDeleted:
    """Record (once per run and PR) that the PR's branch is gone; the error to fail with."""
    with app.uow() as session:
        pr = session.get_one(PullRequest, pr_id)
        message = (
            f"{pr.repo_id} PR #{pr.number}: its branch {pr.branch!r} no longer exists on the"
            " forge (deleted); the PR is closed and its ticket sent back"
        )
        key = f"branch-deleted:{actor.run_owner}:{pr.repo_id}#{pr.number}"

        def act() -> dict[str, object]:
            record(
                session,
                actor,
                "governance.branch_deleted",
                outcome="rejected",
                repo_id=pr.repo_id,
                ticket_id=pr.ticket_id,
                pull_request_id=pr.id,
                idempotency_key=key,
                error=message,
                payload={"branch": pr.branch, "pull_request": pr.number},
            )
            return {"message": message, "closed": send_back(app, session, pr, actor, message)}

        effects.once(session, key, "branch_deleted", act)
    log.error("%s", message)
    return BranchDeleted(message)


CRASH_KINDS = "container error, harness crash, OOM or wall-clock limit"


def apply_crashes(
    checks: list[CheckResult],
    crashed: Mapping[str, str],
    sha: str,
    causes: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """``checks`` with every result a crashed sandbox fed replaced by one ``error`` each.

    ``crashed`` maps the failed sandbox task ids (``run_tests``, ``pull_request.run_tests``)
    to where their log is; ``causes`` the same ids to why they failed, where known.
    """
    by_check: dict[str, list[str]] = {}
    for task, log_url in crashed.items():
        name = task.rsplit(".", 1)[-1]
        if name not in SANDBOX_CHECKS:
            raise PermanentError(f"crashed task {task!r} is not one of {sorted(SANDBOX_CHECKS)}")
        cause = (causes or {}).get(task)
        why = escape_name(cause) if cause else CRASH_KINDS
        by_check.setdefault(SANDBOX_CHECKS[name], []).append(
            f"sandbox task pull_request.{name} failed ({why}): none of its output is trusted."
            f" Its log: {log_url}"
        )
    dropped = set(by_check) | (SCAN_DERIVED if "scan" in by_check else set())
    dropped |= {"test-counts"} if {"tests", "tests-base"} & set(by_check) else set()
    kept = [c for c in checks if c.check_id not in dropped]
    errors = [
        CheckResult(
            check_id=check_id,
            status="error",
            command=f"{COMMANDS[check_id]}  # in the sandbox image, at {sha}",
            excerpt="\n".join(lines),
        )
        for check_id, lines in sorted(by_check.items())
    ]
    return [*errors, *kept]
