"""The host's dependency wheelhouse for the offline sandbox, and the sandbox's time budget."""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from triloop.discovery.wheelhouse import cache_key, prepare_wheelhouse, requirements_text

from tests.support.rows import git_repo

CODE_SCAN_PY = Path(__file__).resolve().parents[2] / "include" / "sandbox" / "code_scan.py"


def code_scan() -> Any:
    spec = importlib.util.spec_from_file_location("triloop_code_scan", CODE_SCAN_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_repo_without_dependencies_gets_no_wheelhouse(tmp_path: Path) -> None:
    checkout = git_repo(tmp_path, {"a.py": "x = 1\n"})
    out = tmp_path / "out"
    out.mkdir()
    assert prepare_wheelhouse(checkout, out, tmp_path / "cache") is None
    assert not (out / "wheelhouse").exists()


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ({"requirements.txt": "six==1.17.0\nnot a requirement!\n"}, r"requirements.txt:2: not a"),
        ({"pyproject.toml": "[project\n"}, r"pyproject.toml: not valid TOML"),
    ],
)
def test_a_declaration_that_does_not_parse_leaves_the_reason(
    tmp_path: Path, files: dict[str, str], error: str
) -> None:
    checkout = git_repo(tmp_path, files)
    out = tmp_path / "out"
    out.mkdir()
    wheelhouse = prepare_wheelhouse(checkout, out, tmp_path / "cache")
    assert wheelhouse is not None and sorted(os.listdir(wheelhouse)) == ["error.txt"]
    assert re.search(error, (wheelhouse / "error.txt").read_text())


def test_a_cached_dependency_set_is_staged_read_only_without_downloading(tmp_path: Path) -> None:
    # Paths, URLs and options never reach pip download: no repository code is built on the host.
    files = {"requirements.txt": "-e .\n./local\nsix==1.17.0  # pinned\n--index-url http://x\n"}
    checkout = git_repo(tmp_path, files)
    assert requirements_text(checkout) == "six==1.17.0\n"
    cached = tmp_path / "cache" / cache_key("six==1.17.0\n")
    cached.mkdir(parents=True)
    (cached / "requirements.txt").write_text("six==1.17.0\n")
    (cached / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"recorded")
    (cached / ".complete").touch()  # without it, this would be a download (and fail offline)
    out = tmp_path / "out"
    out.mkdir()
    for _ in range(2):  # idempotent
        wheelhouse = prepare_wheelhouse(checkout, out, tmp_path / "cache")
        assert wheelhouse == out / "wheelhouse"
        assert sorted(os.listdir(wheelhouse)) == [
            "requirements.txt",
            "six-1.17.0-py2.py3-none-any.whl",
        ]
    assert (wheelhouse / "six-1.17.0-py2.py3-none-any.whl").read_bytes() == b"recorded"
    for item in wheelhouse.iterdir():
        assert stat.S_IMODE(item.stat().st_mode) == 0o444
    assert stat.S_IMODE(wheelhouse.stat().st_mode) == 0o755  # only its owner (the host) writes


def test_the_sandbox_kills_a_tool_and_its_children_at_the_budget(tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    script = f"(sleep 3; touch {marker}) & sleep 30"
    started = time.monotonic()
    meta = code_scan().limited(["sh", "-c", script], dict(os.environ), tmp_path, 0.5)
    assert time.monotonic() - started < 5
    assert meta["error"] == "sh exceeded its time budget of 0.5s"
    time.sleep(3.5)
    assert not marker.exists()  # the whole process group went


def test_the_sandbox_reports_a_missing_tool(tmp_path: Path) -> None:
    meta = code_scan().limited(["/no/such/tool"], {}, tmp_path, 5)
    assert meta["exit_code"] == 127 and "cannot run '/no/such/tool'" in meta["error"]
