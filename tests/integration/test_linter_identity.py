"""Base and merged findings compared by identity, not position, with the real ruff.

A correct UP032 autofix rewrites ``raise IOError("...".format(path))`` into an f-string; the
UP024 the base already had on that statement is the same finding after it, and the lines it
shifted move the others. None of them may count as the PR's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from triloop.discovery.parse import parse_ruff
from triloop.governance.checks import new_findings

from tests.support.rows import RUFF

BASE = (
    '"""Reading files."""\n\nimport os\n\n\n'
    "def read(path):\n"
    "    try:\n"
    "        return open(path).read()\n"
    "    except IOError:\n"
    '        raise IOError("cannot read {}".format(path))\n\n\n'
    "def size(path):\n"
    "    try:\n"
    "        return os.stat(path).st_size\n"
    "    except IOError:\n"
    "        return 0\n"
)
FIXED = BASE.replace('"cannot read {}".format(path)', 'f"cannot read {path}"')


def _findings(root: Path, name: str, text: str) -> list:  # type: ignore[type-arg]
    tree = root / name
    tree.mkdir()
    (tree / "files.py").write_text(text)
    argv = [RUFF, "check", "--isolated", "--select", "UP,F", "--output-format", "json"]
    out = subprocess.run(
        [*argv, "--exit-zero", "--no-cache", "."],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = tree / "ruff.json"
    report.write_text(out.replace(str(tree) + "/", "/workspace/"))
    return parse_ruff(report, "repo", tree)


def test_a_fix_that_rewrites_a_statement_makes_no_old_finding_new(tmp_path: Path) -> None:
    base = _findings(tmp_path, "base", BASE)
    merged = _findings(tmp_path, "merged", "\n\n" + FIXED)  # and shifted by two lines
    assert sorted(f.rule for f in base) == ["UP024", "UP024", "UP024", "UP032"]
    assert sorted(f.rule for f in merged) == ["UP024", "UP024", "UP024"]
    by_fingerprint = new_findings(base, merged, by_place=False)
    assert [f.rule for f in by_fingerprint] == ["UP024"], "the rewritten statement's UP024"
    assert new_findings(base, merged, by_place=True) == []


def test_a_finding_the_change_adds_is_still_new(tmp_path: Path) -> None:
    base = _findings(tmp_path, "base", BASE)
    added = FIXED + '\n\ndef name(x):\n    return "{}".format(x)\n'
    merged = _findings(tmp_path, "merged", added)
    [new] = new_findings(base, merged, by_place=True)
    assert (new.rule, new.symbol) == ("UP032", "name")
    worse = FIXED.replace("        return 0\n", '        raise IOError("gone")\n')
    [also] = new_findings(base, _findings(tmp_path, "worse", worse), by_place=True)
    assert (also.rule, also.symbol) == ("UP024", "size"), "one more UP024 in size() is new"
    assert json.dumps(also.model_dump(mode="json"))
