"""``openhands``: the OpenHands CLI headless, ``openhands --headless --json -f PROMPT_FILE``.

Output (OpenHands docs, "Headless Mode", JSON output mode): JSON lines, one agent event each
(``{"type": "action", ...}``, ``{"type": "observation", ...}``, messages). The docs do not fix a
usage event; OpenHands' metrics objects carry ``accumulated_cost`` and
``accumulated_token_usage`` (``prompt_tokens``, ``completion_tokens``), so the parser takes the
latest of those wherever an event carries them (0 when none does), the last agent message as the
summary, and an ``error`` event or an event with ``"error"`` as a failure. The CLI ignores
LLM_* variables unless ``--override-with-envs`` is given (OpenHands CLI README).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from triloop.domain.contracts import HarnessRequest
from triloop.execution.harnesses.base import PROMPT_FILE, AgentHarness, Usage


class OpenHandsHarness(AgentHarness):
    name = "openhands"
    default_key_env = "LLM_API_KEY"
    exclude = (".openhands/**",)

    def argv(self, request: HarnessRequest) -> list[str]:
        # Headless mode always auto-approves actions (documented); the sandbox is the boundary.
        return ["openhands", "--headless", "--json", "--override-with-envs", "-f", PROMPT_FILE]

    def env(self, request: HarnessRequest) -> dict[str, str]:
        env = {"OPENHANDS_HOME": "/tmp/.openhands", "NO_COLOR": "1"}
        return {**env, "LLM_MODEL": self.model} if self.model else env

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        tokens, cost, summary, error = 0, 0.0, "", ""
        for line in stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            for metrics in _metrics(event):
                cost = max(cost, float(metrics.get("accumulated_cost") or 0.0))
                usage = metrics.get("accumulated_token_usage")
                if isinstance(usage, dict):
                    used = int(usage.get("prompt_tokens") or 0)
                    used += int(usage.get("completion_tokens") or 0)
                    tokens = max(tokens, used)
            if event.get("type") == "error" or (event.get("error") and not event.get("type")):
                error = f"openhands error: {event.get('message') or event.get('error')}"
            text = _agent_text(event)
            if text:
                summary = text
        return Usage(tokens=tokens, cost_usd=cost, summary=summary, error=error)


def _metrics(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict below ``node`` that looks like OpenHands' Metrics."""
    if isinstance(node, dict):
        if "accumulated_cost" in node or "accumulated_token_usage" in node:
            yield node
        for value in node.values():
            yield from _metrics(value)
    elif isinstance(node, list):
        for value in node:
            yield from _metrics(value)


def _agent_text(event: dict[str, Any]) -> str:
    if event.get("type") not in ("message", "finish") and event.get("action") != "finish":
        return ""
    if event.get("source", "agent") != "agent":
        return ""
    for key in ("message", "content", "text", "final_thought"):
        if isinstance(event.get(key), str) and event[key].strip():
            return str(event[key])
    return ""
