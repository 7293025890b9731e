"""The circuit breaker as data: states, a transition table and pure decisions. No I/O.

closed --trip--> open (``consecutive_failures`` failed harness runs in a row, or a failure rate
over ``failure_rate`` in the last ``window_runs`` runs once ``min_runs`` are in);
open --cool_down--> half_open (``cooldown_s`` after it opened: one trial run is let through);
half_open --trial_passed--> closed; half_open --trial_failed--> open; open|half_open --reset-->
closed (an operator). Only runs recorded since the breaker last closed count, so the failures
that opened it cannot open it again once it closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from triloop.domain.policy import CircuitBreakerRules
from triloop.domain.states import IllegalTransition

FAILED_RUNS = frozenset({"failed", "died", "invalid"})
"""Harness-run statuses that count as failures: the harness failed, its sandbox died before
writing a result, or its result was unreadable. over_budget and no_change are not failures."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


B = BreakerState
BREAKER_TRANSITIONS: tuple[tuple[BreakerState, str, BreakerState], ...] = (
    (B.CLOSED, "trip", B.OPEN),
    (B.OPEN, "cool_down", B.HALF_OPEN),
    (B.HALF_OPEN, "trial_passed", B.CLOSED),
    (B.HALF_OPEN, "trial_failed", B.OPEN),
    (B.OPEN, "reset", B.CLOSED),
    (B.HALF_OPEN, "reset", B.CLOSED),
)
_TABLE = {(source, event): target for source, event, target in BREAKER_TRANSITIONS}


def next_breaker_state(state: BreakerState | str, event: str) -> BreakerState:
    """The state ``event`` takes the breaker to, or raise IllegalTransition."""
    current = BreakerState(state)
    target = _TABLE.get((current, event))
    if target is None:
        raise IllegalTransition(event, f"circuit breaker {current.value}")
    return target


@dataclass(frozen=True)
class RunRecord:
    """One recorded harness run, as the breaker sees it."""

    ticket_id: str
    owner: str
    status: str
    summary: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILED_RUNS


@dataclass(frozen=True)
class BreakerView:
    """The breaker row's fields the decisions need."""

    state: BreakerState = BreakerState.CLOSED
    opened_at: datetime | None = None
    reason: str = ""
    trial_owner: str | None = None
    trial_ticket: str | None = None


@dataclass(frozen=True)
class Move:
    """A breaker transition to make, and why."""

    event: str
    reason: str


@dataclass(frozen=True)
class Gate:
    """What claiming may do now: ``reason`` set means claim nothing; ``trial`` means claim at
    most one ticket, the half-open trial; ``event`` is a move to make first (cool_down)."""

    reason: str = ""
    trial: bool = False
    event: str | None = None


def trip_reason(runs: Sequence[RunRecord], rules: CircuitBreakerRules) -> str | None:
    """Why ``runs`` (oldest first, since the breaker last closed) open the breaker, or None."""
    streak = 0
    for run in reversed(runs):
        if not run.failed:
            break
        streak += 1
    if streak >= rules.consecutive_failures:
        last = runs[-1]
        detail = f": {last.summary[:200]}" if last.summary else ""
        return (
            f"{streak} failed harness runs in a row (limit {rules.consecutive_failures}); "
            f"last: ticket {last.ticket_id} {last.status}{detail}"
        )
    window = list(runs[-rules.window_runs :])
    if len(window) >= rules.min_runs:
        failed = sum(run.failed for run in window)
        if failed / len(window) > rules.failure_rate:
            return (
                f"{failed} of the last {len(window)} harness runs failed "
                f"({failed / len(window):.0%}, over the {rules.failure_rate:.0%} limit)"
            )
    return None


def after_run(
    view: BreakerView, run: RunRecord, runs: Sequence[RunRecord], rules: CircuitBreakerRules
) -> Move | None:
    """The move a newly recorded ``run`` makes (``runs``: since the last close, ending in it)."""
    if view.state is BreakerState.CLOSED:
        reason = trip_reason(runs, rules)
        return Move("trip", reason) if reason else None
    if view.state is BreakerState.HALF_OPEN and is_trial(view, run):
        if run.failed:
            detail = f": {run.summary[:200]}" if run.summary else ""
            return Move("trial_failed", f"trial run of ticket {run.ticket_id} {run.status}{detail}")
        return Move("trial_passed", f"trial run of ticket {run.ticket_id} {run.status}")
    return None  # open: runs that were in flight when it opened decide nothing


def is_trial(view: BreakerView, run: RunRecord) -> bool:
    return run.ticket_id == view.trial_ticket and run.owner == view.trial_owner


def half_opens_at(view: BreakerView, rules: CircuitBreakerRules) -> datetime | None:
    """When an open breaker lets its trial through (None unless open)."""
    if view.state is not BreakerState.OPEN or view.opened_at is None:
        return None
    opened = view.opened_at if view.opened_at.tzinfo else view.opened_at.replace(tzinfo=UTC)
    return opened + timedelta(seconds=rules.cooldown_s)


def gate(view: BreakerView, rules: CircuitBreakerRules, now: datetime, trial_busy: bool) -> Gate:
    """May execution claim now? ``trial_busy``: the half-open trial ticket is still leased."""
    if view.state is BreakerState.CLOSED:
        return Gate()
    if view.state is BreakerState.OPEN:
        due = half_opens_at(view, rules)
        if due is not None and now < due:
            return Gate(
                reason=(
                    f"circuit breaker open since {_stamp(view.opened_at)}: {view.reason}; "
                    f"half-opens at {_stamp(due)}"
                )
            )
        return Gate(trial=True, event="cool_down")
    if trial_busy:
        return Gate(
            reason=(
                f"circuit breaker half-open: trial ticket {view.trial_ticket} of "
                f"{view.trial_owner} has not finished"
            )
        )
    return Gate(trial=True)


def _stamp(moment: datetime | None) -> str:
    if moment is None:
        return "?"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
