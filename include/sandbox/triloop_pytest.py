#!/usr/bin/env python3
"""Run pytest with Triloop's report plugin: every test's outcome and the collection counts.

``python triloop_pytest.py REPORT.json -- PYTEST_ARGS...`` runs ``pytest.main(PYTEST_ARGS)``
with a plugin object passed in directly (not loaded by name, so a module of the same name in
the repository cannot stand in for it) and writes REPORT.json:

    {"schema_version": 1, "exit_code": N, "collected": N, "deselected": N,
     "collection_errors": N, "outcomes": {"tests/test_x.py::test_y": "passed", ...}}

Outcomes: passed, failed, error, skipped, xfailed, xpassed. Governance compares the base's
report with the merged tree's (fewer collected, more skipped or deselected, a passing test
gone) and the base's tests run against the merged code with the base's own run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class Report:
    """The pytest hooks that fill the report (one instance per run)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.collected = 0
        self.deselected = 0
        self.deselected_ids: list[str] = []
        self.collection_errors = 0

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collection_errors += 1

    def pytest_deselected(self, items: list[Any]) -> None:
        self.deselected += len(items)
        self.deselected_ids += [str(item.nodeid) for item in items]

    def pytest_collection_finish(self, session: Any) -> None:
        self.collected = len(session.items)

    def pytest_runtest_logreport(self, report: Any) -> None:
        node = str(report.nodeid)
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.skipped:
            outcome = "skipped"
        elif report.when == "call":
            outcome = "passed"
        else:
            return
        if self.outcomes.get(node) in ("failed", "error"):
            return  # a teardown error after a failure: the failure stands
        self.outcomes[node] = outcome


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        sys.stderr.write("usage: triloop_pytest.py REPORT.json -- PYTEST_ARGS...\n")
        return 2
    import pytest

    report_path, args = Path(argv[0]), argv[2:]
    plugin = Report()
    code = int(pytest.main(args, plugins=[plugin]))
    payload = {
        "schema_version": SCHEMA_VERSION,
        "exit_code": code,
        "collected": plugin.collected,
        "deselected": plugin.deselected,
        "deselected_ids": sorted(plugin.deselected_ids),
        "collection_errors": plugin.collection_errors,
        "outcomes": plugin.outcomes,
    }
    report_path.write_text(json.dumps(payload, sort_keys=True) + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
