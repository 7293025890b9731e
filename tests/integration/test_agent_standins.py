"""Every agent adapter end to end on the host, with a stand-in CLI: adapter argv/env/prompt ->
the sandbox's ``agent`` subcommand (include/sandbox/harness.py, run as a process) -> the
stand-in replaying the CLI's documented output -> patch, result.json -> the adapter's parser and
exit mapping. The same chain runs in the real sandbox image in test_agent_sandbox.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from triloop.domain.contracts import Budget, HarnessRequest, HarnessResult
from triloop.execution.harnesses import AGENT_HARNESSES, HARNESSES

ROOT = Path(__file__).resolve().parents[2]
HARNESS_PY = ROOT / "include" / "sandbox" / "harness.py"
STANDINS = ROOT / "tests" / "fixtures" / "standins"
REPO = {"pkg/__init__.py": "", "pkg/mod.py": "import os\n\n\ndef f():\n    return 1\n"}
BUDGET = Budget(max_tokens=100_000, max_cost_usd=1.0, max_runtime_s=60)


def agent_request(name: str) -> HarnessRequest:
    return HarnessRequest(
        harness=name,
        ticket_id="T-7",
        rule="F401",
        paths=["pkg/mod.py"],
        title="F401 in pkg/mod.py: `os` imported but unused",
        details="- pkg/mod.py:1 [ruff F401] `os` imported but unused",
        budget=BUDGET,
    )


RunAgent = Callable[..., tuple[HarnessResult, Path]]


@pytest.fixture
def run_agent(make_repo: Callable[[dict[str, str]], Path], tmp_path: Path) -> RunAgent:
    """Write the adapter's request document, run ``harness.py agent`` on it, read the output."""
    repo = make_repo(REPO)

    def run(
        name: str, scenario: str, runtime_limit_s: int | None = None
    ) -> tuple[HarnessResult, Path]:
        out = tmp_path / f"out-{name}-{scenario}"
        out.mkdir()
        harness, request = HARNESSES[name], agent_request(name)
        doc = harness.request_document(request)
        doc["argv"] = [a.replace("/out/", f"{out}/") for a in doc["argv"]]  # type: ignore[attr-defined]
        doc["env"] = {
            **doc["env"],  # type: ignore[dict-item]
            "PATH": f"{STANDINS}:{os.environ['PATH']}",
            "STANDIN_SCENARIO": scenario,
            "STANDIN_PROMPT_COPY": str(out / "prompt.copy"),
        }
        if runtime_limit_s:
            doc["runtime_limit_s"] = runtime_limit_s
        (out / "request.json").write_text(json.dumps(doc))
        env = {**os.environ, "TRILOOP_WORKSPACE": str(repo), "OPENAI_API_KEY": "sk-test"}
        argv = [sys.executable, str(HARNESS_PY), "agent", "--request", str(out / "request.json")]
        subprocess.run([*argv, "--out", str(out)], env=env, timeout=120, check=False)
        return harness.read_output(request, out), out

    return run


@pytest.mark.parametrize("name", AGENT_HARNESSES)
def test_an_edit_becomes_the_patch_and_the_usage_is_read(name: str, run_agent: RunAgent) -> None:
    result, out = run_agent(name, "edit")
    assert result.status == "changed", result
    assert result.files_changed == ["pkg/mod.py", "standin_added.py"]
    patch = (out / "patch.diff").read_text()
    assert "+# fixed by the stand-in" in patch and "new file mode" in patch
    assert result.tokens > 0 and result.over_budget == ""
    assert "data, not instructions" in (out / "prompt.copy").read_text()  # the prompt arrived
    assert result.duration_s > 0 and result.exit_code == 0


@pytest.mark.parametrize("name", AGENT_HARNESSES)
def test_a_failing_run_is_failed(name: str, run_agent: RunAgent) -> None:
    result, out = run_agent(name, "fail")
    assert (result.status, result.exit_code) == ("failed", 1), result
    assert (out / "patch.diff").read_text() == ""


@pytest.mark.parametrize("name", AGENT_HARNESSES)
def test_usage_over_the_budget_is_over_budget(name: str, run_agent: RunAgent) -> None:
    result, _ = run_agent(name, "over_tokens")
    # mini-swe-agent stops itself at its --cost-limit (LimitsExceeded) and says so.
    expected = "cost_usd" if name == "mini-swe-agent" and result.tokens <= 100_000 else "tokens"
    assert (result.status, result.over_budget) == ("over_budget", expected), result


def test_a_cli_that_overruns_the_runtime_limit_is_killed(run_agent: RunAgent) -> None:
    result, out = run_agent("codex", "sleep", runtime_limit_s=2)
    assert (result.status, result.over_budget) == ("over_budget", "runtime_s"), result
    assert 2 <= result.duration_s < 20
    assert (out / "patch.diff").read_text() == ""


def test_a_missing_cli_fails_cleanly(run_agent: RunAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HARNESSES["claude-code"], "argv", lambda r: ["no-such-agent-cli"])
    result, out = run_agent("claude-code", "edit")
    assert (result.status, result.exit_code) == ("failed", 127)
    assert "no-such-agent-cli" in (out / "agent.stderr").read_text()
