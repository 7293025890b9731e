"""The post-merge moves of the ticket lifecycle: verify, revert, a revert PR born in pr_open."""

from __future__ import annotations

import pytest
from triloop.domain.states import (
    REVERT_RULE,
    TERMINAL_STATES,
    IllegalTransition,
    TicketState,
    next_state,
)
from triloop.domain.suppression import OPEN_STATES


@pytest.mark.parametrize(
    ("event", "target"),
    [("verify", "verified"), ("revert", "reverted"), ("escalate", "needs_human")],
)
def test_a_merged_ticket_is_verified_reverted_or_escalated(event: str, target: str) -> None:
    assert next_state("merged", event).target is TicketState(target)


def test_only_a_revert_ticket_opens_its_pr_from_new() -> None:
    move = next_state("new", "open_revert", {"rule": REVERT_RULE})
    assert (move.target, move.guard) == (TicketState.PR_OPEN, "is_revert")
    with pytest.raises(
        IllegalTransition, match="event 'open_revert' is not allowed in state 'new'"
    ):
        next_state("new", "open_revert", {"rule": "F401"})


@pytest.mark.parametrize("state", ["verified", "reverted"])
def test_verified_and_reverted_are_final_and_not_open(state: str) -> None:
    assert TicketState(state) in TERMINAL_STATES
    assert TicketState(state) not in OPEN_STATES
    with pytest.raises(
        IllegalTransition, match=f"event 'revert' is not allowed in state '{state}'"
    ):
        next_state(state, "revert")


def test_merged_is_no_longer_final() -> None:
    assert TicketState.MERGED not in TERMINAL_STATES
