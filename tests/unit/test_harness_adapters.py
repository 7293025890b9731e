"""Agent harness adapters: argv/env, parsing recorded output, exit mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from triloop.domain.contracts import Budget, HarnessRequest, HarnessResult
from triloop.domain.policy import HarnessPolicy
from triloop.execution.harnesses import AGENT_HARNESSES, HARNESSES, AgentHarness, harness_for
from triloop.execution.harnesses.aider import parse_count
from triloop.execution.harnesses.base import Usage, map_outcome


def request(**changes: object) -> HarnessRequest:
    fields: dict[str, object] = {
        "harness": "claude-code",
        "ticket_id": "T-1",
        "rule": "F401",
        "paths": ["pkg/mod.py"],
        "title": "F401 in pkg/mod.py: `os` imported but unused",
        "details": "- pkg/mod.py:1 [ruff F401] `os` imported but unused",
    }
    return HarnessRequest.model_validate({**fields, **changes})


def agent(name: str) -> AgentHarness:
    harness = HARNESSES[name]
    assert isinstance(harness, AgentHarness)
    return harness


# The prompt and its fence: tests/unit/test_prompt_fence.py.


# -- argv and env ------------------------------------------------------------------------

ARGV = {
    "claude-code": ["claude", "-p", "{prompt}", "--output-format", "json"],
    "codex": ["codex", "exec", "--json"],
    "gemini-cli": ["gemini", "-p", "{prompt}", "--output-format", "json"],
    "openhands": ["openhands", "--headless", "--json"],
    "aider": ["aider", "--message-file", "{prompt_file}", "--yes-always", "--no-auto-commits"],
    "mini-swe-agent": ["mini", "--yolo", "--exit-immediately", "-t", "{prompt}"],
}
KEY_ENV = {
    "claude-code": "ANTHROPIC_API_KEY",
    "codex": "OPENAI_API_KEY",
    "gemini-cli": "GEMINI_API_KEY",
    "openhands": "LLM_API_KEY",
    "aider": "OPENAI_API_KEY",
    "mini-swe-agent": "OPENAI_API_KEY",
}


def test_every_agent_harness_is_covered_here() -> None:
    assert set(AGENT_HARNESSES) == set(ARGV) == set(KEY_ENV)


@pytest.mark.parametrize("name", sorted(ARGV))
def test_request_document_names_the_key_and_carries_no_secret(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV[name], "sk-very-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-forge-secret")
    doc = agent(name).request_document(request(harness=name))
    argv = doc["argv"]
    assert isinstance(argv, list) and argv[0] == ARGV[name][0]
    positions = [argv.index(arg) for arg in ARGV[name]]
    assert positions == sorted(positions), argv  # the documented flags, in their order
    assert doc["pass_env"] == [KEY_ENV[name]]
    assert doc["runtime_limit_s"] == 900
    text = json.dumps(doc)
    assert "sk-very-secret" not in text and "ghp-forge-secret" not in text
    env = doc["env"]
    assert isinstance(env, dict) and not any("KEY" in k or "TOKEN" in k for k in env)
    assert agent(name).command(request(harness=name)) == [
        "agent",
        "--request",
        "/out/request.json",
        "--out",
        "/out",
    ]


@pytest.mark.parametrize("name", sorted(ARGV))
def test_policy_sets_model_and_key_variable(name: str) -> None:
    policy = HarnessPolicy(model="some-model", api_key_env="TEAM_MODEL_KEY")
    harness = harness_for(name, policy)
    doc = harness.request_document(request(harness=name))
    assert doc["pass_env"] == ["TEAM_MODEL_KEY"]
    assert "some-model" in [*doc["argv"], *doc["env"].values()]  # type: ignore[misc]
    assert harness_for(name) is HARNESSES[name]


@pytest.mark.parametrize("bad", ["GITHUB_TOKEN", "GH_TOKEN", "TRILOOP_DB_URL", "lower", "A-B"])
def test_a_forge_or_malformed_key_variable_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="api_key_env"):
        harness_for("claude-code", HarnessPolicy(api_key_env=bad))


def test_aider_gets_the_ticket_files_and_keeps_its_own_files_out_of_the_patch() -> None:
    doc = agent("aider").request_document(request(harness="aider", paths=["a.py", "-b.py"]))
    argv = doc["argv"]
    assert isinstance(argv, list) and argv[-3:] == ["--", "a.py", "-b.py"]
    assert doc["exclude"] == [".aider*"]


def test_mini_gets_the_cost_limit_from_the_budget() -> None:
    doc = agent("mini-swe-agent").request_document(
        request(harness="mini-swe-agent", budget=Budget(max_cost_usd=0.75))
    )
    argv = doc["argv"]
    assert isinstance(argv, list) and argv[argv.index("--cost-limit") + 1] == "0.75"


# -- parsing recorded output ---------------------------------------------------------------

CLAUDE_OK = json.dumps(
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": 20840,
        "num_turns": 6,
        "result": "Removed the unused `os` import from pkg/mod.py.",
        "session_id": "5f1c",
        "total_cost_usd": 0.0871,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 5400,
            "cache_read_input_tokens": 41000,
            "output_tokens": 710,
        },
    }
)
CODEX_OK = "\n".join(
    [
        '{"type":"thread.started","thread_id":"0199a213"}',
        '{"type":"turn.started"}',
        '{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"look"}}',
        '{"type":"item.completed","item":{"id":"item_1","type":"command_execution",'
        '"command":"ruff check","aggregated_output":"","exit_code":0,"status":"completed"}}',
        '{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Fixed."}}',
        '{"type":"turn.completed","usage":{"input_tokens":26549,"cached_input_tokens":22272,'
        '"output_tokens":1590}}',
    ]
)
GEMINI_OK = json.dumps(
    {
        "response": "Removed the import.",
        "stats": {
            "models": {
                "gemini-2.5-pro": {
                    "api": {"totalRequests": 2, "totalErrors": 0, "totalLatencyMs": 5053},
                    "tokens": {"prompt": 24939, "candidates": 20, "total": 25113, "cached": 21263},
                },
                "gemini-2.5-flash": {"tokens": {"prompt": 100, "candidates": 10, "total": 110}},
            },
            "tools": {"totalCalls": 1},
        },
    },
    indent=2,
)
OPENHANDS_OK = "\n".join(
    [
        '{"type": "action", "action": "run", "command": "ruff check pkg"}',
        '{"type": "observation", "content": "pkg/mod.py:1:8: F401"}',
        '{"type": "message", "source": "agent", "message": "Removed the unused import."}',
        '{"type": "state", "metrics": {"accumulated_cost": 0.042, '
        '"accumulated_token_usage": {"prompt_tokens": 9000, "completion_tokens": 300}}}',
    ]
)
AIDER_OK = """Aider v0.86.1
Model: gpt-4o with diff edit format
pkg/mod.py
Removed the unused import.
Tokens: 4.1k sent, 52 received. Cost: $0.0075 message, $0.0075 session.
Applied edit to pkg/mod.py
Tokens: 15k sent, 2.1k cache write, 1.0k received. Cost: $0.05 message, $0.0575 session.
"""

RECORDED = {
    # name: (stdout, tokens, cost, summary fragment)
    "claude-code": (CLAUDE_OK, 12 + 5400 + 41000 + 710, 0.0871, "Removed the unused `os`"),
    "codex": (CODEX_OK, 26549 + 1590, 0.0, "Fixed."),
    "gemini-cli": (GEMINI_OK, 25113 + 110, 0.0, "Removed the import."),
    "openhands": (OPENHANDS_OK, 9300, 0.042, "Removed the unused import."),
    "aider": (AIDER_OK, 4100 + 52 + 15000 + 1000, 0.0575, "Applied edit to pkg/mod.py"),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_output_is_parsed(name: str, tmp_path: Path) -> None:
    stdout, tokens, cost, summary = RECORDED[name]
    usage = agent(name).parse_usage(stdout, tmp_path)
    assert (usage.tokens, usage.cost_usd, usage.error) == (tokens, cost, "")
    assert summary in usage.summary


def test_mini_trajectory_is_parsed(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}
    trajectory = {
        "info": {
            "model_stats": {"instance_cost": 0.031, "api_calls": 2},
            "exit_status": "Submitted",
            "submission": "diff --git ...",
            "mini_version": "2.4.6",
        },
        "messages": [
            {"role": "system", "content": "..."},
            {"role": "assistant", "content": "a", "extra": {"response": {"usage": usage}}},
            {"role": "assistant", "content": "b", "extra": {"response": {"usage": usage}}},
        ],
    }
    (tmp_path / "agent.traj.json").write_text(json.dumps(trajectory))
    parsed = agent("mini-swe-agent").parse_usage("console noise", tmp_path)
    assert (parsed.tokens, parsed.cost_usd, parsed.error) == (2100, 0.031, "")
    trajectory["info"]["exit_status"] = "LimitsExceeded"  # type: ignore[index]
    (tmp_path / "agent.traj.json").write_text(json.dumps(trajectory))
    assert agent("mini-swe-agent").parse_usage("", tmp_path).over == "cost_usd"


FAILED = {
    "claude-code": json.dumps(
        {"type": "result", "subtype": "error_max_turns", "is_error": True, "result": "gave up"}
    ),
    "codex": '{"type":"turn.failed","error":{"message":"stream disconnected"}}',
    "gemini-cli": json.dumps({"response": "", "error": {"type": "ApiError", "message": "quota"}}),
    "openhands": '{"type": "error", "message": "LLM authentication failed"}',
    "aider": "litellm.AuthenticationError: OpenAIException - invalid api key\n",
    "mini-swe-agent": "",  # no trajectory written
}


@pytest.mark.parametrize("name", sorted(FAILED))
def test_a_failure_in_the_output_is_an_error(name: str, tmp_path: Path) -> None:
    assert agent(name).parse_usage(FAILED[name], tmp_path).error


@pytest.mark.parametrize("name", ["claude-code", "codex", "gemini-cli"])
def test_output_that_is_not_the_documented_format_is_an_error(name: str, tmp_path: Path) -> None:
    assert agent(name).parse_usage("Segmentation fault\n", tmp_path).error


@pytest.mark.parametrize(("text", "count"), [("52", 52), ("4.1k", 4100), ("15k", 15000)])
def test_aider_token_counts(text: str, count: int) -> None:
    assert parse_count(text) == count


# -- exit mapping ------------------------------------------------------------------------


def sandbox(status: str, over: str = "") -> HarnessResult:
    return HarnessResult(
        harness="codex", ticket_id="T-1", status=status, over_budget=over, summary="sandbox"
    )  # type: ignore[arg-type]


BUDGET = Budget(max_tokens=1000, max_cost_usd=1.0, max_runtime_s=60)
MAPPING = [
    # sandbox status, usage, final status, over_budget
    ("changed", Usage(tokens=999, cost_usd=0.99), "changed", ""),
    ("no_change", Usage(tokens=10), "no_change", ""),
    ("changed", Usage(tokens=1001), "over_budget", "tokens"),
    ("changed", Usage(tokens=10, cost_usd=1.01), "over_budget", "cost_usd"),
    ("failed", Usage(tokens=5000), "over_budget", "tokens"),
    ("changed", Usage(tokens=10, over="cost_usd"), "over_budget", "cost_usd"),
    ("over_budget", Usage(tokens=10), "over_budget", "runtime_s"),
    ("failed", Usage(tokens=10), "failed", ""),
    ("changed", Usage(tokens=10, error="claude error_max_turns"), "failed", ""),
]


@pytest.mark.parametrize(("status", "usage", "final", "over"), MAPPING)
def test_exit_mapping(status: str, usage: Usage, final: str, over: str) -> None:
    result = map_outcome(
        sandbox(status, "runtime_s" if status == "over_budget" else ""), usage, BUDGET
    )
    assert (result.status, result.over_budget) == (final, over)
    assert (result.tokens, result.cost_usd) == (usage.tokens, usage.cost_usd)
    if usage.error:
        assert result.summary == usage.error


# -- sandbox settings (what the DAG hands SandboxOperator) ---------------------------------


def test_sandbox_settings_for_an_agent_and_for_autofix() -> None:
    from triloop.domain.policy import Policy
    from triloop.execution.harnesses.settings import sandbox_settings

    policy = Policy(
        sandbox_wall_clock_s=300,
        harnesses={
            "codex": HarnessPolicy(
                egress=["api.openai.com:443"], api_key_conn_id="openai", api_key_env="OAI_KEY"
            )
        },
    )
    codex = sandbox_settings(policy, request(harness="codex", budget=Budget(max_runtime_s=600)))
    assert codex.model_dump() == {
        "image": "triloop-sandbox-codex:latest",
        "wall_clock_limit_s": 720,
        "egress_allowlist": ["api.openai.com:443"],
        "api_key_conn_id": "openai",
        "api_key_env": "OAI_KEY",
    }
    autofix = sandbox_settings(policy, request(harness="autofix"))
    assert (autofix.image, autofix.wall_clock_limit_s, autofix.api_key_conn_id) == (None, 300, None)
