"""What every harness shares: reading result.json, and the agent harness's common frame.

An agent harness runs a coding-agent CLI through the sandbox's generic ``agent`` subcommand.
The host writes a request document (argv, safe env values, the NAMES of secret variables, the
prompt, the runtime limit) to /out/request.json; the sandbox runs the CLI in /workspace, keeps
its stdout/stderr in /out/agent.stdout and /out/agent.stderr, and leaves /out/patch.diff and a
generic /out/result.json. ``read_output`` then reads the CLI's own output for tokens, cost and a
summary and maps the run to changed / no_change / failed / over_budget.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import ValidationError

from triloop.domain.contracts import Budget, HarnessRequest, HarnessResult
from triloop.domain.policy import HarnessPolicy
from triloop.execution.harnesses.prompt import (
    REVIEW_FINISH_RULE,
    SUMMARY_RULE,
    build_prompt,
    build_review_prompt,
)
from triloop.sandbox_files import SandboxFileError, read_sandbox_file

AGENT_COMMAND = ["agent", "--request", "/out/request.json", "--out", "/out"]
PROMPT = "{prompt}"
"""An argv element the sandbox replaces with the prompt text."""
PROMPT_FILE = "{prompt_file}"
"""An argv element the sandbox replaces with the path of the prompt file (under /tmp)."""
OUT = "/out"
SUMMARY_CHARS = 2000
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
# Variable names that smell of forge, push or control-plane credentials: never handed over.
FORBIDDEN_ENV = re.compile(
    r"GITHUB|GH_|GITLAB|BITBUCKET|FORGE|PUSH|SSH_|GIT_ASKPASS|GIT_CREDENTIAL|AIRFLOW|TRILOOP_DB"
    r"|DOCKER|AWS_|GOOGLE_APPLICATION"
)


class HarnessOutputError(ValueError):
    """The harness's result file is missing or malformed."""


def validate_result(raw: str) -> HarnessResult:
    """``raw`` (a result.json) as a HarnessResult, or HarnessOutputError saying why not."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HarnessOutputError(f"harness result is not a JSON object: {exc}") from exc
    if not isinstance(data, dict):
        raise HarnessOutputError(f"harness result is not a JSON object: {type(data).__name__}")
    data.pop("command", None)  # the in-sandbox subcommand, not part of the contract
    try:
        return HarnessResult.model_validate(data)
    except ValidationError as exc:
        raise HarnessOutputError(f"harness result does not match the contract: {exc}") from exc


def read_text(path: Path, limit: int = 8 << 20) -> str:
    """A sandbox-written file as text ('' when missing); HarnessOutputError naming it when it
    is over ``limit`` bytes (checked before reading) or not a regular file."""
    try:
        return read_sandbox_file(path, limit).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    except SandboxFileError as exc:
        raise HarnessOutputError(str(exc)) from exc


@dataclass(frozen=True)
class Usage:
    """What an agent CLI said about its run."""

    tokens: int = 0
    cost_usd: float = 0.0
    summary: str = ""
    error: str = ""
    """Non-empty when the CLI's own output reports a failed run (whatever its exit code)."""
    over: str = ""
    """A limit the CLI itself stopped at (tokens, cost_usd), if it reports one."""
    extra: dict[str, Any] = field(default_factory=dict)


def map_outcome(sandbox: HarnessResult, usage: Usage, budget: Budget) -> HarnessResult:
    """The final result: budget first (over_budget wins), then the CLI's and the sandbox's word.

    Runtime: the sandbox killed the CLI at the limit (status over_budget, runtime_s). Tokens or
    cost over the ticket's budget: over_budget even if the CLI finished (its patch is not used).
    A CLI that exited non-zero or reported an error: failed. Else changed / no_change by the diff.
    """
    base = {"tokens": max(usage.tokens, 0), "cost_usd": max(usage.cost_usd, 0.0)}
    summary = (usage.summary or sandbox.summary)[:SUMMARY_CHARS]
    if sandbox.status == "over_budget":
        status, over = "over_budget", sandbox.over_budget or "runtime_s"
        summary = f"stopped at the runtime limit ({budget.max_runtime_s}s)"
    elif usage.tokens > budget.max_tokens or usage.over == "tokens":
        status, over = "over_budget", "tokens"
        summary = f"used {usage.tokens} tokens, over the limit of {budget.max_tokens}"
    elif usage.cost_usd > budget.max_cost_usd or usage.over == "cost_usd":
        status, over = "over_budget", "cost_usd"
        summary = f"cost ${usage.cost_usd:.4f}, over the limit of ${budget.max_cost_usd:.2f}"
    elif sandbox.status == "failed" or usage.error:
        status, over = "failed", ""
        summary = (usage.error or sandbox.summary or summary)[:SUMMARY_CHARS]
    else:
        status, over = sandbox.status, ""
    return sandbox.model_copy(
        update={**base, "status": status, "over_budget": over, "summary": summary}
    )


class AgentHarness:
    """An agent CLI in the sandbox. Subclasses give the CLI's argv, env and output parser."""

    name: str
    default_key_env: ClassVar[str]
    exclude: ClassVar[tuple[str, ...]] = ()
    """Globs the patch leaves out (files the CLI keeps for itself in the working tree)."""

    def __init__(self, *, model: str | None = None, api_key_env: str | None = None) -> None:
        self.model = model
        self.api_key_env = api_key_env or self.default_key_env
        if not ENV_NAME.match(self.api_key_env) or FORBIDDEN_ENV.search(self.api_key_env):
            raise ValueError(
                f"{self.name}: api_key_env {self.api_key_env!r} is not an allowed variable name"
            )

    def configured(self, policy: HarnessPolicy | None) -> Self:
        """This harness with the policy's model and key variable (itself without a policy)."""
        if policy is None:
            return self
        return type(self)(model=policy.model, api_key_env=policy.api_key_env)

    # -- what subclasses provide ------------------------------------------------------------

    def argv(self, request: HarnessRequest) -> list[str]:
        raise NotImplementedError

    def env(self, request: HarnessRequest) -> dict[str, str]:
        """Non-secret variables the CLI needs (config switches, telemetry off)."""
        return {}

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        raise NotImplementedError

    finish_rule: ClassVar[str] = SUMMARY_RULE
    """Rule 5 of the prompt: how the agent ends its run."""

    review_finish_rule: ClassVar[str] = REVIEW_FINISH_RULE
    """Rule 5 of a review prompt (``mode: review``)."""

    stdin_prompt: ClassVar[bool] = False
    """Whether the CLI reads the prompt on stdin."""

    # -- the Harness protocol --------------------------------------------------------------

    def command(self, request: HarnessRequest) -> list[str]:
        return list(AGENT_COMMAND)

    def request_document(self, request: HarnessRequest) -> dict[str, object]:
        env = self.env(request)
        for name in env:
            if not ENV_NAME.match(name) or FORBIDDEN_ENV.search(name):
                raise ValueError(f"{self.name}: env {name!r} may not be handed to the sandbox")
        return {
            "schema_version": 1,
            "harness": self.name,
            "ticket_id": request.ticket_id,
            "argv": self.argv(request),
            "env": env,
            "pass_env": [self.api_key_env],
            "mode": request.mode,
            "prompt": self.prompt(request),
            "stdin_prompt": self.stdin_prompt,
            "runtime_limit_s": request.budget.max_runtime_s,
            "exclude": list(self.exclude),
        }

    def prompt(self, request: HarnessRequest) -> str:
        if request.mode == "review":
            return build_review_prompt(request, self.review_finish_rule)
        return build_prompt(request, self.finish_rule)

    def parse_result(self, raw: str) -> HarnessResult:
        return validate_result(raw)

    def read_output(self, request: HarnessRequest, out: Path) -> HarnessResult:
        sandbox = self.parse_result(read_text(out / "result.json"))
        usage = self.parse_usage(read_text(out / "agent.stdout"), out)
        return map_outcome(sandbox, usage, request.budget)


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (CLI output is never trusted)."""
    return value if isinstance(value, dict) else {}


def first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
