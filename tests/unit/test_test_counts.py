"""The base's tests on the merged code, and the test counts compared with the base's run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from triloop.domain.contracts import CheckResult, ReviewRequest
from triloop.governance.test_counts import (
    ReportError,
    integrity_checks,
    read_report,
)

BASE = {"t.py::a": "passed", "t.py::b": "passed", "t.py::c": "skipped"}


def _review(tmp: Path) -> ReviewRequest:
    outs = {}
    for name in ("base", "merged", "guard"):
        outs[name] = tmp / name
        outs[name].mkdir()
    return ReviewRequest(
        repo_id="r",
        number=1,
        ticket_id="T",
        head_sha="h" * 40,
        base_sha="b" * 40,
        base_workspace=str(tmp),
        merged_workspace=str(tmp),
        base_out=str(tmp),
        merged_out=str(tmp),
        tests_out=str(outs["merged"]),
        base_tests_out=str(outs["base"]),
        guard_out=str(outs["guard"]),
    )


def _write(out: str, outcomes: dict[str, str], **extra: int) -> None:
    deselected = ["t.py::a"] if extra.get("deselected") else []
    report = {
        "deselected_ids": deselected,
        "schema_version": 1,
        "exit_code": extra.get("exit_code", 0),
        "collected": extra.get("collected", len(outcomes)),
        "deselected": extra.get("deselected", 0),
        "outcomes": outcomes,
    }
    Path(out, "tests-report.json").write_text(json.dumps(report))


TESTS = CheckResult(check_id="tests", status="passed", command="pytest", excerpt="ok")


def _run(tmp: Path, merged: dict[str, str], guard: dict[str, str] | None = None, **extra: int):  # type: ignore[no-untyped-def]
    review = _review(tmp)
    _write(review.base_tests_out, BASE)
    _write(review.tests_out, merged, **extra)
    _write(review.guard_out, BASE if guard is None else guard)
    tests, checks = integrity_checks(review, TESTS, "b+h")
    return tests, {c.check_id: c for c in checks}


def test_the_same_tests_pass(tmp_path: Path) -> None:
    tests, checks = _run(tmp_path, {**BASE, "t.py::new": "passed"})
    assert tests.status == "passed"
    assert [(c.status, c.rule_ids) for c in checks.values()] == [("passed", []), ("passed", [])]


@pytest.mark.parametrize(
    ("merged", "extra", "rules"),
    [
        ({"t.py::a": "passed", "t.py::c": "skipped"}, {}, ["tests.not-collected", "tests.removed"]),
        ({"t.py::a": "passed", "t.py::b": "skipped", "t.py::c": "skipped"}, {}, ["tests.skipped"]),
        (
            {"t.py::b": "passed", "t.py::c": "skipped"},
            {"deselected": 1},
            ["tests.not-collected", "tests.skipped"],
        ),
        ({"t.py::a": "passed", "t.py::b2": "passed", "t.py::c": "skipped"}, {}, ["tests.removed"]),
        ({}, {"exit_code": 5}, ["tests.not-collected", "tests.removed"]),
    ],
    ids=["deleted", "skipped", "deselected", "renamed", "nothing-collected"],
)
def test_hollowed_out_tests_fail_with_their_rule(
    tmp_path: Path, merged: dict[str, str], extra: dict[str, int], rules: list[str]
) -> None:
    _, checks = _run(tmp_path, merged, **extra)
    assert checks["test-counts"].status == "failed"
    assert checks["test-counts"].rule_ids == rules


def test_exit_5_is_an_error_when_the_base_has_tests(tmp_path: Path) -> None:
    tests, _ = _run(tmp_path, {}, exit_code=5)
    assert tests.status == "error"
    assert "the base collects 3" in tests.excerpt


def test_exit_5_passes_when_the_base_has_no_tests(tmp_path: Path) -> None:
    review = _review(tmp_path)
    for out in (review.base_tests_out, review.tests_out, review.guard_out):
        _write(out, {}, exit_code=5)
    tests, checks = integrity_checks(review, TESTS, "b+h")
    assert tests.status == "passed"
    assert {c.status for c in checks} == {"passed"}


def test_the_guard_fails_on_base_tests_the_merged_code_breaks(tmp_path: Path) -> None:
    guard = {"t.py::a": "failed", "t.py::b": "passed", "t.py::c": "skipped"}
    _, checks = _run(tmp_path, {**BASE}, guard)
    assert checks["tests-base"].status == "failed"
    assert checks["tests-base"].rule_ids == ["t.py::a"]


def test_the_guard_ignores_what_already_fails_on_the_base(tmp_path: Path) -> None:
    review = _review(tmp_path)
    red = {**BASE, "t.py::a": "failed"}
    _write(review.base_tests_out, red, exit_code=1)
    _write(review.tests_out, red, exit_code=1)
    _write(review.guard_out, red, exit_code=1)
    _, checks = integrity_checks(review, TESTS, "b+h")
    assert checks[0].check_id == "tests-base" and checks[0].status == "passed"


def test_the_guard_fails_when_the_base_tests_no_longer_collect(tmp_path: Path) -> None:
    _, checks = _run(tmp_path, {**BASE}, {}, exit_code=0)
    assert "tests.not-collected" in checks["tests-base"].rule_ids


def test_a_missing_report_is_an_error_never_a_pass(tmp_path: Path) -> None:
    review = _review(tmp_path)
    _write(review.base_tests_out, BASE)
    _tests, checks = integrity_checks(review, TESTS, "b+h")
    assert [(c.check_id, c.status) for c in checks] == [
        ("tests-base", "error"),
        ("test-counts", "error"),
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [("{", "unreadable"), ('{"outcomes": []}', "unreadable"), ("[]", "unreadable")],
)
def test_malformed_reports_are_refused(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "tests-report.json").write_text(text)
    with pytest.raises(ReportError, match=why):
        read_report(tmp_path)


def test_an_oversized_report_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with (tmp_path / "tests-report.json").open("wb") as fh:
        fh.truncate(64 << 20)  # sparse: no memory, no disk
    with pytest.raises(ReportError, match="over"):
        read_report(tmp_path)


def test_a_new_test_the_suite_deselects_is_not_a_skip(tmp_path: Path) -> None:
    review = _review(tmp_path)
    _write(review.base_tests_out, BASE)
    _write(review.guard_out, BASE)
    report = json.loads(json.dumps({"schema_version": 1, "exit_code": 0, "collected": 3}))
    report.update(deselected=1, deselected_ids=["t.py::new_slow"], outcomes=BASE)
    Path(review.tests_out, "tests-report.json").write_text(json.dumps(report))
    _, checks = integrity_checks(review, TESTS, "b+h")
    assert [(c.check_id, c.status) for c in checks] == [
        ("tests-base", "passed"),
        ("test-counts", "passed"),
    ]
