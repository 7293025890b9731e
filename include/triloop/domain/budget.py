"""Budgets as pure functions: is one run over its limits, may execution claim today.

No I/O: callers pass the usage they measured and the spend they summed. A per-ticket limit
stops one harness run (the ticket waits in needs_human); a daily cost limit, per repository
or global, stops claiming until the next UTC day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from triloop.domain.contracts import Budget
from triloop.domain.policy import Budgets

LIMITS = ("tokens", "cost_usd", "runtime_s")
"""The per-ticket limits, by the name HarnessResult.over_budget and the ledger use."""


@dataclass(frozen=True)
class Usage:
    """What one harness run used, as measured (result file, egress proxy meter)."""

    tokens: int = 0
    cost_usd: float = 0.0
    runtime_s: float = 0.0


@dataclass(frozen=True)
class Exceeded:
    """The limit a run went over, with the figures that show it."""

    limit: str
    used: float
    maximum: float
    source: str = "usage"

    @property
    def message(self) -> str:
        unit = {"tokens": " tokens", "cost_usd": " USD", "runtime_s": " s"}[self.limit]
        return (
            f"over budget: {self.limit} {_figure(self.used)}{unit} used, limit "
            f"{_figure(self.maximum)}{unit} (reported by {self.source})"
        )


def _figure(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}".rstrip("0")


def ticket_budget(budgets: Budgets) -> Budget:
    """The per-ticket limits the policy sets, as the HarnessRequest carries them."""
    return Budget(
        max_tokens=budgets.ticket_max_tokens,
        max_cost_usd=budgets.ticket_max_cost_usd,
        max_runtime_s=budgets.ticket_max_runtime_s,
    )


def _maximum(budget: Budget, limit: str) -> float:
    return {
        "tokens": budget.max_tokens,
        "cost_usd": budget.max_cost_usd,
        "runtime_s": budget.max_runtime_s,
    }[limit]


def _used(usage: Usage, limit: str) -> float:
    return {"tokens": usage.tokens, "cost_usd": usage.cost_usd, "runtime_s": usage.runtime_s}[limit]


def exceeded(
    usage: Usage, budget: Budget, reported: Mapping[str, str] | None = None
) -> Exceeded | None:
    """The first limit ``usage`` went over, or None.

    ``reported`` maps a source (``harness``, ``egress proxy``) to the limit it says stopped the
    run; a stop reported by the harness or the proxy counts even when the figures it left stay
    under the limit (it stopped the run before spending more). A name other than those in
    :data:`LIMITS` (a stop that did not say which limit) is the limit the figures went over,
    else read by its wording (cost, time), else the token limit.
    """
    over = next((n for n in LIMITS if _used(usage, n) > _maximum(budget, n)), None)
    for source, limit in (reported or {}).items():
        if limit:
            name = limit if limit in LIMITS else over or _alias(limit)
            return Exceeded(name, _used(usage, name), _maximum(budget, name), source)
    if over is not None:
        return Exceeded(over, _used(usage, over), _maximum(budget, over))
    return None


def _alias(limit: str) -> str:
    lowered = limit.lower()
    if "cost" in lowered or "usd" in lowered:
        return "cost_usd"
    if "time" in lowered or "runtime" in lowered:
        return "runtime_s"
    return "tokens"


def utc_day(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day ``now`` falls in, as [start, end)."""
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class DailySpend:
    """Dollars harness runs spent in one UTC day, in all and per repository."""

    total_usd: float = 0.0
    per_repo_usd: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DailyVerdict:
    """Whether execution may claim today: ``reason`` is set when it may claim nothing;
    ``held_repos`` (repo id -> reason) may not be claimed from while others may."""

    reason: str = ""
    held_repos: Mapping[str, str] = field(default_factory=dict)

    @property
    def may_claim(self) -> bool:
        return not self.reason


def daily_verdict(spend: DailySpend, budgets: Budgets, day: datetime) -> DailyVerdict:
    """Check today's spend against the global and per-repository daily cost limits."""
    date = utc_day(day)[0].date().isoformat()
    if spend.total_usd >= budgets.global_daily_cost_usd:
        return DailyVerdict(
            reason=(
                f"global daily cost limit reached: {spend.total_usd:.2f} of "
                f"{budgets.global_daily_cost_usd:.2f} USD spent on {date} (UTC)"
            )
        )
    held = {
        repo: (
            f"daily cost limit of repository {repo} reached: {usd:.2f} of "
            f"{budgets.repo_daily_cost_usd:.2f} USD spent on {date} (UTC)"
        )
        for repo, usd in sorted(spend.per_repo_usd.items())
        if usd >= budgets.repo_daily_cost_usd
    }
    return DailyVerdict(held_repos=held)
