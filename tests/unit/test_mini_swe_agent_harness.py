"""The mini-swe-agent adapter: its argv/env from the policy, and the trajectories it parses.

The trajectories in tests/fixtures/mini-swe-agent were written by mini-swe-agent 2.4.6 in the
sandbox during tests/integration/test_mini_swe_agent.py (long prompt strings trimmed): one run
that submitted after a real edit, one that the egress proxy stopped at a 6000-token budget.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from triloop.domain.contracts import Budget, HarnessRequest
from triloop.domain.policy import HarnessPolicy
from triloop.execution.harnesses import harness_for
from triloop.execution.harnesses.mini_swe_agent import TRAJECTORY, MiniSweAgentHarness

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mini-swe-agent"
POLICY = HarnessPolicy(
    egress=["model.internal:8000"],
    api_base="http://model.internal:8000/v1",
    model="openai/scripted-model",
)


def request(**changes: object) -> HarnessRequest:
    fields: dict[str, object] = {
        "harness": "mini-swe-agent",
        "ticket_id": "T-1",
        "rule": "F401",
        "paths": ["inventory/models.py"],
        "workspace": "/w",
        "output_dir": "/o",
    }
    return HarnessRequest.model_validate({**fields, **changes})


def adapter() -> MiniSweAgentHarness:
    harness = harness_for("mini-swe-agent", POLICY)
    assert isinstance(harness, MiniSweAgentHarness)
    return harness


def test_argv_runs_mini_unattended_against_the_policy_model_api() -> None:
    argv = adapter().argv(request(budget=Budget(max_cost_usd=0.5)))
    assert argv[:3] == ["mini", "--yolo", "--exit-immediately"]
    specs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
    # Any -c drops mini's default config, so mini.yaml comes first, then the overrides.
    assert specs[0] == "mini.yaml"
    assert "model.model_kwargs.api_base=http://model.internal:8000/v1" in specs
    assert argv[argv.index("--model") + 1] == "openai/scripted-model"
    assert argv[argv.index("--cost-limit") + 1] == "0.5"
    assert argv[argv.index("-o") + 1] == f"/out/{TRAJECTORY}"
    assert argv[-2:] == ["-t", "{prompt}"]


def test_without_an_api_base_litellm_uses_the_provider_default() -> None:
    argv = harness_for("mini-swe-agent", HarnessPolicy(model="openai/gpt-4.1")).argv(request())
    assert not any("api_base" in arg for arg in argv)


def test_env_needs_no_wizard_no_download_and_carries_no_secret() -> None:
    doc = adapter().request_document(request())
    env = doc["env"]
    assert isinstance(env, dict)
    assert env["MSWEA_CONFIGURED"] == "true"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["MSWEA_COST_TRACKING"] == "ignore_errors"
    assert env["MSWEA_GLOBAL_CONFIG_DIR"].startswith("/tmp/")
    assert "OPENAI_API_KEY" not in env and doc["pass_env"] == ["OPENAI_API_KEY"]


def test_api_base_off_the_egress_allowlist_is_refused_at_policy_load() -> None:
    with pytest.raises(ValueError, match="not in egress"):
        HarnessPolicy(egress=["model.internal:8000"], api_base="http://elsewhere:8000/v1")
    with pytest.raises(ValueError, match="http"):
        HarnessPolicy(egress=["model.internal:8000"], api_base="file:///etc/passwd")


def out_with(tmp_path: Path, fixture: str, result: dict[str, object]) -> Path:
    shutil.copy(FIXTURES / fixture, tmp_path / TRAJECTORY)
    base = {"schema_version": 1, "harness": "mini-swe-agent", "ticket_id": "T-1"}
    (tmp_path / "result.json").write_text(json.dumps({**base, **result}))
    return tmp_path


def test_a_submitted_run_is_changed_with_the_tokens_of_every_answer(tmp_path: Path) -> None:
    out = out_with(
        tmp_path,
        "submitted.traj.json",
        {"status": "changed", "files_changed": ["inventory/models.py"]},
    )
    usage = adapter().parse_usage("", out)
    assert (usage.tokens, usage.error, usage.over) == (2510, "", "")
    assert usage.summary.startswith("mini-swe-agent Submitted: The edit is done")
    result = adapter().read_output(request(), out)
    assert (result.status, result.tokens) == ("changed", 2510)


def test_the_proxy_refusing_at_the_token_budget_is_over_budget(tmp_path: Path) -> None:
    # mini exits 1 on the proxy's 429, so the sandbox said failed; the adapter knows better.
    out = out_with(tmp_path, "token_budget.traj.json", {"status": "failed", "exit_code": 1})
    usage = adapter().parse_usage("", out)
    assert (usage.tokens, usage.over) == (6906, "tokens")
    result = adapter().read_output(request(budget=Budget(max_tokens=6000)), out)
    assert (result.status, result.over_budget) == ("over_budget", "tokens")
    assert "6906" in result.summary and "6000" in result.summary


def test_a_provider_rate_limit_is_a_failure_not_a_budget_stop(tmp_path: Path) -> None:
    trajectory = json.loads((FIXTURES / "token_budget.traj.json").read_text())
    trajectory["messages"][-1]["content"] = "litellm.RateLimitError: slow down, try again later"
    (tmp_path / TRAJECTORY).write_text(json.dumps(trajectory))
    usage = adapter().parse_usage("", tmp_path)
    assert usage.over == "" and "RateLimitError" in usage.error


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"info": "x"}'])
def test_a_missing_or_broken_trajectory_is_an_error(tmp_path: Path, content: str) -> None:
    if content:
        (tmp_path / TRAJECTORY).write_text(content)
    assert "no trajectory" in adapter().parse_usage("", tmp_path).error


def test_the_prompt_tells_mini_to_submit_instead_of_replying_with_a_summary() -> None:
    prompt = str(adapter().request_document(request())["prompt"])
    assert "submit the way your tool's instructions say" in prompt
    assert "reply with a one-paragraph summary" not in prompt
    assert prompt.count("\n5. ") == 1
