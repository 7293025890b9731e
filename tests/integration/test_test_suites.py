"""A fast pre-merge suite and the full suite after the merge (policy ``test_suites``).

A PR breaks a test marked ``slow``. Governance's tests check runs in the real sandbox with the
pre-merge selection ``-m "not slow"``: green, and the evidence says which suite ran, so the PR
auto-merges. Post-merge verification runs the whole suite at the merge commit in the sandbox:
the slow test fails, by name, and the merge is reverted through a PR and counted as an escaped
defect.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.domain.policy import RepoPolicy
from triloop.domain.test_suite_policy import TestSuitePolicy
from triloop.governance.postmerge import conclude
from triloop.governance.service import decide, human_verdict, prepare_review, select_reviews
from triloop.store.models import CheckRun, EscapedDefect, Ticket
from triloop_sandbox import SandboxOperator

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs, _pr_for_first_ticket
from tests.integration.test_governance_trust import _push_to_pr
from tests.integration.test_post_merge import _verify

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SLOW_TEST = "tests/test_slow.py::test_slow_stock_total"
SLOW = (
    "import pytest\n\n\n"
    "@pytest.mark.slow\n"
    "def test_slow_stock_total() -> None:\n"
    "    assert sum(range(4)) == 7\n"
)
MARKERS = '\nmarkers = ["slow: long-running tests, run after the merge"]\n'


def _check_merged_tree(app: App, image: str, review) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The sandbox's real ``check`` on the merged tree, as governance's run_tests task runs it."""
    Path(review.tests_out, "checks.json").unlink()  # the host-written stand-in; the real one
    SandboxOperator(
        task_id="run_tests",
        command=["check", "--out", "/out"],
        workspace=review.merged_workspace,
        output_dir=review.tests_out,
        workspace_root=str(app.settings.workspaces_dir),
        image=image,
        ticket_id=review.ticket_id,
    ).execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
    checks = json.loads(Path(review.tests_out, "checks.json").read_text())["checks"]
    return dict(next(c for c in checks if c["check_id"] == "tests"))


def test_a_slow_test_skipped_before_the_merge_fails_after_it_and_reverts(
    app: App, tmp_path: Path, sandbox_image: str
) -> None:
    app.policy.repos["sample"] = RepoPolicy(autonomy_level=2)
    app.policy.test_suites = TestSuitePolicy(pre_merge_pytest_args=["-m", "not slow"])
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    pyproject = (ROOT / "include" / "sample_repo" / "pyproject.toml").read_text() + MARKERS
    _push_to_pr(app, tmp_path, number, {"tests/test_slow.py": SLOW, "pyproject.toml": pyproject})

    reviewer = _actor("gov-1", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, reviewer)
    request = json.loads(Path(review.tests_out, "check-request.json").read_text())
    assert request == {"schema_version": 1, "suite": "pre-merge", "pytest_args": ["-m", "not slow"]}
    _fake_sandbox_outputs(review)  # ruff/semgrep scans; the tests check runs for real below
    tests = _check_merged_tree(app, sandbox_image, review)
    assert (tests["status"], tests["rule_ids"]) == ("passed", []), tests["excerpt"]
    assert str(tests["excerpt"]).startswith("pre-merge suite: -m 'not slow'\n")
    assert "1 deselected" in str(tests["excerpt"])  # the slow test did not run
    assert "PytestUnknownMarkWarning" not in str(tests["excerpt"])  # the marker is registered

    # The base's runs, as the sandbox gives them: the same suite (the real report stands in).
    for out in (review.base_tests_out, review.guard_out):
        shutil.copyfile(Path(review.tests_out, "tests-report.json"), Path(out, "tests-report.json"))
    decision = decide(app, review, reviewer)
    # A new test file and a pytest setting: a person decides (test-counts stays green, the
    # deselected slow test is new, not one of the base's).
    assert decision.outcome == "needs_human", decision.reasons
    assert any(r.startswith("tests-infra: pyproject.toml") for r in decision.reasons)
    with app.uow() as session:
        row = session.scalars(select(CheckRun).where(CheckRun.check_id == "tests")).one()
        assert row.status == "passed"
        assert "-m 'not slow'  # pre-merge suite at " in row.command  # reproduces the selection
        assert row.excerpt.startswith("pre-merge suite: -m 'not slow'")
    assert human_verdict(app, decision, "Approve", _actor("gov-1", "human_review")) is not None

    verification = _verify(app, sandbox_image, repo_id, number)  # the whole suite, for real
    request = json.loads(Path(verification.tests_out, "check-request.json").read_text())
    assert request == {"schema_version": 1, "suite": "post-merge", "pytest_args": []}
    checks = json.loads(Path(verification.tests_out, "checks.json").read_text())["checks"]
    post = next(c for c in checks if c["check_id"] == "tests")
    assert post["excerpt"].startswith("post-merge suite: the whole suite\n")
    assert (post["status"], post["rule_ids"]) == ("failed", [SLOW_TEST]), post["excerpt"]

    result = conclude(app, verification, _actor("verify-1", "conclude"))
    assert (result.outcome, result.failing_tests) == ("reverted", [SLOW_TEST])
    assert result.revert is not None
    with app.uow() as session:
        assert session.get_one(Ticket, verification.ticket_id).state == "reverted"
        assert session.get_one(Ticket, result.revert.ticket_id).state == "pr_open"
        [defect] = session.scalars(select(EscapedDefect)).all()
        assert defect.failing_tests == [SLOW_TEST]
        assert session.scalar(select(func.count()).select_from(EscapedDefect)) == 1
