"""The circuit breaker row: read it under a lock, move it through the table with a ledger row."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from triloop.domain.breaker import BreakerState, BreakerView, next_breaker_state
from triloop.store import runs
from triloop.store.ledger import Actor, record
from triloop.store.models import CircuitBreaker

GLOBAL = "global"


def load(session: Session, scope: str = GLOBAL, *, lock: bool = True) -> CircuitBreaker:
    """The breaker row of ``scope`` (made closed on first use), locked for the transaction.

    PostgreSQL: ``FOR UPDATE``, so concurrent finishes and claims decide one after another;
    SQLite: every writing transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    query = select(CircuitBreaker).where(CircuitBreaker.scope == scope)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(CircuitBreaker(scope=scope, state=BreakerState.CLOSED.value, reason=""))
    except IntegrityError:
        pass  # a concurrent transaction made it first; read theirs
    return session.scalars(query).one()


def view(row: CircuitBreaker) -> BreakerView:
    return BreakerView(
        state=BreakerState(row.state),
        opened_at=_aware(row.opened_at),
        reason=row.reason,
        trial_owner=row.trial_owner,
        trial_ticket=row.trial_ticket,
    )


def move(
    session: Session, row: CircuitBreaker, event: str, reason: str, actor: Actor
) -> BreakerState:
    """Apply ``event``; the change and its ledger row share the caller's transaction."""
    target = next_breaker_state(row.state, event)
    source, now = row.state, datetime.now(UTC)
    row.state, row.updated_at, row.reason = target.value, now, reason
    row.trial_owner = row.trial_ticket = None
    if target is BreakerState.OPEN:
        row.opened_at = now
    elif target is BreakerState.CLOSED:
        row.opened_at = None
        row.since_run_id = runs.newest_id(session)  # the runs that opened it count no more
    record(
        session,
        actor,
        f"breaker.{event}",
        outcome=target.value,
        from_state=source,
        to_state=target.value,
        error=reason if target is BreakerState.OPEN else None,
        payload={"scope": row.scope, "reason": reason},
    )
    return target


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
