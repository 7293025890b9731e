"""Lease renewal: a long run keeps its claim on a ticket with a compare-and-set.

A claim (``tickets.claim_ready``) gives a DAG run a lease until ``lease_expires_at``; the janitor
returns leases that have expired to ``ready``. A run that works longer than the lease renews it
while it works. Renewal is a compare-and-set on (ticket, owner, claimed/running, not yet
expired): once a lease has expired it is lost even before the janitor reaps it, so a renewal
can never undo the janitor's decision, and a run that lost its lease must stop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from triloop.domain.states import TicketState
from triloop.store.ledger import Actor, record
from triloop.store.models import Ticket

if TYPE_CHECKING:
    from triloop.bootstrap import App

log = logging.getLogger(__name__)
RENEWABLE = (TicketState.CLAIMED.value, TicketState.RUNNING.value)
RENEWALS_PER_LEASE = 3
"""Renew every third of the lease: two renewals in a row may fail before the lease is lost."""


def renew(
    session: Session,
    ticket_id: str,
    actor: Actor,
    *,
    lease_seconds: int,
    now: datetime | None = None,
) -> bool:
    """Extend ``actor``'s run's lease on ``ticket_id`` to ``now + lease_seconds``.

    Returns False, and writes one ``lease.lost`` ledger row saying who holds the ticket now,
    when the run no longer holds an unexpired lease on a claimed or running ticket. A renewal
    that succeeds writes no ledger row (it happens every few minutes of every long run).
    """
    if lease_seconds <= 0:
        raise ValueError(f"lease_seconds must be positive, not {lease_seconds!r}")
    moment = now or datetime.now(UTC)
    owner = actor.run_owner
    result = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.lease_owner == owner)
        .where(Ticket.state.in_(RENEWABLE), Ticket.lease_expires_at > moment)
        .values(lease_expires_at=moment + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        return True
    ticket = session.get(Ticket, ticket_id, populate_existing=True)
    lost: dict[str, Any] = {"owner": owner, "ticket_found": ticket is not None}
    if ticket is not None:
        expires = ticket.lease_expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)  # SQLite returns naive UTC
        lost.update(
            state=ticket.state,
            holder=ticket.lease_owner,
            lease_expires_at=expires.isoformat() if expires else None,
        )
    record(
        session,
        actor,
        "lease.lost",
        outcome="lost",
        repo_id=ticket.repo_id if ticket else None,
        ticket_id=ticket_id if ticket else None,
        error=f"{owner} no longer holds the lease on ticket {ticket_id}",
        payload=lost,
    )
    log.warning("lease on ticket %s lost by %s: %s", ticket_id, owner, lost)
    return False


@dataclass
class TicketLease:
    """One run's lease on one ticket, renewed through the app's unit of work.

    What the SandboxOperator's ``lease`` hook returns: it calls :meth:`renew` every
    ``interval_s`` seconds from a background thread while the container runs.
    """

    app: App
    ticket_id: str
    actor: Actor
    lease_seconds: int = field(default=0)

    def __post_init__(self) -> None:
        self.lease_seconds = self.lease_seconds or self.app.policy.lease_seconds

    @property
    def interval_s(self) -> float:
        return self.lease_seconds / RENEWALS_PER_LEASE

    @property
    def owner(self) -> str:
        return self.actor.run_owner

    def renew(self) -> bool:
        with self.app.uow() as session:
            return renew(session, self.ticket_id, self.actor, lease_seconds=self.lease_seconds)
