"""Lease renewal on SQLite and PostgreSQL: a held lease is extended, a lost one never is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.janitor.service import reap_leases
from triloop.store import leases
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, Ticket

from tests.support.rows import add_ticket

TICKET = "T-LEASE"
RUN = Actor(name="test:run_harness", dag_id="triloop_execution", run_id="run-1", task_id="h")
OTHER_RUN = Actor(name="test:run_harness", dag_id="triloop_execution", run_id="run-2")
JANITOR = Actor(name="test:janitor", dag_id="triloop_janitor", run_id="j-1")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _claimed(app: App, lease_seconds: int = 60) -> datetime:
    """One ready ticket, claimed by RUN through the real claim; returns its lease expiry."""
    add_ticket(app, TICKET)
    with app.uow() as session:
        [ticket] = ticket_store.claim_ready(session, RUN, limit=1, lease_seconds=lease_seconds)
        return _aware(ticket.lease_expires_at)


def _lease(app: App) -> tuple[str, str | None, datetime | None]:
    with app.uow() as session:
        ticket = session.get_one(Ticket, TICKET)
        expires = _aware(ticket.lease_expires_at) if ticket.lease_expires_at else None
        return ticket.state, ticket.lease_owner, expires


def _rows(app: App, action: str) -> list[LedgerEntry]:
    with app.uow() as session:
        return list(session.scalars(select(LedgerEntry).where(LedgerEntry.action == action)))


def test_renewal_extends_the_lease_and_writes_no_ledger_row(app: App) -> None:
    claimed_until = _claimed(app, lease_seconds=60)
    later = claimed_until - timedelta(seconds=1)  # renewed just before it would expire
    with app.uow() as session:
        assert leases.renew(session, TICKET, RUN, lease_seconds=600, now=later) is True
    state, owner, expires = _lease(app)
    assert (state, owner) == ("claimed", "triloop_execution/run-1")
    assert expires == later + timedelta(seconds=600)
    assert reap_leases(app, JANITOR, now=claimed_until + timedelta(seconds=1)) == []
    assert _rows(app, "lease.lost") == []


def _another_run(app: App) -> Actor:
    return OTHER_RUN


def _expired(app: App) -> Actor:
    with app.uow() as session:  # expired but not yet reaped: lost all the same
        session.get_one(Ticket, TICKET).lease_expires_at = datetime.now(UTC) - timedelta(seconds=1)
    return RUN


def _reaped(app: App) -> Actor:
    later = datetime.now(UTC) + timedelta(hours=1)
    assert reap_leases(app, JANITOR, now=later) == [TICKET]
    return RUN


def _moved_on(app: App) -> Actor:
    with app.uow() as session:
        session.get_one(Ticket, TICKET).state = "pr_open"
    return RUN


@pytest.mark.parametrize(
    ("lose", "state", "holder"),
    [
        (_another_run, "claimed", "triloop_execution/run-1"),
        (_expired, "claimed", "triloop_execution/run-1"),
        (_reaped, "ready", None),
        (_moved_on, "pr_open", "triloop_execution/run-1"),
    ],
    ids=["held-by-another-run", "expired-not-reaped", "reaped-by-janitor", "ticket-moved-on"],
)
def test_a_lost_lease_is_not_renewed_and_the_loss_is_recorded(
    app: App, lose: Callable[[App], Actor], state: str, holder: str | None
) -> None:
    _claimed(app)
    actor = lose(app)
    before = _lease(app)
    with app.uow() as session:
        assert leases.renew(session, TICKET, actor, lease_seconds=600) is False
    assert _lease(app) == before  # nothing was extended
    [row] = _rows(app, "lease.lost")
    assert row.ticket_id == TICKET and row.outcome == "lost"
    assert row.payload["state"] == state and row.payload["holder"] == holder
    assert f"{actor.run_owner} no longer holds the lease on ticket {TICKET}" == row.error


def test_an_unknown_ticket_is_not_renewed(app: App) -> None:
    with app.uow() as session:
        assert leases.renew(session, "T-NOPE", RUN, lease_seconds=60) is False
    [row] = _rows(app, "lease.lost")
    assert row.ticket_id is None and row.payload == {
        "owner": "triloop_execution/run-1",
        "ticket_found": False,
    }


@pytest.mark.parametrize("seconds", [0, -5])
def test_a_lease_must_have_a_length(app: App, seconds: int) -> None:
    with app.uow() as session, pytest.raises(ValueError, match="lease_seconds must be positive"):
        leases.renew(session, TICKET, RUN, lease_seconds=seconds)


def test_ticket_lease_renews_for_the_policy_lease_every_third_of_it(app: App) -> None:
    _claimed(app, lease_seconds=5)
    lease = leases.TicketLease(app, TICKET, RUN)
    assert lease.lease_seconds == app.policy.lease_seconds
    assert lease.interval_s == app.policy.lease_seconds / 3
    assert lease.owner == "triloop_execution/run-1"
    started = datetime.now(UTC)
    assert lease.renew() is True
    _, _, expires = _lease(app)
    assert expires is not None
    assert expires - started >= timedelta(seconds=app.policy.lease_seconds)
    assert leases.TicketLease(app, TICKET, OTHER_RUN, lease_seconds=30).renew() is False


def test_a_run_that_lost_its_lease_cannot_finish_the_next_attempt(app: App, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from triloop.domain.contracts import HarnessRequest
    from triloop.execution.service import LeaseLost, finish

    _claimed(app, lease_seconds=60)
    later = datetime.now(UTC) + timedelta(minutes=5)
    reap_leases(app, JANITOR, now=later)  # RUN's lease expired: the ticket is ready again
    with app.uow() as session:
        [again] = ticket_store.claim_ready(session, OTHER_RUN, limit=1, lease_seconds=60)
        assert again.attempts == 2
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.json").write_text('{"status": "failed"}')
    request = HarnessRequest(
        harness="autofix",
        ticket_id=TICKET,
        rule="F401",
        paths=["a.py"],
        attempt=1,
        output_dir=str(tmp_path / "out"),
    )
    with app.uow() as session:
        rows = session.scalar(select(func.count()).select_from(LedgerEntry))
    with pytest.raises(LeaseLost, match=r"under triloop_execution/run-2, not .*run-1"):
        finish(app, request, RUN)
    assert _lease(app)[:2] == ("claimed", "triloop_execution/run-2")
    with app.uow() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == rows + 1
        last = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()
        assert last is not None and (last.action, last.outcome) == ("execution.finish", "refused")
