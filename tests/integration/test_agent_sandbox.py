"""The sandbox's ``agent`` subcommand in the real sandbox image, through SandboxOperator
(network none, hardened), with a stand-in CLI (tests/fixtures/standins) placed in /out/standins:
its edit becomes /out/patch.diff, and a CLI that overruns the runtime limit is killed.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from triloop.domain.contracts import Budget, HarnessRequest
from triloop.execution.harnesses import HARNESSES
from triloop_sandbox import SandboxOperator

from tests.integration.conftest import give_to_sandbox

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
STANDINS = ROOT / "tests" / "fixtures" / "standins"
REPO = {"pkg/__init__.py": "", "pkg/mod.py": "import os\n\n\ndef f():\n    return 1\n"}
IMAGE_PATH = "/opt/triloop/venv/bin:/usr/local/bin:/usr/bin:/bin"


def run_in_sandbox(
    tmp_path: Path,
    repo: Path,
    out: Path,
    image: str,
    scenario: str,
    runtime_limit_s: int = 60,
) -> tuple[str, Path]:
    harness = HARNESSES["claude-code"]
    request = HarnessRequest(
        harness="claude-code",
        ticket_id="T-9",
        rule="F401",
        paths=["pkg/mod.py"],
        title="F401 in pkg/mod.py",
        details="- pkg/mod.py:1 [ruff F401] `os` imported but unused",
        budget=Budget(max_runtime_s=max(runtime_limit_s, 10)),
    )
    doc = harness.request_document(request)
    env = dict(doc["env"])  # type: ignore[call-overload]
    env.update(PATH=f"/out/standins:{IMAGE_PATH}", STANDIN_SCENARIO=scenario)
    doc.update(env=env, runtime_limit_s=runtime_limit_s)
    shutil.copytree(STANDINS, out / "standins")
    (out / "request.json").write_text(json.dumps(doc))
    give_to_sandbox(out)
    op = SandboxOperator(
        task_id="agent_test",
        workspace=str(repo),
        output_dir=str(out),
        workspace_root=str(tmp_path),
        workspace_readonly=False,
        image=image,
        ticket_id="T-9",
        command=harness.command(request),
        private_environment={"ANTHROPIC_API_KEY": "sk-test-only"},
        wall_clock_limit_s=runtime_limit_s + 60,
    )
    op.execute({"run_id": f"itest-{uuid.uuid4().hex[:12]}"})
    return (out / "result.json").read_text(), out


def test_the_stand_in_edit_becomes_the_patch(
    tmp_path: Path,
    out_dir: Path,
    sandbox_image: str,
    make_repo: Callable[[dict[str, str]], Path],
    docker_client: docker.DockerClient,
) -> None:
    repo = make_repo(REPO)
    raw, out = run_in_sandbox(tmp_path, repo, out_dir, sandbox_image, "edit")
    request = HarnessRequest(harness="claude-code", ticket_id="T-9", rule="F401", paths=[])
    result = HARNESSES["claude-code"].read_output(request, out)
    assert json.loads(raw)["command"] == "agent"
    assert (result.status, result.files_changed) == ("changed", ["pkg/mod.py", "standin_added.py"])
    assert (result.tokens, result.cost_usd) == (1200 + 80 + 100, 0.0123)
    patch = (out / "patch.diff").read_text()
    assert "+# fixed by the stand-in" in patch and "+ADDED = True" in patch
    assert "/srv" not in (out / "request.json").read_text()


def test_a_stand_in_that_overruns_the_runtime_limit_is_killed(
    tmp_path: Path,
    out_dir: Path,
    sandbox_image: str,
    make_repo: Callable[[dict[str, str]], Path],
) -> None:
    repo = make_repo(REPO)
    raw, out = run_in_sandbox(tmp_path, repo, out_dir, sandbox_image, "sleep", runtime_limit_s=3)
    result = json.loads(raw)
    assert (result["status"], result["over_budget"]) == ("over_budget", "runtime_s")
    assert 3 <= result["duration_s"] < 30
    assert (out / "patch.diff").read_text() == ""
