from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from triloop.discovery.parse import ScanOutputError, parse_ruff, parse_scan_dir, parse_semgrep
from triloop.execution.patch import PatchRejected, validate_patch

from tests.support.rows import git_repo


def _repo(tmp_path: Path, body: str) -> Path:
    return git_repo(tmp_path, {"pkg/mod.py": body})


RUFF_ITEM = {
    "code": "F401",
    "message": "`os` imported but unused",
    "filename": "/workspace/pkg/mod.py",
    "location": {"row": 1, "column": 8},
    "fix": {"applicability": "safe"},
}


def test_ruff_finding_is_normalised_with_symbol_and_code(tmp_path: Path) -> None:
    src = _repo(tmp_path, "import os\n\n\ndef f():\n    return 1\n")
    out = tmp_path / "ruff.json"
    out.write_text(json.dumps([RUFF_ITEM]))
    [finding] = parse_ruff(out, "repo", src)
    assert (finding.rule, finding.path, finding.line) == ("F401", "pkg/mod.py", 1)
    assert finding.fixable and finding.code == "import os" and finding.symbol == "<module>"


def test_fingerprint_survives_inserted_lines(tmp_path: Path) -> None:
    src = _repo(tmp_path, "def f():\n    x = eval('1')\n    return x\n")
    out = tmp_path / "semgrep.json"
    result = {
        "check_id": "eval",
        "path": "pkg/mod.py",
        "start": {"line": 2},
        "extra": {"message": "eval", "severity": "ERROR"},
    }
    out.write_text(json.dumps({"results": [result]}))
    [before] = parse_semgrep(out, "repo", src)
    (src / "pkg/mod.py").write_text("# one\n# two\n\ndef f():\n    x = eval('1')\n    return x\n")
    out.write_text(json.dumps({"results": [{**result, "start": {"line": 5}}]}))
    [after] = parse_semgrep(out, "repo", src)
    assert before.symbol == "f" and before.severity == "high"
    assert before.fingerprint == after.fingerprint


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not valid JSON"),
        ('{"a": 1}', "expected a JSON list"),
        ('[{"code": "F401"}]', "malformed ruff entry"),
        (json.dumps([{**RUFF_ITEM, "filename": "/etc/passwd"}]), "outside the repo"),
    ],
)
def test_malformed_ruff_output_is_refused(tmp_path: Path, content: str, message: str) -> None:
    out = tmp_path / "ruff.json"
    out.write_text(content)
    with pytest.raises(ScanOutputError, match=message):
        parse_ruff(out, "repo", tmp_path)


def test_missing_tool_status_is_refused(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text(json.dumps({"tools": {"ruff": {"exit_code": 0}}}))
    with pytest.raises(ScanOutputError, match="no status for semgrep"):
        parse_scan_dir(tmp_path, "repo", tmp_path)


def _diff(src: Path, new_body: str) -> str:
    (src / "pkg/mod.py").write_text(new_body)
    diff = subprocess.run(["git", "diff"], cwd=src, capture_output=True, text=True, check=True)
    subprocess.run(["git", "checkout", "--", "."], cwd=src, check=True)
    return diff.stdout


def test_good_patch_is_accepted(tmp_path: Path) -> None:
    src = _repo(tmp_path, "import os\nx = 1\n")
    patch = tmp_path / "patch.diff"
    patch.write_text(_diff(src, "x = 1\n"))
    assert validate_patch(patch, src, ["pkg/mod.py"]) == ["pkg/mod.py"]


@pytest.mark.parametrize(
    ("content", "allowed", "message"),
    [
        ("garbage\n", ["pkg/mod.py"], "no file changes"),
        ("diff --git a/x\n", ["pkg/mod.py"], "unreadable diff header"),
        (None, ["other.py"], "outside the ticket's files"),
        ("diff --git a/../x b/../x\n--- a/../x\n", ["../x"], "escapes the repository"),
        (
            "diff --git a/pkg/mod.py b/pkg/mod.py\n--- a/pkg/mod.py\n+++ b/pkg/mod.py\n"
            "@@ -1,1 +1,1 @@\n-nope\n+yes\n",
            ["pkg/mod.py"],
            "does not apply",
        ),
    ],
)
def test_bad_patches_are_rejected(
    tmp_path: Path, content: str | None, allowed: list[str], message: str
) -> None:
    src = _repo(tmp_path, "import os\nx = 1\n")
    patch = tmp_path / "patch.diff"
    patch.write_text(content if content is not None else _diff(src, "x = 1\n"))
    with pytest.raises(PatchRejected, match=message):
        validate_patch(patch, src, allowed)


def test_missing_patch_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(PatchRejected, match="wrote no patch"):
        validate_patch(tmp_path / "patch.diff", tmp_path, ["a.py"])
