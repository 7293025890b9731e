"""A human's verdict on a pull request (approve, request changes, reject), applied once.

The reviewer answers in Airflow (a Human-in-the-loop task); the task that follows the chosen
branch calls :func:`apply_verdict`. A verdict is recorded under a key derived from the run, the
PR and its head, so clearing and re-running any of these tasks applies nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.bootstrap import App
from triloop.domain.contracts import Decision
from triloop.domain.states import REVERT_RULE, PullRequestState, TicketState
from triloop.errors import PermanentError
from triloop.store import effects, pull_requests
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import LedgerEntry, PullRequest, Repo, Ticket

log = logging.getLogger(__name__)

APPROVE = "Approve"
REQUEST_CHANGES = "Request changes"
REJECT = "Reject"
OPTIONS = (APPROVE, REQUEST_CHANGES, REJECT)
TIMEOUT_FEEDBACK = "No reviewer answered before the approval request timed out."


def verdict_key(decision: Decision, actor: Actor) -> str:
    return f"verdict:{actor.run_owner}:{decision.repo_id}#{decision.number}@{decision.head_sha}"


def apply_verdict(
    app: App,
    decision: Decision,
    chosen: str,
    actor: Actor,
    *,
    feedback: str = "",
    by: str = "",
) -> dict[str, Any]:
    """Apply ``chosen`` (one of :data:`OPTIONS`) once; returns what was done.

    Approve merges (through :func:`service.merge`, which re-checks the base); request changes
    closes the PR and sends the ticket back to ready with the feedback, or to dead letter when
    its attempts are spent (a revert PR's ticket is closed instead: no harness reworks a
    revert); reject closes PR and ticket, which starts the ticket's cooldown.
    """
    from triloop.governance.service import merge

    if chosen not in OPTIONS:
        raise PermanentError(f"verdict {chosen!r} on PR #{decision.number} is not one of {OPTIONS}")
    key = verdict_key(decision, actor)
    with app.uow() as session:
        earlier = effects.recorded(session, key)
        if earlier is not None:
            return earlier
    merged = merge(app, decision, actor) if chosen == APPROVE else None
    with app.uow() as session:
        earlier = effects.recorded(session, key)
        if earlier is not None:
            return earlier
        pr = pull_requests.get(session, decision.repo_id, decision.number)
        ticket = ticket_store.get(session, pr.ticket_id)
        applied = chosen == APPROVE and merged is not None
        if chosen != APPROVE and _ours_to_close(pr, ticket.state, actor):
            note = f"{chosen} by {by or 'timeout default'}" + (f": {feedback}" if feedback else "")
            payload = {"feedback": feedback, "by": by, "pull_request": pr.number}
            event = "reject" if chosen == REJECT else "request_changes"
            ticket_store.transition(session, ticket, event, actor, error=note, payload=payload)
            if chosen == REJECT:
                ticket_store.transition(session, ticket, "close", actor)
            elif ticket.rule == REVERT_RULE:  # no harness reworks a revert: it is closed
                _close_revert(session, ticket, pr, note, actor)
            else:
                _requeue_or_dead_letter(app, session, ticket, actor)
            _close_on_forge(app, session, pr, f"Closed: {note}")
            applied = True
        result = {
            "chosen": chosen,
            "by": by,
            "feedback": feedback,
            "applied": applied,
            "ticket_state": ticket.state,
            "merged": merged,
        }
        record(
            session,
            actor,
            "governance.verdict",
            outcome="ok" if applied else "skipped",
            repo_id=decision.repo_id,
            ticket_id=ticket.id,
            pull_request_id=pr.id,
            idempotency_key=key,
            payload=result,
        )
        effects.once(session, key, "verdict", lambda: result)
    log.info("verdict %s on %s#%s applied=%s", chosen, decision.repo_id, decision.number, applied)
    return result


def _ours_to_close(pr: PullRequest, ticket_state: str, actor: Actor) -> bool:
    """Only the run reviewing an open PR whose ticket is in review may close it."""
    return (
        pr.state == PullRequestState.OPEN.value
        and pr.review_owner == actor.run_owner
        and ticket_state == TicketState.IN_REVIEW.value
    )


def _close_on_forge(app: App, session: Session, pr: PullRequest, comment: str) -> None:
    """Close the PR where it lives (the repo's forge: GitHub too), the verdict as its comment."""
    from triloop.discovery.service import repo_ref
    from triloop.forges import forge_for

    repo = repo_ref(session.get_one(Repo, pr.repo_id))
    forge_for(app, session, pr.repo_id).close_pull_request(repo, pr.number, comment=comment)


def _close_revert(
    session: Session, ticket: Ticket, pr: PullRequest, note: str, actor: Actor
) -> None:
    """Changes requested on a revert PR close its ticket: execution has no ``revert`` harness.

    The reverted merge stays on the default branch (its ticket ``reverted``, its escaped defect
    counted); a person who wants it undone another way does that outside Triloop.
    """
    why = f"revert closed: {note} (no harness reworks a revert)"
    ticket_store.transition(session, ticket, "wont_fix", actor, error=why)
    record(
        session,
        actor,
        "governance.close_revert",
        outcome="closed",
        repo_id=pr.repo_id,
        ticket_id=ticket.id,
        pull_request_id=pr.id,
        error=why,
        payload={"pull_request": pr.number, "branch": pr.branch},
    )


def _requeue_or_dead_letter(app: App, session: Session, ticket: Ticket, actor: Actor) -> None:
    """Back to ready while attempts are left (its next run sees the feedback), else dead letter."""
    context = {
        "attempts": ticket_store.attempts_used(ticket),
        "max_attempts": app.policy.max_attempts,
    }
    event = "requeue" if context["attempts"] < context["max_attempts"] else "exhaust"
    ticket_store.transition(session, ticket, event, actor, context=context)


def review_feedback(session: Session, ticket_id: str) -> str:
    """Every reviewer's "request changes" feedback on a ticket, oldest first, as plain text."""
    rows = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.ticket_id == ticket_id, LedgerEntry.action == "ticket.request_changes")
        .order_by(LedgerEntry.id)
    ).all()
    notes = [
        f"- PR #{r.payload.get('pull_request', '?')} ({r.payload.get('by') or 'timeout'}):"
        f" {r.payload['feedback']}"
        for r in rows
        if r.payload.get("feedback")
    ]
    return "\n".join(notes)
