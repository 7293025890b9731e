"""Host-side stand-ins for what governance's check sandboxes leave, for tests that call decide.

Each writes exactly the files the image's commands write (``analyze``: secrets.json beside
ruff.json and semgrep.json; ``test``: tests-report.json beside checks.json; ``fix``:
result.json and patch.diff), so the host code that reads them is the real one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

from triloop.domain.contracts import ReviewRequest

from tests.support.rows import RUFF

PASSED = {"tests/test_models.py::test_add": "passed"}


def write_report(out: str | Path, outcomes: Mapping[str, str] | None = None, **extra: int) -> None:
    """``tests-report.json`` of one test run: each test's outcome, the counts."""
    outcomes = dict(PASSED if outcomes is None else outcomes)
    report = {
        "schema_version": 1,
        "exit_code": extra.get("exit_code", 1 if "failed" in outcomes.values() else 0),
        "collected": extra.get("collected", len(outcomes)),
        "deselected": extra.get("deselected", 0),
        "collection_errors": 0,
        "outcomes": outcomes,
    }
    Path(out, "tests-report.json").write_text(json.dumps(report))


def write_reports(
    review: ReviewRequest,
    merged: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
    guard: Mapping[str, str] | None = None,
) -> None:
    """The three test runs' reports: the base's, the PR's, the guard's (default: all pass)."""
    write_report(review.base_tests_out, base)
    write_report(review.tests_out, merged)
    write_report(review.guard_out, guard if guard is not None else base)


def no_secrets(review: ReviewRequest) -> None:
    """``secrets.json`` with no findings in both trees' analysis outputs."""
    for out in (review.base_out, review.merged_out):
        payload = {"schema_version": 1, "findings": [], "unscanned": []}
        Path(out, "secrets.json").write_text(json.dumps(payload))


def reproduce_on_host(review: ReviewRequest) -> None:
    """What ``triloop-harness fix`` leaves in the rerun's output, by ruff on the host."""
    if not review.reproduce_workspace:
        return
    out, ws = Path(review.reproduce_out), Path(review.reproduce_workspace)
    request = json.loads((out / "request.json").read_text())
    argv = [RUFF, "check", "--fix", "--no-cache", "--select", request["rule"], "--"]
    subprocess.run([*argv, *request["paths"]], cwd=ws, capture_output=True, check=False)
    git = ["git", "-c", "safe.directory=*", "diff", "--no-ext-diff", "--no-textconv"]
    diff = subprocess.run(
        [*git, "--binary", "--src-prefix=a/", "--dst-prefix=b/", "HEAD", "--"],
        cwd=ws,
        capture_output=True,
        check=True,
    ).stdout
    (out / "patch.diff").write_bytes(diff)
    status = "changed" if diff else "no_change"
    (out / "result.json").write_text(json.dumps({"schema_version": 1, "status": status}))


def green_checks(review: ReviewRequest) -> None:
    """Everything but ruff/semgrep (which tests write themselves): all green, reproduced."""
    write_reports(review)
    no_secrets(review)
    reproduce_on_host(review)
