"""The secret rules (include/semgrep/secrets.yml) against annotated fixtures, with real semgrep.

Each ``# ruleid: A, B`` comment says the next code line must be reported by exactly those rules;
``# ok: A`` says rule A must not report it. Lines without annotations must not be reported at all.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.semgrep import SEMGREP, semgrep_env, semgrep_scan

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "include" / "semgrep" / "secrets.yml"
FIXTURES = ROOT / "tests" / "fixtures" / "semgrep"
ANNOTATION = re.compile(r"#\s*(ruleid|ok):\s*(.+)$")


def _expected(path: Path) -> tuple[set[tuple[int, str]], set[tuple[int, str]]]:
    """(line, rule) pairs the annotations demand and forbid, from the fixture's comments."""
    wanted: set[tuple[int, str]] = set()
    forbidden: set[tuple[int, str]] = set()
    pending: list[tuple[str, str]] = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = ANNOTATION.search(text)
        if match and text.lstrip().startswith("#"):
            pending += [(match[1], r.strip()) for r in match[2].split(",")]
            continue
        for kind, rule in pending:
            (wanted if kind == "ruleid" else forbidden).add((number, rule))
        pending = []
    return wanted, forbidden


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, int, str]]:
    if not SEMGREP.exists():
        pytest.fail(f"semgrep is not installed beside {sys.executable}")
    work = tmp_path_factory.mktemp("secrets")  # outside tests/: semgrep skips tests/ dirs
    for fixture in FIXTURES.glob("secrets.*"):
        shutil.copy(fixture, work / fixture.name)
    proc = subprocess.run(
        [*semgrep_scan(RULES), "."],
        cwd=work,
        env=semgrep_env(),
        capture_output=True,
        check=False,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["errors"] == [], proc.stderr.decode()[-2000:]
    return {
        (
            Path(r["path"]).name,
            r["start"]["line"],
            "secrets." + r["check_id"].rsplit("secrets.")[-1],
        )
        for r in report["results"]
    }


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("secrets.*")))
def test_secret_rules_match_the_annotations(
    fixture: str, reported: set[tuple[str, int, str]]
) -> None:
    wanted, forbidden = _expected(FIXTURES / fixture)
    found = {(line, rule) for name, line, rule in reported if name == fixture}
    assert wanted, f"{fixture} has no ruleid annotations"
    assert wanted - found == set(), "true positives missed"
    assert found & forbidden == set(), "false positives"
    assert found - wanted == set(), "findings no annotation expects"
