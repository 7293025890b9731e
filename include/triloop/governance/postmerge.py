"""Post-merge verification: the tests on the default branch at each merge commit.

Green: the ticket goes ``merged -> verified``. Red: the merge is an escaped defect (counted once
in ``escaped_defects``), a revert PR is opened through the forge (:mod:`.revert`) for governance
to review like any other, and the ticket goes ``merged -> reverted``. A revert whose own merge
still fails is not reverted again: its ticket goes to ``needs_human``.

Every step is keyed by (repo, PR number, merge commit), so a cleared and re-run task finds what
it did and does nothing twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.adapters.git import GitError, git
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import PullRequestRef, Verification, VerificationRequest
from triloop.domain.states import REVERT_RULE, PullRequestState, TicketState
from triloop.errors import PermanentError
from triloop.forges import clone_source
from triloop.governance.checks import _tests as read_tests_check
from triloop.governance.revert import RevertConflict, open_revert
from triloop.governance.test_selection import write_check_request
from triloop.store import effects
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import EscapedDefect, PullRequest, Repo, Ticket
from triloop.workspace import make_workspace, open_up

log = logging.getLogger(__name__)
Outcome = Literal["verified", "reverted", "escalated"]


class VerificationError(PermanentError):
    """A merge cannot be verified (its commit is gone, or the tests did not run)."""


def select_merges(app: App, actor: Actor) -> list[dict[str, object]]:
    """Merged PRs whose ticket is not verified yet; a run selects once (re-runs get the same)."""
    key = f"verifications:{actor.run_owner}"
    with app.uow() as session:
        earlier = effects.recorded(session, key)
        if earlier is not None:
            return list(earlier["picked"])
        rows = session.execute(
            select(PullRequest.repo_id, PullRequest.number)
            .join(Ticket, Ticket.id == PullRequest.ticket_id)
            .where(
                PullRequest.state == PullRequestState.MERGED.value,
                PullRequest.merge_sha.is_not(None),
                Ticket.state == TicketState.MERGED.value,
            )
            .order_by(PullRequest.repo_id, PullRequest.number)
        ).all()
        picked = [{"repo_id": repo_id, "number": number} for repo_id, number in rows]
        effects.once(session, key, "verifications", lambda: {"picked": picked})
        return picked


def prepare_verification(app: App, repo_id: str, number: int, actor: Actor) -> VerificationRequest:
    """Check the merge commit out (it must be on the default branch) for the sandbox's tests."""
    with app.uow() as session:
        pr = merged_pr(session, repo_id, number)
        repo = repo_ref(session.get_one(Repo, repo_id))
        ticket_id, merge_sha = pr.ticket_id, str(pr.merge_sha)
    ws, head = make_workspace(
        app.settings.workspaces_dir,
        "verify",
        actor.run_owner,
        f"{repo_id}-{number}",
        remote=clone_source(app, repo),  # the forge's: GitHub's clone URL, or the bare repo
        ref=repo.default_branch,
        writable_src=False,
    )
    try:
        git("merge-base", "--is-ancestor", merge_sha, head, cwd=ws.src)
        git("checkout", "--quiet", "--force", "--detach", merge_sha, cwd=ws.src)
    except GitError as exc:
        why = f"merge {merge_sha} of PR #{number} is not on {repo.default_branch} of {repo_id}"
        with app.uow() as session:
            record(
                session,
                actor,
                "postmerge.prepare",
                outcome="refused",
                repo_id=repo_id,
                ticket_id=ticket_id,
                error=f"{why}: {exc}",
            )
        raise VerificationError(why) from exc
    open_up(ws.src, writable=False)
    write_check_request(ws.out, app.policy.test_suites, "post-merge")  # which tests run
    return VerificationRequest(
        repo_id=repo_id,
        number=number,
        ticket_id=ticket_id,
        merge_sha=merge_sha,
        workspace=str(ws.src),
        tests_out=str(ws.out),
    )


def conclude(app: App, request: VerificationRequest, actor: Actor) -> Verification:
    """Verify the ticket, or count the escaped defect and open the revert PR; once per merge."""
    key = f"postmerge:{request.repo_id}#{request.number}@{request.merge_sha}"
    tests = read_tests_check(Path(request.tests_out), request.merge_sha)
    with app.uow() as session:
        earlier = effects.recorded(session, key)
        if earlier is not None:
            return Verification.model_validate(earlier)
        pr = merged_pr(session, request.repo_id, request.number)
        ticket = ticket_store.get(session, pr.ticket_id)
        if tests.status not in ("passed", "failed"):
            why = f"tests did not run at {request.merge_sha}: {tests.excerpt[-500:]}"
            record(
                session,
                actor,
                "postmerge.verify",
                outcome="refused",
                repo_id=pr.repo_id,
                ticket_id=ticket.id,
                pull_request_id=pr.id,
                error=why,
            )
            session.commit()
            raise VerificationError(f"PR #{pr.number} in {pr.repo_id}: {why}")
        failing = list(tests.rule_ids) or ["(unnamed failure)"]
        payload = {"merge_sha": request.merge_sha, "command": tests.command}
        if tests.status == "passed":
            ticket_store.transition(session, ticket, "verify", actor, payload=payload)
            result = _result(request, "verified")
        elif ticket.rule == REVERT_RULE:
            error = f"tests still fail after revert #{pr.number}: {', '.join(failing)}"
            ticket_store.transition(session, ticket, "escalate", actor, error=error)
            result = _result(request, "escalated", failing)
        else:
            result = _revert(session, app, pr, ticket, request, failing, actor)
        record(
            session,
            actor,
            f"postmerge.{result.outcome}",
            repo_id=pr.repo_id,
            ticket_id=ticket.id,
            pull_request_id=pr.id,
            idempotency_key=key,
            payload={**payload, "failing_tests": result.failing_tests},
        )
        effects.once(session, key, "postmerge", lambda: result.model_dump(mode="json"))
    log.info(
        "PR #%s in %s at %s: %s", request.number, request.repo_id, request.merge_sha, result.outcome
    )
    return result


def _revert(
    session: Session,
    app: App,
    pr: PullRequest,
    ticket: Ticket,
    request: VerificationRequest,
    failing: list[str],
    actor: Actor,
) -> Verification:
    """Count the escaped defect and open the revert PR (or escalate when it cannot be made)."""
    revert: PullRequestRef | None = None
    try:
        revert = open_revert(session, app, pr, ticket, failing, actor)
    except RevertConflict as exc:
        error = f"tests fail after merge ({', '.join(failing)}) and {exc}"
        ticket_store.transition(session, ticket, "escalate", actor, error=error)
    else:
        ticket_store.transition(
            session, ticket, "revert", actor, payload={"revert_pr": revert.number}
        )
    session.add(
        EscapedDefect(
            repo_id=pr.repo_id,
            pull_request_id=pr.id,
            number=pr.number,
            ticket_id=ticket.id,
            merge_sha=request.merge_sha,
            verification_run=actor.run_owner,
            failing_tests=failing,
            revert_number=revert.number if revert else None,
            revert_ticket_id=revert.ticket_id if revert else None,
        )
    )
    record(
        session,
        actor,
        "postmerge.escaped_defect",
        outcome="counted",
        repo_id=pr.repo_id,
        ticket_id=ticket.id,
        pull_request_id=pr.id,
        idempotency_key=f"defect:{pr.repo_id}#{pr.number}@{request.merge_sha}",
        payload={"failing_tests": failing, "revert_pr": revert.number if revert else None},
    )
    return _result(request, "reverted" if revert else "escalated", failing, revert)


def _result(
    request: VerificationRequest,
    outcome: Outcome,
    failing: list[str] | None = None,
    revert: PullRequestRef | None = None,
) -> Verification:
    return Verification(
        repo_id=request.repo_id,
        number=request.number,
        ticket_id=request.ticket_id,
        merge_sha=request.merge_sha,
        outcome=outcome,
        failing_tests=failing or [],
        revert=revert,
    )


def merged_pr(session: Session, repo_id: str, number: int) -> PullRequest:
    pr = session.scalar(
        select(PullRequest).where(PullRequest.repo_id == repo_id, PullRequest.number == number)
    )
    if pr is None or pr.state != PullRequestState.MERGED.value or not pr.merge_sha:
        state = "does not exist" if pr is None else f"is {pr.state}, not merged with a merge commit"
        raise VerificationError(f"pull request #{number} in repo {repo_id!r} {state}")
    return pr
