"""``mini-swe-agent``: the ``mini`` CLI (mini-swe-agent 2.4.6), unattended, through litellm.

Invocation (minisweagent/run/mini.py): ``-c`` config specs, merged in order (a file name such as
``mini.yaml`` or a ``key.path=value`` pair; giving any ``-c`` drops the default, so ``mini.yaml``
comes first); ``-y/--yolo`` runs the model's commands without confirmation;
``--exit-immediately`` finishes when the agent submits instead of asking for a new task;
``-l/--cost-limit``, ``-m/--model`` (a litellm name such as ``openai/gpt-4.1``), ``-t/--task``,
``-o/--output`` (the trajectory file). With stdin closed and ``--yolo`` nothing prompts: a
reached limit ends the run with exit status ``LimitsExceeded``.

The model API: ``model.model_kwargs.api_base`` is the policy's ``api_base`` (an
OpenAI-compatible server on the egress allowlist); the key comes in as the policy's
``api_key_env`` (default ``OPENAI_API_KEY``, which litellm reads for ``openai/`` models). The
sandbox's ``HTTP_PROXY``/``HTTPS_PROXY`` route every request through the egress proxy.

Environment: ``MSWEA_CONFIGURED`` skips the first-run wizard; ``LITELLM_LOCAL_MODEL_COST_MAP``
makes litellm use its bundled price list instead of downloading one at import;
``MSWEA_COST_TRACKING=ignore_errors`` prices a model missing from that list at $0 instead of
failing the run (the egress proxy meters tokens either way); rate-limit answers are retried once
(``MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT``) and not again inside litellm (``num_retries``), so the
proxy's 429 at the token budget ends the run in seconds, not after minutes of back-off.

Output: the console is for people. The trajectory JSON (``-o``, rewritten after every step, so it
survives a kill) has ``info.exit_status`` (``Submitted``; ``LimitsExceeded``; or the exception
that ended the run, e.g. ``RateLimitError``), ``info.model_stats.instance_cost`` and
``messages``: each model answer keeps the raw response under ``extra.response`` with its
OpenAI ``usage``, which the parser sums for tokens.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Self

from triloop.domain.contracts import HarnessRequest
from triloop.domain.policy import HarnessPolicy
from triloop.execution.harnesses.base import PROMPT, AgentHarness, Usage, read_text

TRAJECTORY = "agent.traj.json"
CONFIG_DIR = "/tmp/.mini-swe-agent"
FINISHED = ("Submitted", "")
# What the egress proxy answers once the token budget is spent (its 429 error message).
PROXY_BUDGET = re.compile(r"token budget of \d+ exhausted")


class MiniSweAgentHarness(AgentHarness):
    name = "mini-swe-agent"
    default_key_env = "OPENAI_API_KEY"
    # mini ends a run when the agent submits; its own instructions say how.
    finish_rule = (
        "5. When done, submit the way your tool's instructions say; before that, say in one"
        " paragraph what you changed and why."
    )
    review_finish_rule = (
        "5. When /out/review.json is written, submit the way your tool's instructions say."
    )

    def __init__(
        self,
        *,
        model: str | None = None,
        api_key_env: str | None = None,
        api_base: str | None = None,
    ) -> None:
        super().__init__(model=model, api_key_env=api_key_env)
        self.api_base = api_base

    def configured(self, policy: HarnessPolicy | None) -> Self:
        if policy is None:
            return self
        return type(self)(
            model=policy.model, api_key_env=policy.api_key_env, api_base=policy.api_base
        )

    def argv(self, request: HarnessRequest) -> list[str]:
        config = ["mini.yaml", "model.model_kwargs.num_retries=0"]
        if self.api_base:
            config.append(f"model.model_kwargs.api_base={self.api_base}")
        argv = ["mini", "--yolo", "--exit-immediately"]
        argv += [arg for spec in config for arg in ("-c", spec)]
        argv += ["--cost-limit", f"{request.budget.max_cost_usd:g}", "-o", f"/out/{TRAJECTORY}"]
        argv += ["--model", self.model] if self.model else []
        return [*argv, "-t", PROMPT]

    def env(self, request: HarnessRequest) -> dict[str, str]:
        return {
            "MSWEA_CONFIGURED": "true",
            "MSWEA_SILENT_STARTUP": "1",
            "MSWEA_GLOBAL_CONFIG_DIR": CONFIG_DIR,
            "MSWEA_COST_TRACKING": "ignore_errors",
            "MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT": "2",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "NO_COLOR": "1",
            "_TYPER_STANDARD_TRACEBACK": "1",  # a plain traceback in agent.stderr, not boxes
        }

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        try:
            data = json.loads(read_text(out / TRAJECTORY) or "null")
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("info"), dict):
            return Usage(error=f"mini-swe-agent left no trajectory in /out/{TRAJECTORY}")
        info = data["info"]
        messages = [m for m in data.get("messages") or [] if isinstance(m, dict)]
        stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
        status = str(info.get("exit_status") or "")
        ending = str(messages[-1].get("content") or "") if messages else ""
        over = ""
        if status == "LimitsExceeded":
            over = "cost_usd"  # the only limit set: --cost-limit (no step limit)
        elif PROXY_BUDGET.search(ending):
            over = "tokens"  # the egress proxy refused: the token budget is spent
        return Usage(
            tokens=sum(_tokens(m) for m in messages),
            cost_usd=_float(stats.get("instance_cost")),
            summary=_summary(status, info, messages),
            error="" if status in FINISHED or over else f"mini-swe-agent {status}: {ending[:500]}",
            over=over,
            extra={"exit_status": status, "api_calls": stats.get("api_calls", 0)},
        )


def _tokens(message: dict[str, Any]) -> int:
    """The tokens billed for one model answer (its response's OpenAI ``usage``)."""
    extra = message.get("extra")
    response = extra.get("response") if isinstance(extra, dict) else None
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return 0
    total = _int(usage.get("total_tokens"))
    return total or _int(usage.get("prompt_tokens")) + _int(usage.get("completion_tokens"))


def _summary(status: str, info: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """The submission if any, else the model's last words (its reasoning before submitting)."""
    said = [
        str(m.get("content") or "").strip()
        for m in messages
        if m.get("role") == "assistant" and str(m.get("content") or "").strip()
    ]
    text = str(info.get("submission") or "").strip() or (said[-1] if said else "")
    return f"mini-swe-agent {status or 'ended'}: {text}"[:1500]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
