"""Host-side scanners in one scan: bad input costs only that scanner's findings."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from triloop.discovery.scanners import SCANNERS, ScanContext, run_scanners
from triloop.discovery.scanners.errorlog import ERRORLOG
from triloop.discovery.scanners.osv import OSV
from triloop.discovery.scanners.outdated import OUTDATED
from triloop.discovery.scanners.sandbox_tools import RUFF, SEMGREP
from triloop.domain.policy import Policy

from tests.support.rows import git_repo
from tests.unit.test_outdated import _page, make_index

FIXTURES = Path(__file__).parents[1] / "fixtures" / "osv"
RUFF_ITEM = {
    "code": "F401",
    "message": "`os` imported but unused",
    "filename": "/workspace/pkg/mod.py",
    "location": {"row": 1, "column": 8},
    "fix": {"applicability": "safe"},
}
SEMGREP_ITEM = {
    "check_id": "opt.triloop.semgrep.triloop.python.eval-use",
    "path": "/workspace/pkg/mod.py",
    "start": {"line": 2},
    "extra": {"message": "eval of input", "severity": "ERROR"},
}
TRACEBACK = (
    'Traceback (most recent call last):\n  File "/srv/pkg/mod.py", line 2, in <module>\n'
    "NameError: name 'x' is not defined\n"
)
BROKEN = {
    "osv": r"scanner osv: advisory file .*BROKEN.json is not valid JSON",
    "outdated": r"scanner outdated: index page file://.*/requests/ is not UTF-8 text",
    "errorlog": r"scanner errorlog: error log .*errors.jsonl:2: binary data",
}


def _context(tmp_path: Path, broken: str | None) -> ScanContext:
    checkout = git_repo(
        tmp_path / "repo",
        {"pkg/mod.py": "import os\neval(input())\n", "requirements.txt": "requests==2.30.0\n"},
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "ruff.json").write_text(json.dumps([RUFF_ITEM]))
    (out / "semgrep.json").write_text(json.dumps({"results": [SEMGREP_ITEM], "errors": []}))
    tools = {"ruff": {"exit_code": 0}, "semgrep": {"exit_code": 0}}
    (out / "result.json").write_text(json.dumps({"command": "scan", "tools": tools}))
    database = tmp_path / "osv"
    shutil.copytree(FIXTURES, database)
    page = _page("requests", "2.30.0", "2.31.0").encode()
    log = tmp_path / "errors.jsonl"
    line = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "exc_info": TRACEBACK}) + "\n"
    log.write_bytes(line.encode() * 2)
    if broken == "osv":
        (database / "BROKEN.json").write_text('{"id": "X", "affected": [')
    elif broken == "outdated":
        page = b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00"
    elif broken == "errorlog":
        log.write_bytes(line.encode() + b"\x7fELF\x02\x01\x01\x00\xff\xff\n" + line.encode())
    index = make_index(tmp_path / "index", {"requests": page})
    policy = Policy.model_validate(
        {
            "host_scanners": {"osv_database": str(database), "package_index": index},
            "repos": {"r": {"error_logs": str(log)}},
        }
    )
    return ScanContext(repo_id="r", checkout=checkout, output_dir=out, policy=policy)


SCAN = (RUFF, SEMGREP, OSV, OUTDATED, ERRORLOG)
EVERY_TOOL = {"ruff", "semgrep", "osv", "outdated", "errorlog"}


def test_every_host_scanner_lands_its_findings(tmp_path: Path) -> None:
    findings, failures = run_scanners(_context(tmp_path, None), SCAN)
    assert failures == {}
    got = {(f.tool, f.rule, f.path) for f in findings}
    assert got == {
        ("ruff", "F401", "pkg/mod.py"),
        ("semgrep", "triloop.python.eval-use", "pkg/mod.py"),
        ("osv", "GHSA-j8r2-6x86-q33q", "requirements.txt"),
        ("osv", "PYSEC-2023-74", "requirements.txt"),
        ("outdated", "outdated-minor", "requirements.txt"),
        ("errorlog", "NameError", "pkg/mod.py"),
    }


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_bad_input_fails_only_its_scanner(tmp_path: Path, broken: str) -> None:
    findings, failures = run_scanners(_context(tmp_path, broken), SCAN)
    assert list(failures) == [broken]
    assert re.search(BROKEN[broken], failures[broken])
    assert {f.tool for f in findings} == EVERY_TOOL - {broken}


def test_the_host_scanners_are_registered() -> None:
    assert {"osv", "outdated", "errorlog"} <= {s.name for s in SCANNERS}
