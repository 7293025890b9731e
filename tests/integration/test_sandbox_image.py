"""The sandbox image against the real engine: scan, fix and check through triloop-harness."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.conftest import HARDENED_RUN, ROOT, git

pytestmark = pytest.mark.docker

RunHarness = Callable[..., tuple[int, dict[str, Any], str]]
SAMPLE = {
    "app/__init__.py": "",
    "app/util.py": (
        "import os\nimport subprocess\n\n\n"
        "def run(cmd):\n    return subprocess.run(cmd, shell=True, check=False)\n"
    ),
    "tests/test_util.py": (
        "def test_ok():\n    assert 1 + 1 == 2\n\n\ndef test_broken():\n    assert 'a' == 'b'\n"
    ),
}
CLEAN = {"app/__init__.py": "", "app/ok.py": "def add(a, b):\n    return a + b\n"}


def read(out: Path, name: str) -> Any:
    return json.loads((out / name).read_text())


def test_image_is_labelled_hardened_and_matches_host_ruff(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    image = docker_client.images.get(sandbox_image)
    config = image.attrs["Config"]
    assert sandbox_image.endswith(":" + config["Labels"]["io.triloop.sandbox.content-hash"])
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["triloop-harness"]
    assert config["WorkingDir"] == "/workspace"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOME"] == "/tmp"
    assert env["SEMGREP_SEND_METRICS"] == "off"
    assert env["PATH"].startswith("/opt/triloop/venv/bin:")
    inside = docker_client.containers.run(
        sandbox_image, ["--version"], entrypoint=["ruff"], remove=True, **HARDENED_RUN
    )
    host = subprocess.run([str(ROOT / ".venv/bin/ruff"), "--version"], capture_output=True)
    assert inside.decode().strip() == host.stdout.decode().strip()


def test_build_script_is_a_fast_noop_when_the_image_exists(sandbox_image: str) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/build_sandbox_image.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sandbox image up to date" in proc.stdout
    assert sandbox_image.split(":")[1] in proc.stdout
    assert time.monotonic() - started < 2.0


def test_scan_writes_ruff_and_semgrep_json(
    make_repo: Callable[[dict[str, str]], Path], out_dir: Path, run_harness: RunHarness
) -> None:
    repo = make_repo(SAMPLE)
    code, summary, logs = run_harness(repo, "scan", "--out", "/out")
    assert code == 0, logs
    assert summary["command"] == "scan" and summary["ok"] is True
    result = read(out_dir, "result.json")
    assert result["schema_version"] == 1 and result["command"] == "scan"
    assert result["tools"]["ruff"]["exit_code"] == 0
    assert result["tools"]["ruff"]["argv"][:2] == ["ruff", "check"]
    assert result["tools"]["semgrep"]["exit_code"] == 0
    assert isinstance(result["tools"]["semgrep"]["duration_s"], float)
    ruff = read(out_dir, "ruff.json")
    assert any(f["code"] == "F401" and f["filename"].endswith("app/util.py") for f in ruff)
    semgrep = read(out_dir, "semgrep.json")
    assert semgrep["errors"] == []
    ids = [r["check_id"] for r in semgrep["results"]]
    assert any(i.endswith("python-subprocess-shell-true") for i in ids), ids


def test_scan_records_a_crashed_tool_and_keeps_the_others(
    make_repo: Callable[[dict[str, str]], Path], out_dir: Path, run_harness: RunHarness
) -> None:
    """A crashed tool is named in result.json (discovery records it); semgrep's report stays."""
    repo = make_repo({**CLEAN, "pyproject.toml": '[tool.ruff]\nline-length = "wide"\n'})
    code, summary, logs = run_harness(repo, "scan", "--out", "/out")
    assert code == 0
    assert summary["ok"] is False
    assert "ruff failed (exit 2)" in logs
    tools = read(out_dir, "result.json")["tools"]
    assert tools["ruff"]["exit_code"] == 2 and "ruff failed (exit 2)" in tools["ruff"]["error"]
    assert tools["semgrep"]["exit_code"] == 0 and "error" not in tools["semgrep"]
    assert isinstance(read(out_dir, "semgrep.json")["results"], list)


def test_fix_removes_f401_and_writes_an_applicable_patch(
    make_repo: Callable[[dict[str, str]], Path],
    out_dir: Path,
    run_harness: RunHarness,
    tmp_path: Path,
) -> None:
    repo = make_repo(SAMPLE)
    pristine = tmp_path / "pristine"
    shutil.copytree(repo, pristine)  # the checkout as it was before the fix
    request = {"schema_version": 1, "harness": "autofix", "ticket_id": "T-7", "rule": "F401"}
    (out_dir / "request.json").write_text(json.dumps({**request, "paths": ["app/util.py"]}))
    code, summary, logs = run_harness(
        repo, "fix", "--request", "/out/request.json", "--out", "/out", writable=True
    )
    assert code == 0, logs
    assert summary["status"] == "changed"
    result = read(out_dir, "result.json")
    assert result["status"] == "changed" and result["ticket_id"] == "T-7"
    assert result["files_changed"] == ["app/util.py"]
    assert (result["tokens"], result["cost_usd"], result["exit_code"]) == (0, 0.0, 0)
    patch = out_dir / "patch.diff"
    git(pristine, "apply", "--check", str(patch))
    git(pristine, "apply", str(patch))
    assert "import os" not in (pristine / "app/util.py").read_text()
    assert "import subprocess" in (pristine / "app/util.py").read_text()


def test_fix_with_nothing_to_fix_reports_no_change(
    make_repo: Callable[[dict[str, str]], Path], out_dir: Path, run_harness: RunHarness
) -> None:
    repo = make_repo(CLEAN)
    request = {"schema_version": 1, "harness": "autofix", "ticket_id": "T-8", "rule": "F401"}
    (out_dir / "request.json").write_text(json.dumps({**request, "paths": ["app"]}))
    code, summary, logs = run_harness(
        repo, "fix", "--request", "/out/request.json", "--out", "/out", writable=True
    )
    assert code == 0, logs
    assert summary["status"] == "no_change"
    assert read(out_dir, "result.json")["status"] == "no_change"
    assert (out_dir / "patch.diff").read_bytes() == b""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"paths": ["/etc/passwd"]}, "paths[0]"),
        ({"paths": ["app/../../etc/passwd"]}, "paths[0]"),
        ({"harness": "claude-code"}, "harness"),
        ({"rule": "F401; rm -rf /"}, "rule"),
    ],
)
def test_fix_rejects_an_invalid_request_naming_the_field(
    make_repo: Callable[[dict[str, str]], Path],
    out_dir: Path,
    run_harness: RunHarness,
    change: dict[str, Any],
    field: str,
) -> None:
    repo = make_repo(CLEAN)
    request = {"schema_version": 1, "harness": "autofix", "ticket_id": "T-9", "rule": "F401"}
    (out_dir / "request.json").write_text(json.dumps({**request, "paths": ["app"], **change}))
    code, summary, _ = run_harness(repo, "fix", "--request", "/out/request.json", "--out", "/out")
    assert code == 2
    assert f"field '{field}'" in summary["error"]
    result = read(out_dir, "result.json")
    assert result["status"] == "failed" and f"field '{field}'" in result["summary"]


def test_check_reports_the_failing_test_by_node_id(
    make_repo: Callable[[dict[str, str]], Path], out_dir: Path, run_harness: RunHarness
) -> None:
    repo = make_repo(SAMPLE)
    code, summary, logs = run_harness(repo, "check", "--out", "/out")
    assert code == 0, logs
    checks = {c["check_id"]: c for c in read(out_dir, "checks.json")["checks"]}
    assert summary["checks"] == {"tests": "failed", "ruff": "failed", "semgrep": "failed"}
    assert checks["tests"]["rule_ids"] == ["tests/test_util.py::test_broken"]
    assert (
        "triloop_pytest.py /out/tests-report.json -- -q -p no:cacheprovider"
        in (checks["tests"]["command"])
    )
    assert "1 failed, 1 passed" in checks["tests"]["excerpt"]
    assert "F401" in checks["ruff"]["rule_ids"]
    assert checks["semgrep"]["rule_ids"] == ["python-subprocess-shell-true"]
    assert (out_dir / "junit.xml").exists()


def test_check_with_no_tests_passes_with_a_note(
    make_repo: Callable[[dict[str, str]], Path], out_dir: Path, run_harness: RunHarness
) -> None:
    repo = make_repo(CLEAN)
    code, _, logs = run_harness(repo, "check", "--out", "/out")
    assert code == 0, logs
    checks = {c["check_id"]: c for c in read(out_dir, "checks.json")["checks"]}
    assert checks["tests"]["status"] == "passed" and checks["tests"]["exit_code"] == 5
    assert "no tests collected" in checks["tests"]["excerpt"]
    assert checks["ruff"]["status"] == "passed" and checks["semgrep"]["status"] == "passed"
