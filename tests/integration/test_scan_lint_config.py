"""Discovery's ruff honours the repository's configuration and never writes to the checkout.

Real scans in the hardened image: ``fix = true`` changes nothing and reports what it found (no
E902 "Read-only file system"); ``ignore``/``extend-select``/``per-file-ignores`` decide what is
reported; a repository with no ruff configuration gets the policy's rule set from the host.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from triloop.lint_config import configures_ruff, write_default

from tests.integration.conftest import give_to_sandbox

pytestmark = pytest.mark.docker
RunHarness = Callable[..., tuple[int, dict[str, Any], str]]
CODE = {
    "app/__init__.py": "",
    "app/util.py": "import sys\nimport os\n\n\ndef f(x):\n    return x == None\n",
    "tests/test_util.py": "import os\n\n\ndef test_f():\n    assert True\n",
}


def _codes(out: Path) -> set[tuple[str, str]]:
    found = json.loads((out / "ruff.json").read_text())
    return {(f["code"], f["filename"].removeprefix("/workspace/")) for f in found}


def _scan(
    make_repo: Callable[[dict[str, str]], Path],
    run_harness: RunHarness,
    out_dir: Path,
    files: dict[str, str],
) -> tuple[Path, set[tuple[str, str]]]:
    repo = make_repo({**CODE, **files})
    if not configures_ruff(repo):  # what discovery's prepare_scan does on the host
        write_default(out_dir, ["E4", "E7", "E9", "F", "I"])
        give_to_sandbox(out_dir)
    code, summary, logs = run_harness(repo, "scan", "--out", "/out")
    assert code == 0 and summary["ok"] is True, logs
    return repo, _codes(out_dir)


def test_fix_true_changes_nothing_and_reports_the_findings(
    make_repo: Callable[[dict[str, str]], Path], run_harness: RunHarness, out_dir: Path
) -> None:
    config = '[tool.ruff]\nfix = true\n\n[tool.ruff.lint]\nselect = ["F", "E7"]\n'
    repo, codes = _scan(make_repo, run_harness, out_dir, {"pyproject.toml": config})
    assert {c for c, _ in codes} == {"F401", "E711"}, codes
    assert "import sys" in (repo / "app/util.py").read_text()
    assert not (out_dir / "analysis").exists(), "the repository's own configuration is used"


def test_the_repositorys_selection_decides_what_is_reported(
    make_repo: Callable[[dict[str, str]], Path], run_harness: RunHarness, out_dir: Path
) -> None:
    config = (
        '[lint]\nextend-select = ["I"]\nignore = ["E711"]\n\n'
        '[lint.per-file-ignores]\n"tests/*" = ["F401"]\n'
    )
    _, codes = _scan(make_repo, run_harness, out_dir, {"ruff.toml": config})
    assert codes == {("F401", "app/util.py"), ("I001", "app/util.py")}, codes


def test_a_repository_without_ruff_configuration_gets_the_policys_rule_set(
    make_repo: Callable[[dict[str, str]], Path], run_harness: RunHarness, out_dir: Path
) -> None:
    _, codes = _scan(make_repo, run_harness, out_dir, {"pyproject.toml": '[project]\nname = "a"\n'})
    assert ("I001", "app/util.py") in codes, "I is not in ruff's own defaults: the policy's is"
    assert ("F401", "tests/test_util.py") in codes
