"""``mini-swe-agent``: the ``mini`` CLI, non-interactive (``--yolo --exit-immediately``).

Kept in its own module: the mini-swe-agent end-to-end test (a scripted OpenAI-compatible model
server on the allowlisted network) may refine it.

Invocation (minisweagent/run/mini.py): ``-t/--task`` the task, ``-y/--yolo`` run without
confirmation, ``--exit-immediately`` finish without prompting, ``-l/--cost-limit``, ``-m/--model``,
``-o/--output`` the trajectory file. Output: the console is for people; the trajectory JSON
(``-o``) has ``info.model_stats.instance_cost``, ``info.exit_status`` (``Submitted``,
``LimitsExceeded``, ``TimeExceeded``, ...) and ``info.submission``, and each assistant message
keeps the model response, whose ``usage`` (``prompt_tokens``, ``completion_tokens``,
``total_tokens``) the parser sums for tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from triloop.domain.contracts import HarnessRequest
from triloop.execution.harnesses.base import PROMPT, AgentHarness, Usage, read_text

TRAJECTORY = "agent.traj.json"


class MiniSweAgentHarness(AgentHarness):
    name = "mini-swe-agent"
    default_key_env = "OPENAI_API_KEY"

    def argv(self, request: HarnessRequest) -> list[str]:
        argv = ["mini", "--yolo", "--exit-immediately", "-t", PROMPT]
        argv += ["--cost-limit", f"{request.budget.max_cost_usd:g}", "-o", f"/out/{TRAJECTORY}"]
        return [*argv, "--model", self.model] if self.model else argv

    def env(self, request: HarnessRequest) -> dict[str, str]:
        # Configured (no first-run wizard), litellm's bundled cost map (no download), and a
        # model missing from it costs 0 instead of failing the run.
        return {
            "MSWEA_CONFIGURED": "true",
            "MSWEA_COST_TRACKING": "ignore_errors",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "MSWEA_GLOBAL_CONFIG_DIR": "/tmp/.mini-swe-agent",
            "NO_COLOR": "1",
        }

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        try:
            data = json.loads(read_text(out / TRAJECTORY) or "null")
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("info"), dict):
            return Usage(error=f"mini-swe-agent left no trajectory in /out/{TRAJECTORY}")
        info = data["info"]
        stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
        status = str(info.get("exit_status") or "")
        tokens = sum(_tokens(u) for u in _usages(data.get("messages") or []))
        return Usage(
            tokens=tokens,
            cost_usd=float(stats.get("instance_cost") or 0.0),
            summary=f"mini-swe-agent {status}: {str(info.get('submission') or '')[:1500]}",
            error="" if status in ("Submitted", "LimitsExceeded", "") else f"mini: {status}",
            over="cost_usd" if status == "LimitsExceeded" else "",
        )


def _usages(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        usage = node.get("usage")
        if isinstance(usage, dict) and ("total_tokens" in usage or "prompt_tokens" in usage):
            yield usage
            return
        for value in node.values():
            yield from _usages(value)
    elif isinstance(node, list):
        for value in node:
            yield from _usages(value)


def _tokens(usage: dict[str, Any]) -> int:
    total = int(usage.get("total_tokens") or 0)
    return total or int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
