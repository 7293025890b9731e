"""The tests a PR cannot hollow out: the base's tests on the merged code, and counts compared.

Three test runs, each in its own sandbox (see :mod:`triloop.governance.isolation`): the base's
tests on the base (``base_tests_out``, the reference), the PR's tests on the merged code
(``tests_out``, the ``tests`` check) and the base's tests and test configuration on the merged
code (``guard_out``). From their reports (``tests-report.json``, written by the image's
triloop_pytest.py):

- ``tests-base`` fails on every base test that fails on the merged code but not on the base,
  and when the base's tests no longer collect against the merged code;
- ``test-counts`` fails with ``tests.not-collected`` (fewer tests collected than on the base),
  ``tests.skipped`` (a test passing on the base now skipped or deselected) and
  ``tests.removed`` (a test that passed on the base is gone);
- pytest's exit 5 (nothing collected) on the merged tree makes ``tests`` an error, unless the
  base has no tests either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triloop.domain.contracts import CheckResult, ReviewRequest
from triloop.sandbox_files import read_sandbox_file

REPORT = "tests-report.json"
MAX_REPORT_BYTES = 32 << 20
FAILING = ("failed", "error")
COMMAND = "triloop-harness test --out /out  # {what}, at {sha}"


class ReportError(ValueError):
    """A test report is missing, too large or malformed."""


@dataclass(frozen=True)
class Report:
    exit_code: int
    collected: int
    deselected: int
    outcomes: dict[str, str]
    deselected_ids: frozenset[str] = frozenset()

    @property
    def skipped(self) -> int:
        return sum(1 for o in self.outcomes.values() if o in ("skipped", "xfailed"))

    def having(self, *outcomes: str) -> set[str]:
        return {node for node, outcome in self.outcomes.items() if outcome in outcomes}


def read_report(out: Path) -> Report:
    path = out / REPORT
    try:
        data: Any = json.loads(read_sandbox_file(path, MAX_REPORT_BYTES))
        outcomes = data["outcomes"]
        if not isinstance(outcomes, dict):
            raise TypeError("outcomes is not an object")
        return Report(
            exit_code=int(data["exit_code"]),
            collected=int(data["collected"]),
            deselected=int(data["deselected"]),
            outcomes={str(k): str(v) for k, v in outcomes.items()},
            deselected_ids=frozenset(str(n) for n in data.get("deselected_ids", [])),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{path} unreadable: {exc}") from exc


def _error(check_id: str, what: str, sha: str, why: str) -> CheckResult:
    command = COMMAND.format(what=what, sha=sha)
    return CheckResult(check_id=check_id, status="error", command=command, excerpt=why)


def _listed(nodes: set[str], limit: int = 30) -> str:
    shown = sorted(nodes)[:limit]
    more = f"\n... and {len(nodes) - limit} more" if len(nodes) > limit else ""
    return "\n".join(f"  {n}" for n in shown) + more


def guard_check(base: Report, guard: Report, sha: str) -> CheckResult:
    """``tests-base``: the base's own tests and configuration, run against the merged code."""
    command = COMMAND.format(what="the base's tests on the merged code", sha=sha)
    broken = guard.having(*FAILING) - base.having(*FAILING)
    lines, rules = [], sorted(broken)
    if broken:
        lines.append(f"{len(broken)} base test(s) fail on the merged code:\n{_listed(broken)}")
    if guard.collected < base.collected or (guard.exit_code == 5 and base.collected):
        lines.append(
            f"the base's tests collect {guard.collected} on the merged code,"
            f" {base.collected} on the base"
        )
        rules.append("tests.not-collected")
    status = "failed" if lines else "passed"
    summary = f"{len(guard.having('passed'))} passed (base: {len(base.having('passed'))})"
    excerpt = "\n".join([f"base's tests on the merged code: {summary}", *lines])
    return CheckResult(
        check_id="tests-base", status=status, command=command, excerpt=excerpt, rule_ids=rules
    )


def counts_check(base: Report, merged: Report, sha: str) -> CheckResult:
    """``test-counts``: the PR's test run against the base's, count by count."""
    command = COMMAND.format(what="the PR's tests against the base's", sha=sha)
    lines, rules = [], []
    if merged.collected < base.collected:
        lines.append(f"collected {merged.collected} tests, the base {base.collected}")
        rules.append("tests.not-collected")
    passed = base.having("passed")
    skipped = {
        n
        for n in passed
        if merged.outcomes.get(n) in ("skipped", "xfailed") or n in merged.deselected_ids
    }
    if skipped:  # a test the PR adds may be skipped or deselected: only the base's count
        lines.append(f"{len(skipped)} test(s) that pass on the base are skipped or deselected:")
        lines.append(_listed(skipped))
        rules.append("tests.skipped")
    gone = passed - set(merged.outcomes) - merged.deselected_ids
    if gone:
        lines.append(f"{len(gone)} test(s) that pass on the base are gone:\n{_listed(gone)}")
        rules.append("tests.removed")
    summary = (
        f"collected {merged.collected} (base {base.collected}), skipped {merged.skipped}"
        f" (base {base.skipped}), deselected {merged.deselected} (base {base.deselected})"
    )
    return CheckResult(
        check_id="test-counts",
        status="failed" if rules else "passed",
        command=command,
        excerpt="\n".join([summary, *lines]),
        rule_ids=rules,
    )


def integrity_checks(
    review: ReviewRequest, tests: CheckResult, sha: str
) -> tuple[CheckResult, list[CheckResult]]:
    """The ``tests`` check (exit 5 judged against the base) and ``tests-base``, ``test-counts``."""
    try:
        base = read_report(Path(review.base_tests_out))
    except ReportError as exc:
        why = f"no reference run of the base's tests: {exc}"
        return tests, [
            _error("tests-base", "the base's tests", sha, why),
            _error("test-counts", "the base's tests", sha, why),
        ]
    checks = []
    try:
        guard = read_report(Path(review.guard_out))
        checks.append(guard_check(base, guard, sha))
    except ReportError as exc:
        checks.append(_error("tests-base", "the base's tests on the merged code", sha, str(exc)))
    try:
        merged = read_report(Path(review.tests_out))
    except ReportError as exc:
        checks.append(_error("test-counts", "the PR's tests", sha, str(exc)))
        return tests, checks
    checks.append(counts_check(base, merged, sha))
    if merged.exit_code == 5 and base.collected:
        why = f"no tests collected (pytest exit 5); the base collects {base.collected}"
        tests = tests.model_copy(update={"status": "error", "excerpt": f"{why}\n{tests.excerpt}"})
    return tests, checks
