"""``claude-code``: Claude Code's print mode, ``claude -p PROMPT --output-format json``.

Output (Claude Code headless docs, "Output formats": ``--output-format json`` prints one result
object when the run ends; fields as in the Agent SDK's result message): ``type: "result"``,
``subtype`` (``success``, ``error_max_turns``, ``error_during_execution``), ``is_error``,
``result`` (the final text), ``total_cost_usd``, ``num_turns``, ``duration_ms`` and ``usage``
(``input_tokens``, ``output_tokens``, ``cache_creation_input_tokens``,
``cache_read_input_tokens``). Older releases named the cost ``cost_usd``; both are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from triloop.domain.contracts import HarnessRequest
from triloop.execution.harnesses.base import PROMPT, AgentHarness, Usage, as_dict, first_line

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class ClaudeCodeHarness(AgentHarness):
    name = "claude-code"
    default_key_env = "ANTHROPIC_API_KEY"
    max_turns = 40

    def argv(self, request: HarnessRequest) -> list[str]:
        # The sandbox is the permission boundary (no network but the model API, no
        # credentials), so Claude Code's own prompts are skipped: nobody could answer them.
        argv = ["claude", "-p", PROMPT, "--output-format", "json"]
        argv += ["--max-turns", str(self.max_turns), "--dangerously-skip-permissions"]
        return [*argv, "--model", self.model] if self.model else argv

    def env(self, request: HarnessRequest) -> dict[str, str]:
        return {
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        result = _last_result(stdout)
        if result is None:
            return Usage(error=f"claude printed no result object: {first_line(stdout)[:300]}")
        usage = as_dict(result.get("usage"))
        tokens = sum(int(usage.get(k) or 0) for k in TOKEN_FIELDS)
        cost = float(result.get("total_cost_usd", result.get("cost_usd")) or 0.0)
        text = str(result.get("result") or "")
        subtype = str(result.get("subtype") or "")
        failed = bool(result.get("is_error")) or (subtype not in ("", "success"))
        error = f"claude {subtype or 'error'}: {text[:500]}" if failed else ""
        return Usage(tokens=tokens, cost_usd=cost, summary=text, error=error)


def _last_result(stdout: str) -> dict[str, Any] | None:
    """The result object: the whole stdout, or its last JSON line (stream-json ends with it)."""
    candidates = [stdout, *reversed(stdout.strip().splitlines())]
    for text in candidates:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("type", "result") == "result":
            return data
    return None
