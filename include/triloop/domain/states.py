"""The ticket and pull-request lifecycles as data: states, events and one transition table.

An illegal move raises :class:`IllegalTransition` naming the event and the state; there is no
"go to any state". Guards are named so a ledger row can say which rule allowed a move.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class TicketState(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    READY = "ready"
    CLAIMED = "claimed"
    RUNNING = "running"
    PR_OPEN = "pr_open"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    MERGED = "merged"
    VERIFIED = "verified"
    REVERTED = "reverted"
    CHANGES_REQUESTED = "changes_requested"
    REJECTED = "rejected"
    FAILED = "failed"
    DEAD_LETTER = "dead_letter"
    NEEDS_HUMAN = "needs_human"
    SUPPRESSED = "suppressed"
    CLOSED = "closed"


class PullRequestState(StrEnum):
    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


class IllegalTransition(Exception):
    """A lifecycle event that the current state does not allow."""

    def __init__(self, event: str, state: str, reason: str = "") -> None:
        self.event, self.state, self.reason = event, state, reason
        detail = f": {reason}" if reason else ""
        super().__init__(f"event {event!r} is not allowed in state {state!r}{detail}")


Guard = Callable[[Mapping[str, Any]], bool]


def _always(_: Mapping[str, Any]) -> bool:
    return True


def _attempts_left(ctx: Mapping[str, Any]) -> bool:
    return int(ctx.get("attempts", 0)) < int(ctx.get("max_attempts", 1))


def _attempts_exhausted(ctx: Mapping[str, Any]) -> bool:
    return not _attempts_left(ctx)


REVERT_RULE = "triloop.revert"
"""The rule of a ticket post-merge verification opens to revert a merge whose tests failed."""


def _is_revert(ctx: Mapping[str, Any]) -> bool:
    return ctx.get("rule") == REVERT_RULE


GUARDS: dict[str, Guard] = {
    "always": _always,
    "attempts_left": _attempts_left,
    "attempts_exhausted": _attempts_exhausted,
    "is_revert": _is_revert,
}


@dataclass(frozen=True)
class Transition:
    source: TicketState
    event: str
    target: TicketState
    guard: str = "always"


S = TicketState
TRANSITIONS: tuple[Transition, ...] = (
    Transition(S.NEW, "triage_ready", S.READY),
    Transition(S.NEW, "triage_hold", S.TRIAGED),
    Transition(S.NEW, "suppress", S.SUPPRESSED),
    Transition(S.TRIAGED, "make_ready", S.READY),
    Transition(S.READY, "claim", S.CLAIMED),
    Transition(S.CLAIMED, "start", S.RUNNING),
    Transition(S.CLAIMED, "lease_expired", S.READY, "attempts_left"),
    Transition(S.RUNNING, "lease_expired", S.READY, "attempts_left"),
    Transition(S.CLAIMED, "abandon", S.DEAD_LETTER, "attempts_exhausted"),
    Transition(S.RUNNING, "abandon", S.DEAD_LETTER, "attempts_exhausted"),
    Transition(S.RUNNING, "open_pr", S.PR_OPEN),
    Transition(S.RUNNING, "fail", S.FAILED),
    Transition(S.RUNNING, "give_up", S.DEAD_LETTER),
    Transition(S.FAILED, "retry", S.READY, "attempts_left"),
    Transition(S.FAILED, "exhaust", S.DEAD_LETTER, "attempts_exhausted"),
    Transition(S.DEAD_LETTER, "requeue", S.READY),
    # A harness stopped by a budget (tokens, cost, runtime) waits for an operator's call.
    Transition(S.RUNNING, "over_budget", S.NEEDS_HUMAN),
    Transition(S.NEEDS_HUMAN, "requeue", S.READY),
    Transition(S.NEEDS_HUMAN, "resolve", S.CLOSED),
    Transition(S.PR_OPEN, "start_review", S.IN_REVIEW),
    Transition(S.IN_REVIEW, "recheck", S.PR_OPEN),
    Transition(S.IN_REVIEW, "approve", S.APPROVED),
    Transition(S.IN_REVIEW, "request_changes", S.CHANGES_REQUESTED),
    Transition(S.IN_REVIEW, "reject", S.REJECTED),
    Transition(S.CHANGES_REQUESTED, "requeue", S.READY),
    # A reviewer's "request changes" once the ticket's attempts are spent.
    Transition(S.CHANGES_REQUESTED, "exhaust", S.DEAD_LETTER, "attempts_exhausted"),
    Transition(S.REJECTED, "close", S.CLOSED),
    Transition(S.APPROVED, "merge", S.MERGED),
    # Post-merge verification: the tests on the default branch at the merge commit.
    Transition(S.MERGED, "verify", S.VERIFIED),
    Transition(S.MERGED, "revert", S.REVERTED),
    # A revert PR is born with its branch pushed: straight to review, through governance.
    Transition(S.NEW, "open_revert", S.PR_OPEN, "is_revert"),
    # A merged revert whose tests still fail is not reverted again: an operator decides.
    Transition(S.MERGED, "escalate", S.NEEDS_HUMAN),
    Transition(S.APPROVED, "recheck", S.PR_OPEN),
    Transition(S.NEW, "resolve", S.CLOSED),
    Transition(S.TRIAGED, "resolve", S.CLOSED),
    Transition(S.READY, "resolve", S.CLOSED),
    # An operator's won't-fix (`triloop suppress TICKET`): any ticket not being worked on.
    *(
        Transition(source, "wont_fix", S.CLOSED)
        for source in (S.NEW, S.TRIAGED, S.READY, S.FAILED, S.DEAD_LETTER, S.NEEDS_HUMAN)
    ),
    *(Transition(source, "wont_fix", S.CLOSED) for source in (S.CHANGES_REQUESTED, S.REJECTED)),
    # Discovery reopens a quiet ticket after its cooldown when its signal escalates.
    *(
        Transition(source, "reopen", S.NEW)
        for source in (S.REJECTED, S.DEAD_LETTER, S.CLOSED, S.SUPPRESSED)
    ),
)

_TABLE: dict[tuple[TicketState, str], Transition] = {(t.source, t.event): t for t in TRANSITIONS}


def next_state(
    state: TicketState | str, event: str, context: Mapping[str, Any] | None = None
) -> Transition:
    """Return the transition ``event`` takes from ``state``, or raise IllegalTransition."""
    current = TicketState(state)
    transition = _TABLE.get((current, event))
    if transition is None:
        raise IllegalTransition(event, current.value)
    if not GUARDS[transition.guard](context or {}):
        raise IllegalTransition(event, current.value, f"guard {transition.guard!r} refused")
    return transition


PR_TRANSITIONS: tuple[tuple[PullRequestState, str, PullRequestState], ...] = (
    (PullRequestState.OPEN, "merge", PullRequestState.MERGED),
    (PullRequestState.OPEN, "close", PullRequestState.CLOSED),
)
"""The pull-request lifecycle: (state, event, target); merged and closed are final."""

_PR_TABLE = {(source, event): target for source, event, target in PR_TRANSITIONS}


def next_pr_state(state: PullRequestState | str, event: str) -> PullRequestState:
    """The state ``event`` takes a pull request to, or raise IllegalTransition."""
    current = PullRequestState(state)
    target = _PR_TABLE.get((current, event))
    if target is None:
        raise IllegalTransition(event, f"pull request {current.value}")
    return target


def events_from(state: TicketState | str) -> list[str]:
    """The events a ticket in ``state`` accepts (for status output and error messages)."""
    current = TicketState(state)
    return sorted(t.event for t in TRANSITIONS if t.source is current)


TERMINAL_STATES: frozenset[TicketState] = frozenset(
    state for state in TicketState if not any(t.source is state for t in TRANSITIONS)
)
"""States no event leaves (a dead letter is not one: an operator can requeue it)."""
