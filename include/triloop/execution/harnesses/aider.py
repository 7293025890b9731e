"""``aider``: Aider in scripting mode, ``aider --message-file PROMPT_FILE --yes-always``.

``--yes-always`` is the current name of aider's ``--yes``; ``--no-auto-commits`` and
``--no-dirty-commits`` leave every edit in the working tree for Triloop's patch; the chat and
input histories go to /tmp and ``.aider*`` files are left out of the patch.

Output (aider/coders/base_coder.py, ``calculate_and_show_tokens_and_cost``): after each model
reply aider prints ``Tokens: 4.1k sent, 52 received. Cost: $0.0075 message, $0.0075
session.`` (``, N cache write`` / ``, N cache hit`` may follow ``sent``; the Cost part is absent
for models without a price). Counts use aider's ``format_tokens`` (``<1000`` raw, else one
decimal or whole thousands with ``k``), so token totals are approximate to that rounding.
"""

from __future__ import annotations

import re
from pathlib import Path

from triloop.domain.contracts import HarnessRequest
from triloop.execution.harnesses.base import PROMPT_FILE, AgentHarness, Usage

TOKENS = re.compile(
    r"^Tokens: (?P<sent>[\d.]+k?) sent(?:, [\d.]+k? cache (?:write|hit))*"
    r", (?P<received>[\d.]+k?) received\.(?: Cost: \$(?P<msg>[\d.]+) message, "
    r"\$(?P<session>[\d.]+) session\.)?",
    re.MULTILINE,
)
ERROR = re.compile(r"^(?:litellm\.\w+Error|Error|.*APIError|.*AuthenticationError)\b.*$", re.M)


def parse_count(text: str) -> int:
    return round(float(text[:-1]) * 1000) if text.endswith("k") else int(float(text))


class AiderHarness(AgentHarness):
    name = "aider"
    default_key_env = "OPENAI_API_KEY"
    exclude = (".aider*",)

    def argv(self, request: HarnessRequest) -> list[str]:
        argv = ["aider", "--message-file", PROMPT_FILE, "--yes-always"]
        argv += ["--no-auto-commits", "--no-dirty-commits", "--no-gitignore"]
        argv += ["--no-check-update", "--analytics-disable", "--no-show-model-warnings"]
        argv += ["--no-pretty", "--no-stream", "--no-fancy-input", "--no-restore-chat-history"]
        argv += ["--chat-history-file", "/tmp/aider.chat.history.md"]
        argv += ["--input-history-file", "/tmp/aider.input.history"]
        argv += ["--model", self.model] if self.model else []
        return [*argv, "--", *request.paths]

    def env(self, request: HarnessRequest) -> dict[str, str]:
        return {"AIDER_CHECK_UPDATE": "false", "NO_COLOR": "1"}

    def parse_usage(self, stdout: str, out: Path) -> Usage:
        tokens, cost = 0, 0.0
        for match in TOKENS.finditer(stdout):
            tokens += parse_count(match["sent"]) + parse_count(match["received"])
            if match["session"]:
                cost = float(match["session"])
        lines = [ln for ln in stdout.splitlines() if ln.strip() and not TOKENS.match(ln)]
        errors = ERROR.findall(stdout)
        return Usage(
            tokens=tokens,
            cost_usd=cost,
            summary="\n".join(lines[-12:]),
            error=f"aider: {errors[-1][:500]}" if errors and not tokens else "",
        )
