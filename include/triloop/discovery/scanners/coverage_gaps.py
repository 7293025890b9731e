"""Coverage gaps: the least-covered files, weighted by size and recent churn.

Reads coverage.py's JSON report (the sandbox ran the tests under ``coverage run --source=.``,
so modules no test imports are in it at 0%). A file is a gap when it is covered less than
``max_percent`` and misses at least ``min_missing`` statements; its score is the missing
statements times ``1 + churn_weight x commits`` touching it within ``churn_window_days`` before
the scanned commit (``git log`` on the host checkout). The ``top_n`` highest scores become
findings, one per file, fingerprinted by file (not by line: covering a few lines keeps it).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from triloop.adapters.git import GitError, git
from triloop.discovery.parse import ScanOutputError, relative_path
from triloop.discovery.scanners.base import ScanContext
from triloop.discovery.scanners.sandbox_reports import SandboxReportScanner
from triloop.domain.code_scan_policy import CoverageRules
from triloop.domain.contracts import Finding
from triloop.domain.fingerprint import finding_fingerprint

log = logging.getLogger(__name__)


def churn(checkout: Path, window_days: int) -> Counter[str]:
    """Commits touching each path within ``window_days`` before HEAD's commit time."""
    try:
        head = int(git("log", "-1", "--format=%ct", cwd=checkout))
        since = datetime.fromtimestamp(head, UTC) - timedelta(days=window_days)
        names = git(
            "log", f"--since={since.isoformat()}", "--format=", "--name-only", "HEAD", cwd=checkout
        )
    except (GitError, ValueError, OSError) as exc:
        log.warning("no churn for %s (coverage weighs size only): %s", checkout, exc)
        return Counter()
    return Counter(line for line in names.splitlines() if line)


def _int(summary: dict[str, Any], key: str) -> int:
    value = summary[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"summary {key} is {value!r}, not a count")
    return value


def _worst_function(entry: dict[str, Any]) -> str:
    functions = entry.get("functions")
    if not isinstance(functions, dict):
        return ""
    missing = {
        name: len(f.get("missing_lines") or [])
        for name, f in functions.items()
        if name and isinstance(f, dict)
    }
    best = max(missing.items(), key=lambda kv: (kv[1], kv[0]), default=("", 0))
    return best[0] if best[1] else ""


class CoverageGapScanner(SandboxReportScanner):
    name = "coverage"
    report = "coverage.json"

    def enabled(self, ctx: ScanContext) -> bool:
        rules = ctx.policy.code_scans.coverage
        return rules.enabled and rules.top_n > 0

    def parse(self, ctx: ScanContext, path: Path) -> list[Finding]:
        try:
            data = json.loads(self.read(path))
        except ValueError as exc:
            raise self.fail(path, f"is not valid JSON: {exc}") from exc
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            raise self.fail(path, "expected coverage.py's JSON report with a 'files' object")
        rules = ctx.policy.code_scans.coverage
        commits = churn(ctx.checkout, rules.churn_window_days)
        scored = []
        for name, entry in files.items():
            try:
                rel = relative_path(str(name), path)
                summary = entry["summary"]
                statements = _int(summary, "num_statements")
                missing = _int(summary, "missing_lines")
                lines = [int(n) for n in entry.get("missing_lines") or []]
            except (ScanOutputError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise self.fail(path, f"malformed entry for {name!r}: {exc!r}") from exc
            if missing > statements:
                raise self.fail(path, f"{name!r} misses {missing} of {statements} statements")
            if self._skip(rules, rel, statements, missing):
                continue
            score = missing * (1 + rules.churn_weight * commits[rel])
            scored.append((score, rel, statements, missing, lines, _worst_function(entry)))
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [self._finding(ctx, rules, commits, *s) for s in scored[: rules.top_n]]

    @staticmethod
    def _skip(rules: CoverageRules, rel: str, statements: int, missing: int) -> bool:
        if any(fnmatch(rel, glob) for glob in rules.omit) or not statements:
            return True
        percent = 100.0 * (statements - missing) / statements
        return missing < rules.min_missing or percent >= rules.max_percent

    @staticmethod
    def _finding(
        ctx: ScanContext,
        rules: CoverageRules,
        commits: Counter[str],
        score: float,
        rel: str,
        statements: int,
        missing: int,
        lines: list[int],
        worst: str,
    ) -> Finding:
        percent = round(100.0 * (statements - missing) / statements, 1)
        churned = commits[rel]
        message = f"{missing} of {statements} statements never run by the tests ({percent}%"
        message += f" covered); {churned} commit(s) in the last {rules.churn_window_days} days"
        if worst:
            message += f"; least covered: {worst}"
        return Finding(
            tool="coverage",
            rule="coverage-gap",
            path=rel,
            line=min(lines) if lines else 1,
            message=message,
            severity="medium" if percent < 50 else "low",
            symbol="<module>",
            fingerprint=finding_fingerprint(ctx.repo_id, "coverage-gap", rel, "<module>", ""),
            data={
                "statements": statements,
                "missing": missing,
                "percent_covered": percent,
                "churn_commits": churned,
                "score": round(score, 2),
                "least_covered_function": worst,
            },
        )


COVERAGE = CoverageGapScanner()
