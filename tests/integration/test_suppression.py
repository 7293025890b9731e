"""Suppression on SQLite and PostgreSQL: cooldowns, the won't-fix list, caps, reopening."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.cli import main
from triloop.discovery.service import upsert_findings
from triloop.domain.contracts import Finding
from triloop.domain.policy import Policy, WontFix
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, Repo, Suppression, Ticket

ACTOR = Actor(name="test:scan", dag_id="triloop_discovery", run_id="r1", task_id="ingest")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def finding(path: str, rule: str = "F401", rate: float | None = None) -> Finding:
    data: dict[str, Any] = {"rate_per_hour": rate} if rate is not None else {}
    return Finding(
        tool="errorlog" if rate is not None else "ruff",
        rule=rule,
        path=path,
        line=3,
        message="problem",
        fingerprint=f"fp-{rule}-{path}",
        data=data,
    )


def scan(
    app: App, findings: list[Finding], policy: Policy | None = None, run: str = "r"
) -> list[str]:
    actor = Actor(name="test:scan", dag_id="triloop_discovery", run_id=run)
    with app.uow() as session:
        if session.get(Repo, "r") is None:
            session.add(Repo(id="r", name="r", origin="/o", remote="/f"))
            session.flush()
        return upsert_findings(session, policy or app.policy, "r", findings, actor)[0]


def ticket(app: App, path: str, rule: str = "F401") -> Ticket:
    with app.uow() as session:
        row = session.scalars(select(Ticket).where(Ticket.path == path, Ticket.rule == rule)).one()
        session.expunge(row)
        return row


def set_state(app: App, ticket_id: str, state: str, hours_ago: float = 0) -> None:
    with app.uow() as session:
        row = session.get_one(Ticket, ticket_id)
        row.state = state
        row.updated_at = datetime.now(UTC) - timedelta(hours=hours_ago)


def ledger(app: App, action: str) -> list[LedgerEntry]:
    with app.uow() as session:
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == action).order_by(LedgerEntry.id)
        ).all()
        session.expunge_all()
        return list(rows)


def with_rules(app: App, **rules: Any) -> Policy:
    return app.policy.model_copy(
        update={"suppression": app.policy.suppression.model_copy(update=rules)}
    )


@pytest.mark.parametrize("state", ["rejected", "dead_letter", "closed"])
def test_a_quiet_ticket_stays_quiet_through_its_cooldown(app: App, state: str) -> None:
    [tid] = scan(app, [finding("a.py")])
    set_state(app, tid, state, hours_ago=1)
    before = ticket(app, "a.py")
    assert scan(app, [finding("a.py"), finding("a.py", rule="F841")]) != []  # F841 is new
    after = ticket(app, "a.py")
    assert (after.state, after.findings) == (state, before.findings)
    [row] = ledger(app, "suppression.cooldown")
    assert row.ticket_id == tid and row.repo_id == "r"
    assert row.payload["reason"].startswith(f"{state}; quiet until")


def test_after_the_cooldown_a_closed_ticket_reopens_only_when_it_escalates(app: App) -> None:
    [tid] = scan(app, [finding("svc/api.py", rate=4.0)])
    set_state(app, tid, "closed", hours_ago=25)
    assert scan(app, [finding("svc/api.py", rate=39.0)]) == []
    assert ticket(app, "svc/api.py").state == "closed"
    [held] = ledger(app, "suppression.closed")
    assert "rate 39.0 has not reached 10.0 x 4.0" in held.payload["reason"]
    scan(app, [finding("svc/api.py", rate=40.0)])
    reopened = ticket(app, "svc/api.py")
    assert reopened.state in ("ready", "triaged")
    [row] = ledger(app, "ticket.reopen")
    assert (row.ticket_id, row.from_state, row.to_state) == (tid, "closed", "new")
    assert "escalated: rate 40.0 >= 10.0 x 4.0" in row.payload["reason"]
    assert reopened.findings[0]["data"]["rate_per_hour"] == 40.0


def test_the_policy_wont_fix_list_keeps_findings_from_becoming_tickets(app: App) -> None:
    entry = WontFix(rule="F4*", path="gen/**", reason="generated code")
    policy = with_rules(app, wont_fix=[entry])
    created = scan(app, [finding("gen/x/a.py"), finding("src/b.py")], policy)
    assert len(created) == 1 and ticket(app, "src/b.py").id == created[0]
    [row] = ledger(app, "suppression.wont_fix")
    assert row.payload["path"] == "gen/x/a.py"
    assert "won't fix (F4* at gen/**): generated code" in row.payload["reason"]


def test_triloop_suppress_a_rule_and_a_ticket(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    [tid] = scan(app, [finding("a.py")])
    url = app.settings.db_url
    assert main(["--db-url", url, "suppress", tid, "--reason", "false positive"]) == 0
    assert main(["--db-url", url, "suppress", "F841:legacy/**", "--reason", "old code"]) == 0
    out = capsys.readouterr().out
    assert f"suppressed {tid}" in out and "suppressed F841:legacy/**" in out
    assert ticket(app, "a.py").state == "closed"
    assert [r.payload["target"] for r in ledger(app, "suppression.add")] == [tid, "F841:legacy/**"]
    # Long after any cooldown, and escalated: the ticket's own entry still keeps it closed.
    set_state(app, tid, "closed", hours_ago=1000)
    assert scan(app, [finding("a.py"), finding("legacy/z.py", rule="F841")]) == []
    assert ticket(app, "a.py").state == "closed"
    reasons = sorted(r.payload["reason"] for r in ledger(app, "suppression.wont_fix"))
    assert reasons == [
        "won't fix (F401 at a.py in r): false positive",
        "won't fix (F841 at legacy/**): old code",
    ]


@pytest.mark.parametrize(
    ("target", "reason", "error"),
    [
        ("T-nosuchone", "x", r"suppress 'T-nosuchone': no such ticket"),
        ("F401", " ", r"suppress 'F401': --reason must say why"),
        ("CLAIMED", "x", r"event 'wont_fix' is not allowed in state 'claimed'"),
    ],
)
def test_a_refused_suppress_changes_nothing_but_its_ledger_row(
    app: App, capsys: pytest.CaptureFixture[str], target: str, reason: str, error: str
) -> None:
    [tid] = scan(app, [finding("a.py")])
    set_state(app, tid, "claimed")
    target = tid if target == "CLAIMED" else target
    assert main(["--db-url", app.settings.db_url, "suppress", target, "--reason", reason]) == 1
    assert re.search(error, capsys.readouterr().err)
    with app.uow() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        assert session.get_one(Ticket, tid).state == "claimed"
    [row] = ledger(app, "suppression.refused")
    assert row.outcome == "refused" and re.search(error, row.error or "")


def test_caps_defer_candidates_that_come_back_on_a_later_scan(app: App) -> None:
    policy = with_rules(app, max_open_per_repo=2)
    batch = [finding(f"m{n}.py", rule="E501") for n in range(5)]
    first = scan(app, batch, policy, run="s1")
    assert len(first) == 2
    deferred = ledger(app, "suppression.defer")
    assert len(deferred) == 3
    assert all("cap max_open_per_repo 2" in r.payload["reason"] for r in deferred)
    assert scan(app, batch, policy, run="s2") == []  # still full: deferred again, not lost
    for tid in first:
        set_state(app, tid, "merged")
    second = scan(app, batch, policy, run="s3")
    assert len(second) == 2 and not set(second) & set(first)
    hourly = with_rules(app, max_new_per_hour=4)
    assert len(scan(app, batch, hourly, run="s4")) == 0  # 4 made within the hour
    with app.uow() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 4
