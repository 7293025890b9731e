"""Ticket repository: lifecycle moves (each with its ledger row), claims and leases."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from triloop.domain.contracts import Finding, TicketView
from triloop.domain.states import TicketState, next_state
from triloop.store.ledger import Actor, record, record_many
from triloop.store.models import Ticket, utcnow


class TicketNotFound(LookupError):
    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"ticket {ticket_id!r} does not exist")


def view(ticket: Ticket) -> TicketView:
    """The ticket row as its outward contract."""
    expires = ticket.lease_expires_at
    return TicketView(
        ticket_id=ticket.id,
        repo_id=ticket.repo_id,
        state=ticket.state,
        title=ticket.title,
        tool=ticket.tool,
        rule=ticket.rule,
        path=ticket.path,
        severity=ticket.severity,
        harness=ticket.harness,
        priority=ticket.priority,
        confidence=ticket.confidence or 0.0,
        impact=ticket.impact or 0.0,
        blast_files=ticket.blast_files or 0,
        blast_modules=ticket.blast_modules or 0,
        effort=ticket.effort or 0.0,
        expected_value=ticket.expected_value or 0.0,
        grouping=ticket.grouping or "rule_path",
        attempts=ticket.attempts,
        lease_owner=ticket.lease_owner,
        lease_expires_at=_aware(expires).isoformat() if expires else None,
        last_error=ticket.last_error,
        findings=[Finding.model_validate(f) for f in ticket.findings],
    )


def attempts_used(ticket: Ticket) -> int:
    """Attempts spent since the ticket's current round began (an operator's requeue)."""
    return ticket.attempts - (ticket.attempts_base or 0)


def get(session: Session, ticket_id: str) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


def transition(
    session: Session,
    ticket: Ticket,
    event: str,
    actor: Actor,
    *,
    context: dict[str, Any] | None = None,
    error: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Ticket:
    """Apply ``event``; the state change and its ledger row share the caller's transaction."""
    move = next_state(ticket.state, event, context)
    source = ticket.state
    ticket.state = move.target.value
    ticket.updated_at = utcnow()
    if move.target is TicketState.READY:
        ticket.lease_owner = None
        ticket.lease_expires_at = None
    if error is not None:
        ticket.last_error = error
    record(
        session,
        actor,
        f"ticket.{event}",
        repo_id=ticket.repo_id,
        ticket_id=ticket.id,
        from_state=source,
        to_state=move.target.value,
        error=error,
        payload={"guard": move.guard, **(payload or {})},
    )
    return ticket


CLAIM_ORDER = (Ticket.priority.desc(), Ticket.created_at, Ticket.id)
"""Execution takes tickets in this order: highest priority, then oldest."""


def claim_ready(
    session: Session,
    actor: Actor,
    *,
    limit: int,
    lease_seconds: int,
    repo_id: str | None = None,
    exclude_repos: Collection[str] = (),
) -> list[Ticket]:
    """Claim up to ``limit`` ready tickets for ``actor``'s run, highest priority first.

    A run that already holds claims (a cleared and re-run claim task) gets those back instead
    of taking more. The candidates are locked before they are taken: on PostgreSQL with
    ``FOR UPDATE SKIP LOCKED`` (concurrent claimers take disjoint batches without waiting), on
    SQLite by the write lock every transaction takes at BEGIN IMMEDIATE. The update is still a
    compare-and-set on (id, state=ready), so a ticket is never claimed twice.
    """
    owner = actor.run_owner
    held = session.scalars(
        select(Ticket)
        .where(Ticket.lease_owner == owner)
        .where(Ticket.state.in_([TicketState.CLAIMED.value, TicketState.RUNNING.value]))
        .order_by(Ticket.id)
    ).all()
    if held:
        return list(held)
    candidates = select(Ticket.id).where(Ticket.state == TicketState.READY.value)
    if repo_id is not None:
        candidates = candidates.where(Ticket.repo_id == repo_id)
    if exclude_repos:  # over their daily cost limit
        candidates = candidates.where(Ticket.repo_id.not_in(sorted(exclude_repos)))
    candidates = candidates.order_by(*CLAIM_ORDER).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    # Lock first, then take: as one UPDATE .. WHERE id IN (subquery), PostgreSQL may re-run the
    # locking subquery for every ready row (a nested-loop semi join), which collapses under
    # concurrent claimers.
    picked = list(session.scalars(candidates).all())
    if not picked:
        return []
    expires = datetime.now(UTC) + timedelta(seconds=lease_seconds)
    rows = session.scalars(
        update(Ticket)
        .where(Ticket.id.in_(picked), Ticket.state == TicketState.READY.value)
        .values(
            state=TicketState.CLAIMED.value,
            lease_owner=owner,
            lease_expires_at=expires,
            attempts=Ticket.attempts + 1,
            updated_at=utcnow(),
        )
        .returning(Ticket),
        execution_options={"populate_existing": True},
    ).all()
    claimed = sorted(rows, key=lambda t: (-t.priority, _aware(t.created_at), t.id))
    record_many(
        session,
        actor,
        "ticket.claim",
        [
            {
                "repo_id": ticket.repo_id,
                "ticket_id": ticket.id,
                "from_state": TicketState.READY.value,
                "to_state": TicketState.CLAIMED.value,
                "idempotency_key": f"claim:{ticket.id}:{ticket.attempts}",
                "payload": {"lease_owner": owner, "lease_expires_at": expires.isoformat()},
            }
            for ticket in claimed
        ],
    )
    return claimed


def expired_leases(session: Session, now: datetime | None = None) -> list[Ticket]:
    moment = now or datetime.now(UTC)
    rows = session.scalars(
        select(Ticket)
        .where(Ticket.state.in_([TicketState.CLAIMED.value, TicketState.RUNNING.value]))
        .where(Ticket.lease_expires_at.is_not(None))
    ).all()
    return [t for t in rows if _aware(t.lease_expires_at) < moment]


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
