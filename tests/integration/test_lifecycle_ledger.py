"""A whole ticket lifecycle leaves a complete, ordered ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from sqlalchemy import select
from triloop.bootstrap import App
from triloop.domain.states import TRANSITIONS, TicketState
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry

from tests.support.rows import add_ticket

HAPPY_PATH = ["triage_ready", "claim", "start", "open_pr", "start_review", "approve", "merge"]
DETOURS = ["fail", "retry", "claim", "start", "open_pr", "start_review", "request_changes"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _new_ticket(app: App) -> str:
    return add_ticket(app, "T-0000000042", state=TicketState.NEW.value)


def _walk(app: App, ticket_id: str, events: list[str]) -> None:
    for step, event in enumerate(events):
        actor = Actor(name="test", dag_id="triloop_test", run_id=f"run-{step}", task_id=event)
        with app.uow() as session:
            if event == "claim":
                claimed = ticket_store.claim_ready(session, actor, limit=1, lease_seconds=60)
                assert [t.id for t in claimed] == [ticket_id]
                continue
            ticket = ticket_store.get(session, ticket_id)
            context = {"attempts": ticket.attempts, "max_attempts": 3}
            ticket_store.transition(session, ticket, event, actor, context=context)


def _ledger(app: App, ticket_id: str) -> list[LedgerEntry]:
    with app.uow() as session:
        return list(
            session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.ticket_id == ticket_id)
                .order_by(LedgerEntry.id)
            )
        )


@pytest.mark.parametrize("events", [HAPPY_PATH, ["triage_ready", "claim", "start", *DETOURS]])
def test_every_move_has_its_row_in_order_and_the_rows_chain(app: App, events: list[str]) -> None:
    ticket_id = _new_ticket(app)
    _walk(app, ticket_id, events)
    rows = _ledger(app, ticket_id)
    assert [row.action for row in rows] == [f"ticket.{event}" for event in events]
    # Complete: each row starts where the previous one ended, from `new` to the final state.
    assert rows[0].from_state == TicketState.NEW.value
    for before, after in pairwise(rows):
        assert after.from_state == before.to_state
        assert after.at >= before.at
    with app.uow() as session:
        assert ticket_store.get(session, ticket_id).state == rows[-1].to_state
    # Each row names a table transition and the actor's run and task.
    table = {(t.source.value, t.event, t.target.value) for t in TRANSITIONS}
    for row in rows:
        assert (row.from_state, row.action.removeprefix("ticket."), row.to_state) in table
        assert row.dag_id == "triloop_test" and row.task_id == row.action.removeprefix("ticket.")
