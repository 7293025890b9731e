from __future__ import annotations

import pytest
from triloop.domain.states import (
    TRANSITIONS,
    IllegalTransition,
    TicketState,
    next_pr_state,
    next_state,
)


@pytest.mark.parametrize(
    ("state", "event", "target"),
    [
        ("new", "triage_ready", "ready"),
        ("ready", "claim", "claimed"),
        ("claimed", "start", "running"),
        ("running", "open_pr", "pr_open"),
        ("pr_open", "start_review", "in_review"),
        ("in_review", "approve", "approved"),
        ("approved", "merge", "merged"),
        ("running", "lease_expired", "ready"),
        ("in_review", "reject", "rejected"),
    ],
)
def test_legal_moves(state: str, event: str, target: str) -> None:
    assert next_state(state, event).target is TicketState(target)


@pytest.mark.parametrize(
    ("state", "event"),
    [("new", "merge"), ("ready", "open_pr"), ("merged", "claim"), ("closed", "start")],
)
def test_illegal_moves_name_event_and_state(state: str, event: str) -> None:
    with pytest.raises(
        IllegalTransition, match=f"event '{event}' is not allowed in state '{state}'"
    ):
        next_state(state, event)


def test_retry_guard_counts_attempts() -> None:
    assert (
        next_state("failed", "retry", {"attempts": 1, "max_attempts": 3}).target
        is TicketState.READY
    )
    with pytest.raises(IllegalTransition, match="guard 'attempts_left' refused"):
        next_state("failed", "retry", {"attempts": 3, "max_attempts": 3})
    assert next_state("failed", "exhaust", {"attempts": 3, "max_attempts": 3}).target is (
        TicketState.DEAD_LETTER
    )


def test_table_has_no_duplicate_edges() -> None:
    edges = [(t.source, t.event) for t in TRANSITIONS]
    assert len(edges) == len(set(edges))


@pytest.mark.parametrize(
    ("state", "event", "target"), [("open", "merge", "merged"), ("open", "close", "closed")]
)
def test_pull_request_moves(state: str, event: str, target: str) -> None:
    assert next_pr_state(state, event).value == target


@pytest.mark.parametrize(("state", "event"), [("merged", "close"), ("closed", "merge")])
def test_final_pull_request_states_refuse_every_event(state: str, event: str) -> None:
    with pytest.raises(IllegalTransition, match=f"event '{event}' is not allowed in state"):
        next_pr_state(state, event)
