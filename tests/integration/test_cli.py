"""The operator's CLI: status shows dead letters, requeue brings one back (and refuses others)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from triloop.bootstrap import App
from triloop.cli import main
from triloop.domain.contracts import TicketView
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import LedgerEntry, Ticket


def _dead_letter(app: App) -> str:
    onboard(app, str(materialise_sample(app)), name="sample", actor=CLI)
    with app.uow() as session:
        session.add(
            Ticket(
                id="T-dead",
                key="k-dead",
                repo_id="sample",
                tool="ruff",
                rule="F401",
                path="a.py",
                title="F401 in a.py",
                severity="low",
                state="dead_letter",
                attempts=3,
                last_error="autofix made no change",
            )
        )
    return "T-dead"


def test_status_lists_dead_letters_and_requeue_resets_them(
    app: App, triloop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticket_id = _dead_letter(app)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "dead letters (1" in out and "T-dead" in out and "autofix made no change" in out
    assert main(["requeue", ticket_id]) == 0
    with app.uow() as session:
        ticket = session.get_one(Ticket, ticket_id)
        row = session.scalars(select(LedgerEntry).where(LedgerEntry.action == "ticket.requeue"))
        entry = row.one()
    # A fresh round of attempts; the count goes on so attempt numbers are never reused.
    assert (ticket.state, ticket.attempts, ticket.attempts_base) == ("ready", 3, 3)
    assert entry.actor.startswith("cli:") and entry.payload["attempts_before"] == 3


@pytest.mark.parametrize(
    ("ticket_id", "message"),
    [
        ("T-missing", "ticket 'T-missing' does not exist"),
        ("T-ready", "event 'requeue' is not allowed in state 'ready'"),
    ],
)
def test_requeue_refuses_what_it_cannot_do(
    app: App, capsys: pytest.CaptureFixture[str], ticket_id: str, message: str
) -> None:
    _dead_letter(app)
    main(["requeue", "T-dead"])
    with app.uow() as session:
        session.get_one(Ticket, "T-dead").id = "T-ready"
    assert main(["requeue", ticket_id]) == 1
    assert message in capsys.readouterr().err


def test_show_tells_what_happened_to_a_ticket_in_order(
    app: App, triloop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticket_id = _dead_letter(app)
    assert main(["requeue", ticket_id]) == 0
    capsys.readouterr()
    assert main(["show", ticket_id]) == 0
    out = capsys.readouterr().out
    assert out.startswith("T-dead [ready] F401 in a.py")
    assert "ticket.requeue" in out and "dead_letter->ready" in out
    assert main(["show", ticket_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    view = TicketView.model_validate(shown["ticket"])
    assert (view.ticket_id, view.state, view.attempts) == ("T-dead", "ready", 3)
    assert [row["action"] for row in shown["ledger"]] == ["ticket.requeue"]
    assert main(["show", "T-missing"]) == 1
    assert "ticket 'T-missing' does not exist" in capsys.readouterr().err
