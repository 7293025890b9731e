"""Per-ticket limits and daily cost limits, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from triloop.domain.budget import (
    DailySpend,
    Usage,
    daily_verdict,
    exceeded,
    ticket_budget,
    utc_day,
)
from triloop.domain.contracts import Budget
from triloop.domain.policy import Budgets

BUDGET = Budget(max_tokens=1000, max_cost_usd=1.0, max_runtime_s=60)


def test_ticket_budget_comes_from_the_policy() -> None:
    policy = Budgets(ticket_max_tokens=5, ticket_max_cost_usd=0.5, ticket_max_runtime_s=30)
    assert ticket_budget(policy) == Budget(max_tokens=5, max_cost_usd=0.5, max_runtime_s=30)


@pytest.mark.parametrize(
    ("usage", "limit", "used", "maximum"),
    [
        (Usage(tokens=1001), "tokens", 1001, 1000),
        (Usage(cost_usd=1.01), "cost_usd", 1.01, 1.0),
        (Usage(runtime_s=61.5), "runtime_s", 61.5, 60),
        (Usage(tokens=5000, cost_usd=9.0, runtime_s=900), "tokens", 5000, 1000),  # first wins
    ],
)
def test_usage_over_a_limit_names_it_with_the_figures(
    usage: Usage, limit: str, used: float, maximum: float
) -> None:
    over = exceeded(usage, BUDGET)
    assert over is not None
    assert (over.limit, over.used, over.maximum, over.source) == (limit, used, maximum, "usage")
    assert over.message.startswith(f"over budget: {limit} ")


@pytest.mark.parametrize(
    "usage",
    [Usage(), Usage(tokens=1000, cost_usd=1.0, runtime_s=60), Usage(tokens=999, cost_usd=0.99)],
)
def test_usage_at_or_under_every_limit_is_within_budget(usage: Usage) -> None:
    assert exceeded(usage, BUDGET) is None


@pytest.mark.parametrize(
    ("reported", "limit", "source"),
    [
        ({"harness": "tokens"}, "tokens", "harness"),
        ({"harness": "cost_usd"}, "cost_usd", "harness"),
        ({"harness": "", "egress proxy": "tokens"}, "tokens", "egress proxy"),
        ({"harness": "wall time"}, "runtime_s", "harness"),
        ({"harness": "max cost"}, "cost_usd", "harness"),
        ({"harness": "steps"}, "tokens", "harness"),
        ({"harness": "unnamed", "egress proxy": "tokens"}, "tokens", "harness"),
    ],
)
def test_a_reported_stop_counts_even_under_the_figures(
    reported: dict[str, str], limit: str, source: str
) -> None:
    over = exceeded(Usage(tokens=10), BUDGET, reported)
    assert over is not None and (over.limit, over.source) == (limit, source)
    assert f"reported by {source}" in over.message


def test_an_unnamed_stop_is_the_limit_the_figures_went_over() -> None:
    over = exceeded(Usage(tokens=10, cost_usd=3.0), BUDGET, {"harness": "unnamed"})
    assert over is not None and (over.limit, over.used, over.maximum) == ("cost_usd", 3.0, 1.0)


def test_message_shows_both_figures() -> None:
    over = exceeded(Usage(tokens=250_000), Budget(max_tokens=200_000))
    assert over is not None
    assert over.message == (
        "over budget: tokens 250000 tokens used, limit 200000 tokens (reported by usage)"
    )


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (datetime(2026, 3, 1, 12, 0), datetime(2026, 3, 1, tzinfo=UTC)),  # naive is UTC
    ],
)
def test_utc_day(now: datetime, start: datetime) -> None:
    begin, end = utc_day(now)
    assert begin == start and (end - begin).days == 1


DAILY = Budgets(repo_daily_cost_usd=10.0, global_daily_cost_usd=25.0)
NOON = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spend", "reason", "held"),
    [
        (DailySpend(), "", set()),
        (DailySpend(9.99, {"a": 9.99}), "", set()),
        (DailySpend(10.0, {"a": 10.0}), "", {"a"}),
        (DailySpend(24.0, {"a": 12.0, "b": 9.0, "c": 3.0}), "", {"a"}),
        (DailySpend(25.0, {"a": 5.0, "b": 20.0}), "global daily cost limit reached", set()),
        (DailySpend(30.0, {"a": 30.0}), "25.00 USD spent on 2026-03-01", set()),
    ],
)
def test_daily_limits(spend: DailySpend, reason: str, held: set[str]) -> None:
    verdict = daily_verdict(spend, DAILY, NOON)
    assert verdict.may_claim is (not reason)
    if reason:
        assert reason in verdict.reason
    else:
        assert verdict.reason == ""
    assert set(verdict.held_repos) == held
    for repo in held:
        assert f"daily cost limit of repository {repo} reached" in verdict.held_repos[repo]
