"""``gemini-cli``: Gemini CLI headless, ``gemini -p PROMPT --output-format json``.

Output (Gemini CLI docs, "Headless mode reference", JSON output): one object with ``response``
(the final answer), ``stats`` (``models.<name>.tokens`` with ``prompt``, ``candidates``,
``total``, ``cached``, ``thoughts``, ``tool``; ``tools``; ``files``) and, when the request failed,
``error`` (``type``, ``message``, ``code``). Exit codes: 0 success, 1 general or API error,
42 input error, 53 turn limit exceeded. Gemini reports no cost: only the token budget applies.
"""

from __future__ import annotations

import json
from pathlib import Path

from triloop.domain.contracts import HarnessRequest
from triloop.execution.harnesses.base import PROMPT, AgentHarness, Usage, as_dict, first_line


class GeminiCliHarness(AgentHarness):
    name = "gemini-cli"
    default_key_env = "GEMINI_API_KEY"

    def argv(self, request: HarnessRequest) -> list[str]:
        # --yolo: approve every tool call; the sandbox, not Gemini's prompts, is the boundary.
        argv = ["gemini", "-p", PROMPT, "--output-format", "json", "--yolo"]
        return [*argv, "--model", self.model] if self.model else argv

    def env(self, request: HarnessRequest) -> dict[str, str]:
        return {"GEMINI_CLI_NO_RELAUNCH": "true", "NO_COLOR": "1"}

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        start = stdout.find("{")
        try:
            data = json.loads(stdout[start:]) if start >= 0 else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return Usage(error=f"gemini printed no JSON object: {first_line(stdout)[:300]}")
        models = as_dict(as_dict(data.get("stats")).get("models"))
        tokens = 0
        for model in models.values():
            counts = model.get("tokens") if isinstance(model, dict) else None
            if isinstance(counts, dict):
                total = counts.get("total")
                tokens += int(total or 0) or int(counts.get("prompt") or 0) + int(
                    counts.get("candidates") or 0
                )
        err = data.get("error")
        error = ""
        if err:
            detail = err.get("message") if isinstance(err, dict) else err
            error = f"gemini error: {detail}"
        return Usage(tokens=tokens, summary=str(data.get("response") or ""), error=error)
