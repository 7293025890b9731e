"""``codex``: OpenAI Codex CLI, ``codex exec --json`` with the prompt on stdin (``-``).

Output (Codex ``exec --json``, codex-rs/exec/src/exec_events.rs): JSON lines, one event each:
``thread.started``, ``turn.started``, ``item.started|updated|completed`` (an ``item`` whose
``type`` is e.g. ``agent_message`` with ``text``, ``command_execution``, ``file_change``),
``turn.completed`` with ``usage`` {``input_tokens``, ``cached_input_tokens``, ``output_tokens``},
``turn.failed`` with ``error.message``, and ``error`` with ``message``. Codex reports no cost:
``cost_usd`` stays 0 and only the token budget applies (cached input is part of input).
"""

from __future__ import annotations

import json
from pathlib import Path

from triloop.domain.contracts import HarnessRequest
from triloop.execution.harnesses.base import AgentHarness, Usage


class CodexHarness(AgentHarness):
    name = "codex"
    default_key_env = "OPENAI_API_KEY"
    stdin_prompt = True

    def argv(self, request: HarnessRequest) -> list[str]:
        # Codex's own sandbox needs kernel features a locked-down container lacks; the Triloop
        # sandbox is the boundary, so Codex runs without its approvals and sandbox.
        argv = ["codex", "exec", "--json", "--skip-git-repo-check"]
        argv += ["--dangerously-bypass-approvals-and-sandbox", "--cd", "/workspace"]
        argv += ["--model", self.model] if self.model else []
        return [*argv, "-"]

    def env(self, request: HarnessRequest) -> dict[str, str]:
        return {"CODEX_HOME": "/tmp/.codex", "NO_COLOR": "1"}

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        tokens, summary, error = 0, "", ""
        seen = False
        for line in stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            seen = True
            kind = event.get("type")
            if kind == "turn.completed" and isinstance(event.get("usage"), dict):
                usage = event["usage"]
                tokens += int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
            elif kind == "item.completed" and isinstance(event.get("item"), dict):
                item = event["item"]
                if item.get("type") in ("agent_message", "assistant_message"):
                    summary = str(item.get("text") or summary)
            elif kind == "turn.failed":
                err = event.get("error")
                error = "codex turn failed: " + str(
                    err.get("message") if isinstance(err, dict) else err
                )
            elif kind == "error":
                error = f"codex error: {event.get('message')}"
        if not seen:
            error = error or "codex printed no JSON events"
        return Usage(tokens=tokens, summary=summary, error=error)
