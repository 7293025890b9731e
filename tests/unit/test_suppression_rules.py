"""Suppression's pure rules and the flood-control suite (Great Expectations), without a DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from triloop.discovery.quality import records, row_bound, validate_batch
from triloop.domain.contracts import Finding
from triloop.domain.policy import FloodControl, SuppressionRules, WontFix
from triloop.domain.suppression import (
    Candidate,
    Capacity,
    Existing,
    Verdict,
    decide,
    escalated,
    rate_of,
    wont_fix_match,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
RULES = SuppressionRules(cooldown_hours=24, reopen_factor=10)
CANDIDATE = Candidate("k", "r", "F401", "pkg/a.py", rate=50.0)


def _existing(state: str, hours_ago: float, rate: float | None = 4.0) -> Existing:
    return Existing("T-k", state, NOW - timedelta(hours=hours_ago), rate)


@pytest.mark.parametrize(
    ("existing", "verdict", "reason"),
    [
        (None, Verdict.CREATE, ""),
        (_existing("ready", 1), Verdict.UPDATE, "already ready"),
        (_existing("in_review", 100), Verdict.UPDATE, "already in_review"),
        (_existing("rejected", 2), Verdict.COOLDOWN, "rejected; quiet until"),
        (_existing("dead_letter", 23), Verdict.COOLDOWN, "dead_letter; quiet until"),
        (_existing("closed", 2), Verdict.COOLDOWN, "closed; quiet until"),
        (_existing("closed", 25, rate=10.0), Verdict.CLOSED, "has not reached 10.0 x 10.0"),
        (_existing("closed", 25, rate=None), Verdict.CLOSED, "has not reached"),
        (_existing("closed", 25, rate=5.0), Verdict.REOPEN, "escalated: rate 50.0 >= 10.0 x 5.0"),
        (_existing("dead_letter", 25, rate=5.0), Verdict.REOPEN, "escalated"),
    ],
)
def test_each_state_gets_its_verdict(
    existing: Existing | None, verdict: Verdict, reason: str
) -> None:
    decision = decide(CANDIDATE, existing, None, Capacity(), RULES, NOW)
    assert decision.verdict is verdict
    assert reason in decision.reason


def test_wont_fix_beats_cooldown_and_creation_but_not_an_open_ticket() -> None:
    entry = WontFix(rule="F4*", path="pkg/**", reason="generated code")
    assert wont_fix_match([entry], "r", "F401", "pkg/sub/a.py") is entry
    assert wont_fix_match([entry], "r", "F401", "other/a.py") is None
    assert wont_fix_match([entry.model_copy(update={"repo": "x"})], "r", "F401", "pkg/a.py") is None
    for existing in (None, _existing("closed", 1)):
        decision = decide(CANDIDATE, existing, entry, Capacity(), RULES, NOW)
        assert decision.verdict is Verdict.WONT_FIX
        assert "generated code" in decision.reason
    assert decide(CANDIDATE, _existing("ready", 1), entry, Capacity(), RULES, NOW).verdict is (
        Verdict.UPDATE
    )


def test_caps_defer_the_excess_and_count_what_they_let_through() -> None:
    capacity = Capacity(open_now=1, new_last_hour=0, max_open=3, max_new=None)
    verdicts = [decide(CANDIDATE, None, None, capacity, RULES, NOW).verdict for _ in range(4)]
    assert verdicts == [Verdict.CREATE, Verdict.CREATE, Verdict.DEFER, Verdict.DEFER]
    hourly = Capacity(max_new=1)
    assert decide(CANDIDATE, None, None, hourly, RULES, NOW).verdict is Verdict.CREATE
    deferred = decide(CANDIDATE, _existing("closed", 30, rate=1.0), None, hourly, RULES, NOW)
    assert deferred.verdict is Verdict.DEFER
    assert "max_new_per_hour 1" in deferred.reason


@pytest.mark.parametrize(
    ("rate", "at_close", "expected"),
    [(40.0, 4.0, True), (39.9, 4.0, False), (None, 4.0, False), (5.0, 0.0, False)],
)
def test_escalation_needs_the_factor(rate: float | None, at_close: float, expected: bool) -> None:
    assert escalated(rate, at_close, 10.0) is expected


def test_rate_is_the_highest_among_findings() -> None:
    findings = [_finding(data={"rate_per_hour": 3}), _finding(data={"rate_per_hour": 7.5})]
    assert rate_of(findings) == 7.5
    assert rate_of([f.model_dump(mode="json") for f in findings]) == 7.5
    assert rate_of([_finding()]) is None


def _finding(**fields: object) -> Finding:
    base: dict[str, object] = {
        "tool": "ruff",
        "rule": "F401",
        "path": "a.py",
        "line": 1,
        "message": "unused",
        "fingerprint": "f" * 64,
    }
    return Finding.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("history", "bound"), [([], None), ([2, 2], None), ([2, 3, 4], 500), ([100, 90, 80], 900)]
)
def test_row_bound_follows_the_history(history: list[int], bound: int | None) -> None:
    assert row_bound(history, FloodControl(min_history=3, row_factor=10, row_floor=500)) == bound


def test_a_normal_batch_passes() -> None:
    report = validate_batch(records([_finding(line=n) for n in range(1, 40)]), max_rows=100)
    assert report.success and report.failed == [] and report.rows == 39


def test_an_empty_batch_passes() -> None:
    assert validate_batch([], max_rows=10).success


@pytest.mark.parametrize(
    ("rows", "expectation", "detail"),
    [
        (
            records([_finding(), _finding(fingerprint="")]),
            "expect_column_values_to_not_be_null",
            "'unexpected_count': 1",
        ),
        (
            records(
                [
                    _finding(),
                    Finding.model_construct(**{**_finding().__dict__, "severity": "urgent"}),
                ]
            ),
            "expect_column_values_to_be_in_set",
            "urgent",
        ),
        (records([_finding()] * 11), "expect_table_row_count_to_be_between", "11"),
        (
            [{"tool": "ruff", "rule": "F401", "line": 1, "severity": "low", "fingerprint": "x"}],
            "expect_column_to_exist",
            "path",
        ),
        (
            [{**records([_finding()])[0], "line": "one"}],
            "expect_column_values_to_be_of_type",
            "int64",
        ),
    ],
)
def test_a_bad_batch_fails_naming_the_expectation(
    rows: list[dict[str, object]], expectation: str, detail: str
) -> None:
    report = validate_batch(rows, max_rows=10)
    assert not report.success
    assert any(f["expectation"] == expectation and detail in str(f) for f in report.failed), (
        report.failed
    )
