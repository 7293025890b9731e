"""The sandbox's ``agent`` subcommand in ``mode: review``: no patch, and nothing may change.

In governance the merged checkout is mounted read-only; here (on the host, the workspace
writable) the sandbox's own check is what catches a reviewer that edits the repository. A
review's failure is reported in result.json with exit 0, so the decision still runs and turns
it into an error check on that pull request; a fix run that fails still exits 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.rows import git_repo
from tests.unit.test_agent_budget_stop import HARNESS_PY

WRITE_REVIEW = "import os, pathlib; pathlib.Path(os.environ['REVIEW_OUT'], 'review.json')"
WRITE_REVIEW += ".write_text('[]')"


def run_agent(tmp_path: Path, code: str, mode: str = "review") -> tuple[int, dict[str, Any], Path]:
    repo = git_repo(tmp_path, {"a.py": "x = 1\n"})
    out = tmp_path / "out"
    out.mkdir()
    request = {
        "schema_version": 1,
        "harness": "mini-swe-agent",
        "ticket_id": "T-1",
        "mode": mode,
        "argv": [sys.executable, "-c", code],
        "env": {"REVIEW_OUT": str(out)},
        "pass_env": [],
        "prompt": "review it",
        "runtime_limit_s": 60,
    }
    (out / "request.json").write_text(json.dumps(request))
    argv = [sys.executable, str(HARNESS_PY), "agent", "--request", str(out / "request.json")]
    proc = subprocess.run(
        [*argv, "--out", str(out)],
        env={"PATH": "/usr/bin:/bin", "TRILOOP_WORKSPACE": str(repo), "HOME": str(tmp_path)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    result = json.loads((out / "result.json").read_text()) if proc.returncode != 2 else {}
    return proc.returncode, result, out


def test_a_review_that_only_writes_its_findings_is_no_change(tmp_path: Path) -> None:
    code, result, out = run_agent(tmp_path, WRITE_REVIEW)
    assert (code, result["status"], result["files_changed"]) == (0, "no_change", [])
    assert (out / "review.json").read_text() == "[]"
    assert (out / "patch.diff").read_bytes() == b""


@pytest.mark.parametrize(
    ("edit", "changed"),
    [
        ("pathlib.Path('a.py').write_text('x = 2\\n')", " M a.py"),
        ("pathlib.Path('new.py').write_text('y = 1\\n')", "?? new.py"),
    ],
)
def test_a_reviewer_that_changes_the_repository_fails_without_a_patch(
    tmp_path: Path, edit: str, changed: str
) -> None:
    code, result, out = run_agent(tmp_path, f"{WRITE_REVIEW}; {edit}")
    assert (code, result["status"]) == (0, "failed")  # the decision turns it into an error
    assert "the reviewer changed the repository" in result["summary"]
    assert result["files_changed"] == [changed]
    assert (out / "patch.diff").read_bytes() == b""


def test_a_crashing_reviewer_is_reported_not_raised(tmp_path: Path) -> None:
    code, result, _ = run_agent(tmp_path, "raise SystemExit('model unreachable')")
    assert (code, result["status"], result["exit_code"]) == (0, "failed", 1)
    assert "model unreachable" in result["summary"]


def test_a_fix_run_that_fails_still_exits_one(tmp_path: Path) -> None:
    code, result, _ = run_agent(tmp_path, "raise SystemExit(3)", mode="fix")
    assert (code, result["status"]) == (1, "failed")


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    code, _, out = run_agent(tmp_path, WRITE_REVIEW, mode="merge")
    assert code == 2
    assert "field 'mode'" in json.loads((out / "result.json").read_text())["summary"]
