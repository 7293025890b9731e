"""The circuit breaker's table and decisions, as pure functions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from triloop.domain.breaker import (
    BREAKER_TRANSITIONS,
    BreakerState,
    BreakerView,
    RunRecord,
    after_run,
    gate,
    half_opens_at,
    next_breaker_state,
    trip_reason,
)
from triloop.domain.policy import CircuitBreakerRules
from triloop.domain.states import IllegalTransition

RULES = CircuitBreakerRules(
    consecutive_failures=3, failure_rate=0.5, window_runs=10, min_runs=6, cooldown_s=600
)
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def runs(pattern: str) -> list[RunRecord]:
    """``pattern``: one letter per run, oldest first: f failed, d died, i invalid, ok others."""
    status = {"f": "failed", "d": "died", "i": "invalid", "c": "changed", "n": "no_change"}
    status["o"] = "over_budget"
    return [RunRecord(f"t{n}", "run", status[c], "boom") for n, c in enumerate(pattern)]


@pytest.mark.parametrize(
    ("state", "event", "target"),
    [(s.value, e, t.value) for s, e, t in BREAKER_TRANSITIONS],
)
def test_table_moves(state: str, event: str, target: str) -> None:
    assert next_breaker_state(state, event) is BreakerState(target)


@pytest.mark.parametrize(
    ("state", "event"),
    [("closed", "reset"), ("closed", "cool_down"), ("open", "trip"), ("half_open", "trip")],
)
def test_illegal_moves_name_event_and_state(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition, match=f"event '{event}'.*circuit breaker {state}"):
        next_breaker_state(state, event)


@pytest.mark.parametrize(
    ("pattern", "match"),
    [
        ("fff", "3 failed harness runs in a row"),
        ("ccfdi", "3 failed harness runs in a row.*ticket t4 invalid: boom"),
        ("ffcffcf", r"5 of the last 7 harness runs failed \(71%, over the 50% limit\)"),
        ("ff", None),
        ("fffc", None),  # the streak ended
        ("ccccff", None),
        ("fcfcf", None),  # 3 of 5, fewer than min_runs
        ("fcfcfc", None),  # 3 of 6 = 50%, not over
        ("ccccccccccfcfcfcffcc", None),  # window: last 10 has 5 failed = 50%
        ("oonnoo", None),  # over budget and no change are not failures
    ],
)
def test_trip_reason(pattern: str, match: str | None) -> None:
    reason = trip_reason(runs(pattern), RULES)
    if match is None:
        assert reason is None
    else:
        assert reason is not None and re.search(match, reason), reason


def test_rate_covers_only_the_window() -> None:
    old_failures = runs("ffcffcffcf" + "cccccccccc")  # 7 failed, but before the window
    assert trip_reason(old_failures, RULES) is None
    recent = trip_reason(runs("cccccccccc" + "ffcffcffcf"), RULES)
    assert recent == "7 of the last 10 harness runs failed (70%, over the 50% limit)"


def test_closed_breaker_trips_on_the_run_that_completes_the_streak() -> None:
    history = runs("cff")
    assert after_run(BreakerView(), history[-1], history, RULES) is None
    history = runs("cfff")
    move = after_run(BreakerView(), history[-1], history, RULES)
    assert move is not None and move.event == "trip" and "in a row" in move.reason


TRIAL = BreakerView(
    state=BreakerState.HALF_OPEN, opened_at=T0, reason="x", trial_owner="run", trial_ticket="t0"
)


@pytest.mark.parametrize(
    ("status", "event"),
    [("changed", "trial_passed"), ("no_change", "trial_passed"), ("failed", "trial_failed")],
)
def test_half_open_trial_decides(status: str, event: str) -> None:
    run = RunRecord("t0", "run", status, "why")
    move = after_run(TRIAL, run, [run], RULES)
    assert move is not None and move.event == event
    assert next_breaker_state(TRIAL.state, move.event) is (
        BreakerState.CLOSED if event == "trial_passed" else BreakerState.OPEN
    )


@pytest.mark.parametrize(
    ("view", "run"),
    [
        (TRIAL, RunRecord("t9", "run", "failed")),  # not the trial ticket
        (TRIAL, RunRecord("t0", "other-run", "failed")),  # not the trial's run
        (BreakerView(state=BreakerState.OPEN, opened_at=T0), RunRecord("t0", "run", "failed")),
    ],
)
def test_runs_other_than_the_trial_move_nothing(view: BreakerView, run: RunRecord) -> None:
    assert after_run(view, run, [*runs("fffff"), run], RULES) is None


OPEN = BreakerView(state=BreakerState.OPEN, opened_at=T0, reason="3 failed harness runs")


@pytest.mark.parametrize(
    ("view", "now", "busy", "reason", "trial", "event"),
    [
        (BreakerView(), T0, False, "", False, None),
        (OPEN, T0 + timedelta(seconds=599), False, "circuit breaker open since", False, None),
        (OPEN, T0 + timedelta(seconds=600), False, "", True, "cool_down"),
        (
            TRIAL,
            T0 + timedelta(hours=1),
            True,
            "trial ticket t0 of run has not finished",
            False,
            None,
        ),
        (TRIAL, T0 + timedelta(hours=1), False, "", True, None),
    ],
)
def test_gate(
    view: BreakerView, now: datetime, busy: bool, reason: str, trial: bool, event: str | None
) -> None:
    decision = gate(view, RULES, now, busy)
    assert (bool(decision.reason), decision.trial, decision.event) == (bool(reason), trial, event)
    assert reason in decision.reason


def test_open_gate_says_why_and_when_it_half_opens() -> None:
    decision = gate(OPEN, RULES, T0, trial_busy=False)
    assert decision.reason == (
        "circuit breaker open since 2026-03-01 12:00:00 UTC: 3 failed harness runs; "
        "half-opens at 2026-03-01 12:10:00 UTC"
    )
    assert half_opens_at(OPEN, RULES) == T0 + timedelta(seconds=600)
    assert half_opens_at(TRIAL, RULES) is None
