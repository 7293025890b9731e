"""Staying quiet, as pure rules: what discovery does with one candidate ticket.

For each candidate group (one ticket key) :func:`decide` returns one :class:`Verdict`, in this
order of precedence:

1. an existing ticket that is open, claimed, under review or merged keeps its row: ``update``
   (the upsert refreshes its findings; already assigned, never re-created);
2. a match on the won't-fix list (policy or ``triloop suppress``): ``wont_fix``;
3. an existing rejected, dead-lettered, closed or suppressed ticket is quiet for the cooldown
   (``cooldown``); after it, it reopens only when its signal escalated (``reopen``: the
   rate per hour reached ``reopen_factor`` times the rate at close, as Sentry's escalating
   issues do), else it stays ``closed``;
4. a new key becomes a ticket (``create``) unless a cap is full (``defer``: nothing is written,
   so the candidate comes back on a later scan).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from triloop.domain.policy import SuppressionRules, WontFix, protected_match
from triloop.domain.states import TicketState

S = TicketState
QUIET_STATES = frozenset({S.REJECTED, S.DEAD_LETTER, S.CLOSED, S.SUPPRESSED})
"""States whose key is quiet: cooldown first, then reopened only on escalation."""

OPEN_STATES = frozenset(set(S) - QUIET_STATES - {S.MERGED, S.VERIFIED, S.REVERTED})
"""States that count against ``max_open_per_repo``."""

RATE = "rate_per_hour"


class Verdict(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    WONT_FIX = "wont_fix"
    COOLDOWN = "cooldown"
    CLOSED = "closed"
    REOPEN = "reopen"
    DEFER = "defer"

    @property
    def upserts(self) -> bool:
        """Whether the upsert writes this candidate's ticket (the others leave it alone)."""
        return self in (Verdict.CREATE, Verdict.UPDATE, Verdict.REOPEN)


@dataclass(frozen=True)
class Candidate:
    key: str
    repo_id: str
    rule: str
    path: str
    rate: float | None = None


@dataclass(frozen=True)
class Existing:
    """The ticket already holding a candidate's key."""

    ticket_id: str
    state: str
    since: datetime  # when it entered ``state``
    rate_at_close: float | None = None


@dataclass(frozen=True)
class Decision:
    key: str
    verdict: Verdict
    reason: str = ""
    ticket_id: str | None = None


@dataclass
class Capacity:
    """Room left under the caps for this scan; taken as candidates are created or reopened."""

    open_now: int = 0
    new_last_hour: int = 0
    max_open: int | None = None
    max_new: int | None = None

    def full(self) -> str | None:
        if self.max_open is not None and self.open_now >= self.max_open:
            return f"{self.open_now} open tickets, cap max_open_per_repo {self.max_open}"
        if self.max_new is not None and self.new_last_hour >= self.max_new:
            return f"{self.new_last_hour} new in the last hour, cap max_new_per_hour {self.max_new}"
        return None

    def take(self) -> None:
        self.open_now += 1
        self.new_last_hour += 1


def rate_of(findings: Iterable[Any]) -> float | None:
    """The highest ``rate_per_hour`` among findings (Finding objects or their JSON)."""
    rates = []
    for finding in findings:
        data = finding.get("data", {}) if isinstance(finding, dict) else finding.data
        value = data.get(RATE)
        if isinstance(value, int | float) and not isinstance(value, bool):
            rates.append(float(value))
    return max(rates) if rates else None


def wont_fix_match(
    entries: Sequence[WontFix], repo_id: str, rule: str, path: str
) -> WontFix | None:
    """The first won't-fix entry matching a candidate, if any."""
    for entry in entries:
        if entry.repo not in (None, repo_id) or not fnmatchcase(rule, entry.rule):
            continue
        if protected_match(path, [entry.path]):
            return entry
    return None


def escalated(rate: float | None, at_close: float | None, factor: float) -> bool:
    """Whether the signal grew by ``factor`` over its rate at close (no rate: never)."""
    return rate is not None and at_close is not None and at_close > 0 and rate >= factor * at_close


def decide(
    candidate: Candidate,
    existing: Existing | None,
    wont_fix: WontFix | None,
    capacity: Capacity,
    rules: SuppressionRules,
    now: datetime,
) -> Decision:
    """The verdict for one candidate (see the module docstring for the order)."""
    key, ticket_id = candidate.key, existing.ticket_id if existing else None
    if existing is not None and S(existing.state) not in QUIET_STATES:
        return Decision(key, Verdict.UPDATE, f"already {existing.state}", ticket_id)
    if wont_fix is not None:
        where = f"{wont_fix.rule} at {wont_fix.path}" + (
            f" in {wont_fix.repo}" if wont_fix.repo else ""
        )
        return Decision(key, Verdict.WONT_FIX, f"won't fix ({where}): {wont_fix.reason}", ticket_id)
    if existing is not None:
        until = existing.since + timedelta(hours=rules.cooldown_hours)
        if now < until:
            return Decision(
                key,
                Verdict.COOLDOWN,
                f"{existing.state}; quiet until {until.isoformat()}",
                ticket_id,
            )
        if not escalated(candidate.rate, existing.rate_at_close, rules.reopen_factor):
            return Decision(
                key,
                Verdict.CLOSED,
                f"{existing.state}; rate {candidate.rate} has not reached "
                f"{rules.reopen_factor} x {existing.rate_at_close} (rate at close)",
                ticket_id,
            )
    full = capacity.full()
    if full is not None:
        return Decision(key, Verdict.DEFER, f"deferred to a later scan: {full}", ticket_id)
    capacity.take()
    if existing is not None:
        return Decision(
            key,
            Verdict.REOPEN,
            f"escalated: rate {candidate.rate} >= {rules.reopen_factor} x "
            f"{existing.rate_at_close} (rate at close)",
            ticket_id,
        )
    return Decision(key, Verdict.CREATE, "", None)
