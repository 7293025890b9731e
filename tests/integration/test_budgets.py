"""Budgets and the circuit breaker through execution's claim/prepare/finish, on both databases."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.cli import main
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import Budget, Claim, HarnessRequest
from triloop.execution.service import claim, finish, prepare
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import Actor
from triloop.store.models import (
    CircuitBreaker,
    Effect,
    HarnessRun,
    LedgerEntry,
    PullRequest,
    Repo,
    Ticket,
)

from tests.support.rows import autofix_on_host, host_scan


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _actor(run: str, task: str = "t") -> Actor:
    return Actor(name=f"test:{task}", dag_id="triloop_test", run_id=run, task_id=task, try_number=1)


def _tickets(app: App) -> None:
    onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    with app.uow() as session:
        repo = repo_ref(session.get_one(Repo, "sample"))
    assert len(host_scan(app, repo, _actor("scan-1"))) >= 4


def _result(request: HarnessRequest, status: str, **fields: Any) -> None:
    out = Path(request.output_dir)
    document = {"schema_version": 1, "harness": request.harness, "ticket_id": request.ticket_id}
    (out / "result.json").write_text(json.dumps({**document, "status": status, **fields}))


def _real_patch(request: HarnessRequest) -> None:
    """What the autofix harness leaves: ruff's fix of the ticket's rule, as a diff."""
    assert autofix_on_host(request)


def _meter(request: HarnessRequest, tokens: int, over: str) -> None:
    egress = Path(request.output_dir, "egress")
    egress.mkdir(exist_ok=True)
    meter = {"schema_version": 1, "requests": 3, "tokens": tokens, "prompt_tokens": tokens - 10}
    meter |= {"completion_tokens": 10, "refused": [], "over_budget": over}
    (egress / "usage.json").write_text(json.dumps(meter))


def _snapshot(app: App) -> dict[str, Any]:
    with app.uow() as session:
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (LedgerEntry, HarnessRun, Effect, PullRequest)
        }
        states = dict(session.execute(select(Ticket.id, Ticket.state)).tuples().all())
        return {"counts": counts, "states": states}


def _remote_heads(app: App) -> str:
    with app.uow() as session:
        remote = session.get_one(Repo, "sample").remote
    return subprocess.run(
        ["git", "ls-remote", remote], capture_output=True, text=True, check=True
    ).stdout


def _breaker(app: App) -> CircuitBreaker:
    with app.uow() as session:
        row = session.get_one(CircuitBreaker, "global")
        session.expunge(row)
        return row


def _ledger(app: App, action: str) -> list[LedgerEntry]:
    with app.uow() as session:
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == action).order_by(LedgerEntry.id)
        ).all()
        session.expunge_all()
        return list(rows)


def _run(app: App, first: Claim, run: str, status: str, **fields: Any) -> HarnessRequest:
    """prepare, the harness's result (and a real patch when it changed), finish."""
    request = prepare(app, first, _actor(run, "prepare"))
    if status == "changed":
        _real_patch(request)
    _result(request, status, **fields)
    finish(app, request, _actor(run, "open_pr"))
    return request


@pytest.mark.parametrize(
    ("stop", "limit", "figures"),
    [
        ("result", "tokens", "250000 tokens used, limit 200000"),
        ("meter", "tokens", "reported by egress proxy"),
        ("usage", "cost_usd", "2.5 USD used, limit 2 USD"),
        ("usage-meter", "tokens", "260000 tokens used, limit 200000"),
    ],
)
def test_over_budget_moves_to_needs_human_once_and_opens_no_pr(
    app: App, stop: str, limit: str, figures: str
) -> None:
    _tickets(app)
    [first, *_] = claim(app, _actor("exec-1"))
    request = prepare(app, first, _actor("exec-1", "prepare"))
    assert request.budget == Budget(max_tokens=200_000, max_cost_usd=2.0, max_runtime_s=900)
    assert json.loads(Path(request.output_dir, "request.json").read_text())  # written as before
    _real_patch(request)  # a patch is there: it must not become a PR
    if stop == "result":
        _result(request, "over_budget", over_budget="tokens", tokens=250_000, cost_usd=0.4)
    elif stop == "meter":
        _meter(request, 150_000, "tokens")
        _result(request, "changed", tokens=1_000, files_changed=request.paths)
    elif stop == "usage":
        _result(request, "changed", cost_usd=2.5, files_changed=request.paths)
    else:  # the harness under-reports; the proxy's larger count wins
        _meter(request, 260_000, "")
        _result(request, "changed", tokens=5_000, files_changed=request.paths)
    heads = _remote_heads(app)
    assert finish(app, request, _actor("exec-1", "open_pr")) is None
    after = _snapshot(app)
    assert finish(app, request, _actor("exec-1", "open_pr")) is None  # cleared and re-run
    assert _snapshot(app) == after
    assert _remote_heads(app) == heads
    with app.uow() as session:
        ticket = session.get_one(Ticket, first.ticket_id)
        [run] = session.scalars(select(HarnessRun)).all()
        assert session.scalars(select(PullRequest)).all() == []
        assert (ticket.state, run.status, run.over_budget) == ("needs_human", "over_budget", limit)
        assert (run.ticket_id, run.attempt, run.run_owner) == (
            first.ticket_id,
            first.attempt,
            "triloop_test/exec-1",
        )
    [move] = _ledger(app, "ticket.over_budget")
    assert (move.from_state, move.to_state, move.ticket_id) == (
        "running",
        "needs_human",
        first.ticket_id,
    )
    assert figures in (move.error or "") and move.payload["limit"] == limit


def test_needs_human_is_requeued_and_its_next_attempt_opens_a_pr(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    _tickets(app)
    [first, *_] = claim(app, _actor("exec-1"))
    _run(app, first, "exec-1", "over_budget", over_budget="runtime_s", duration_s=901.0)
    assert main(["--db-url", app.settings.db_url, "status"]) == 0
    out = capsys.readouterr().out
    assert "needs human (1;" in out
    assert f"{first.ticket_id} " in out and "over budget: runtime_s 901 s used, limit 900 s" in out
    assert main(["--db-url", app.settings.db_url, "requeue", first.ticket_id]) == 0
    with app.uow() as session:
        ticket = session.get_one(Ticket, first.ticket_id)
        assert (ticket.state, ticket.attempts) == ("ready", 1)
    again = next(c for c in claim(app, _actor("exec-2")) if c.ticket_id == first.ticket_id)
    assert again.attempt == 2
    _run(app, again, "exec-2", "changed", files_changed=[])
    with app.uow() as session:
        runs = session.scalars(select(HarnessRun).order_by(HarnessRun.attempt)).all()
        assert [(r.attempt, r.status) for r in runs] == [(1, "over_budget"), (2, "changed")]
        assert session.get_one(Ticket, first.ticket_id).state == "pr_open"


def test_a_requeued_dead_letter_gets_new_attempt_numbers_and_opens_its_pr(app: App) -> None:
    """Requeue starts a fresh round of attempts, never a reused number (effects, runs, branch)."""
    _tickets(app)
    [first, *_] = claim(app, _actor("exec-1"))
    _run(app, first, "exec-1", "no_change", summary="nothing to fix")
    with app.uow() as session:
        assert session.get_one(Ticket, first.ticket_id).state == "dead_letter"
    assert main(["--db-url", app.settings.db_url, "requeue", first.ticket_id]) == 0
    with app.uow() as session:
        ticket = session.get_one(Ticket, first.ticket_id)
        assert (ticket.state, ticket.attempts, ticket.attempts_base) == ("ready", 1, 1)
    again = next(c for c in claim(app, _actor("exec-2")) if c.ticket_id == first.ticket_id)
    assert again.attempt == 2
    _run(app, again, "exec-2", "changed", files_changed=[])
    with app.uow() as session:
        runs = session.scalars(select(HarnessRun).order_by(HarnessRun.attempt)).all()
        assert [(r.attempt, r.status) for r in runs] == [(1, "no_change"), (2, "changed")]
        assert session.get_one(Ticket, first.ticket_id).state == "pr_open"
        assert session.scalar(select(func.count()).select_from(PullRequest)) == 1


def test_three_failed_runs_open_the_breaker_and_claims_stop_saying_why(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    _tickets(app)
    claims = claim(app, _actor("exec-1"))
    assert len(claims) >= 4 and claims.reason == ""
    for n, held in enumerate(claims[:3], start=1):
        _run(app, held, "exec-1", "failed", summary=f"agent crashed {n}")
        assert _breaker(app).state == ("open" if n == 3 else "closed")
    # A run that was in flight when it opened finishes; it decides nothing.
    _run(app, claims[3], "exec-1", "failed", summary="late")
    breaker = _breaker(app)
    assert "3 failed harness runs in a row" in breaker.reason
    assert "agent crashed 3" in breaker.reason
    [trip] = _ledger(app, "breaker.trip")
    assert (trip.from_state, trip.to_state) == ("closed", "open")

    before = _snapshot(app)
    paused = claim(app, _actor("exec-2"))
    assert list(paused) == [] and "circuit breaker open since" in paused.reason
    assert "half-opens at" in paused.reason
    again = claim(app, _actor("exec-2"))  # the claim task cleared and re-run
    assert (list(again), again.reason) == ([], paused.reason)
    [row] = _ledger(app, "execution.paused")
    assert row.error == paused.reason and row.run_id == "exec-2"
    assert _snapshot(app)["states"] == before["states"]

    assert main(["--db-url", app.settings.db_url, "status"]) == 0
    out = capsys.readouterr().out
    assert "circuit breaker: open (3 failed harness runs in a row" in out
    assert "half-opens at" in out


def _cool_down(app: App) -> None:
    """As if the cooldown had passed: the breaker opened cooldown_s (and a second) ago."""
    with app.uow() as session:
        row = session.get_one(CircuitBreaker, "global")
        assert row.opened_at is not None
        row.opened_at -= timedelta(seconds=app.policy.circuit_breaker.cooldown_s + 1)


@pytest.mark.parametrize(("trial", "state"), [("changed", "closed"), ("failed", "open")])
def test_after_the_cooldown_one_trial_decides(app: App, trial: str, state: str) -> None:
    _tickets(app)
    claims = claim(app, _actor("exec-1"))
    for held in claims[:3]:
        _run(app, held, "exec-1", "failed")
    assert list(claim(app, _actor("exec-2"))) == []
    _cool_down(app)
    [trial_claim] = claim(app, _actor("exec-3"))
    breaker = _breaker(app)
    assert (breaker.state, breaker.trial_ticket, breaker.trial_owner) == (
        "half_open",
        trial_claim.ticket_id,
        "triloop_test/exec-3",
    )
    waiting = claim(app, _actor("exec-4"))
    assert list(waiting) == [] and "half-open: trial ticket" in waiting.reason
    _run(app, trial_claim, "exec-3", trial, files_changed=[])
    assert _breaker(app).state == state
    with app.uow() as session:
        moves = session.scalars(
            select(LedgerEntry.action)
            .where(LedgerEntry.action.like("breaker.%"))
            .order_by(LedgerEntry.id)
        ).all()
    verdict = "breaker.trial_passed" if state == "closed" else "breaker.trial_failed"
    assert moves == ["breaker.trip", "breaker.cool_down", "breaker.trial", verdict]
    after = claim(app, _actor("exec-5"))
    if state == "closed":  # the failures that opened it count no more
        assert len(after) >= 2 and after.reason == ""
    else:
        assert list(after) == [] and "trial run of ticket" in after.reason


def test_operator_resets_an_open_breaker(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    _tickets(app)
    for held in claim(app, _actor("exec-1"))[:3]:
        _run(app, held, "exec-1", "failed")
    url = ["--db-url", app.settings.db_url]
    assert main([*url, "breaker", "reset"]) == 0
    assert "circuit breaker reset: open -> closed" in capsys.readouterr().out
    assert main([*url, "breaker", "reset"]) == 0
    assert "already closed" in capsys.readouterr().out
    [reset] = _ledger(app, "breaker.reset")
    assert reset.actor.startswith("cli:") and (reset.from_state, reset.to_state) == (
        "open",
        "closed",
    )
    assert claim(app, _actor("exec-2"))  # the three failures before the reset count no more


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"global_daily_cost_usd": 1.0}, "global daily cost limit reached: 1.20 of 1.00 USD"),
        ({"repo_daily_cost_usd": 1.0}, "daily cost limit of repository sample reached: 1.20"),
    ],
)
def test_daily_cost_limit_stops_claims(
    app: App, limits: dict[str, float], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _tickets(app)
    for name, value in limits.items():
        setattr(app.policy.budgets, name, value)
    [first, second, *_] = claim(app, _actor("exec-1"))
    _run(app, first, "exec-1", "failed", cost_usd=0.7)
    _run(app, second, "exec-1", "no_change", cost_usd=0.5)
    with app.uow() as session:
        ready = session.scalar(select(func.count()).where(Ticket.state == "ready"))
    assert ready  # there is work; the limit is why none is claimed
    held = claim(app, _actor("exec-3"))
    assert list(held) == [] and reason in held.reason
    rows = _ledger(app, "execution.paused") + _ledger(app, "execution.held")
    assert [r.run_id for r in rows] == ["exec-3"] and reason in (rows[0].error or "")
    assert main(["--db-url", app.settings.db_url, "status"]) == 0
    assert "1.20 of" in capsys.readouterr().out
