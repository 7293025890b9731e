"""Bad input at a task boundary or to the lifecycle: a clear error, one ledger row at most,
nothing else written. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.domain.contracts import Claim, HarnessRequest, ReviewRequest
from triloop.domain.states import TERMINAL_STATES, IllegalTransition, TicketState, events_from
from triloop.intake import ContractViolation, parse
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor
from triloop.store.models import Base, LedgerEntry

from tests.support.rows import add_ticket

ACTOR = Actor(name="test", dag_id="triloop_execution", run_id="r1", task_id="prepare_workspace")
CLAIM = {
    "ticket_id": "T-0000000001",
    "repo_id": "sample",
    "owner": "triloop_execution/r1",
    "lease_expires_at": "2026-11-25T00:00:00+00:00",
    "attempt": 1,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def row_counts(app: App) -> dict[str, int]:
    with app.uow() as session:
        return {
            table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


@pytest.mark.parametrize(
    ("model", "payload", "match"),
    [
        (
            Claim,
            {**CLAIM, "schema_version": 99},
            r"claim_tickets output: not a valid Claim payload: schema_version: Value error, "
            r"schema_version 99 is not one this Triloop reads \(1\)",
        ),
        (
            Claim,
            {k: v for k, v in CLAIM.items() if k != "ticket_id"},
            r"not a valid Claim payload: ticket_id: Field required",
        ),
        (
            Claim,
            {**CLAIM, "attempt": 0},
            r"not a valid Claim payload: attempt: Input should be greater than or equal to 1",
        ),
        (
            HarnessRequest,
            {"harness": "autofix", "ticket_id": "T-1", "rule": "F401", "paths": [], "x": 1},
            r"not a valid HarnessRequest payload: x: Extra inputs are not permitted",
        ),
        (ReviewRequest, None, r"not a valid ReviewRequest payload: \(payload\): Input should be"),
    ],
    ids=["unknown-schema-version", "missing-field", "out-of-range", "unknown-field", "not-a-dict"],
)
def test_payload_that_breaks_its_contract_is_refused_with_one_ledger_row(
    app: App, model: Any, payload: Any, match: str
) -> None:
    before = row_counts(app)
    with pytest.raises(ContractViolation, match=match):
        parse(app, ACTOR, model, payload, source="claim_tickets output")
    after = row_counts(app)
    assert after == {**before, "ledger": before["ledger"] + 1}
    with app.uow() as session:
        row = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()
        assert row is not None
        assert (row.action, row.outcome, row.task_id) == (
            "contract.refused",
            "refused",
            "prepare_workspace",
        )
        assert row.payload["contract"] == model.__name__


def test_a_valid_payload_is_parsed_and_writes_nothing(app: App) -> None:
    before = row_counts(app)
    assert parse(app, ACTOR, Claim, CLAIM, source="claim_tickets output").attempt == 1
    assert row_counts(app) == before


def _ticket_in(app: App, state: TicketState) -> str:
    return add_ticket(app, "T-0000000001", state=state.value)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_no_event_leaves_a_terminal_state_and_nothing_is_written(
    app: App, state: TicketState
) -> None:
    ticket_id = _ticket_in(app, state)
    before = row_counts(app)
    every_event = sorted({event for s in TicketState for event in events_from(s)})
    for event in every_event:
        refused = rf"event '{event}' is not allowed in state '{state.value}'"
        with pytest.raises(IllegalTransition, match=refused), app.uow() as session:
            ticket = ticket_store.get(session, ticket_id)
            ticket_store.transition(session, ticket, event, ACTOR)
    assert row_counts(app) == before
    with app.uow() as session:
        assert ticket_store.get(session, ticket_id).state == state.value
