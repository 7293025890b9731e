"""The scanner registry: each scanner's bad input costs only its own findings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from triloop.discovery.scanners import SCANNERS, ScanContext, run_scanners
from triloop.domain.policy import Policy

from tests.support.rows import git_repo

RUFF_ITEM = {
    "code": "F401",
    "message": "`os` imported but unused",
    "filename": "/workspace/pkg/mod.py",
    "location": {"row": 1, "column": 8},
    "fix": {"applicability": "safe"},
}


def _context(tmp_path: Path, *, semgrep: str, semgrep_status: dict[str, object]) -> ScanContext:
    checkout = git_repo(tmp_path / "repo", {"pkg/mod.py": "import os\n"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "ruff.json").write_text(json.dumps([RUFF_ITEM]))
    (out / "semgrep.json").write_text(semgrep)
    tools = {"ruff": {"exit_code": 0}, "semgrep": semgrep_status}
    (out / "result.json").write_text(json.dumps({"command": "scan", "tools": tools}))
    return ScanContext(repo_id="r", checkout=checkout, output_dir=out, policy=Policy())


@pytest.mark.parametrize(
    ("semgrep", "status", "message"),
    [
        ("{not json", {"exit_code": 0}, r"scanner semgrep: .*semgrep.json is not valid JSON"),
        ('{"results": 3}', {"exit_code": 0}, r"scanner semgrep: .*expected a semgrep JSON report"),
        ("{}", {"exit_code": 2, "error": "semgrep failed (exit 2)"}, r"failed in the sandbox"),
        ("{}", {}, r"scanner semgrep: no status for semgrep"),
    ],
)
def test_a_broken_scanner_loses_only_its_own_findings(
    tmp_path: Path, semgrep: str, status: dict[str, object], message: str
) -> None:
    findings, failures = run_scanners(_context(tmp_path, semgrep=semgrep, semgrep_status=status))
    assert [(f.tool, f.rule, f.path) for f in findings] == [("ruff", "F401", "pkg/mod.py")]
    assert list(failures) == ["semgrep"]
    assert re.search(message, failures["semgrep"])


def test_every_scanner_has_a_unique_name() -> None:
    names = [s.name for s in SCANNERS]
    assert len(names) == len(set(names)) and {"ruff", "semgrep"} <= set(names)
