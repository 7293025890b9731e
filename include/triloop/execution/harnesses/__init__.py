"""Harness adapters: one module per harness, all behind ``triloop.adapters.protocols.Harness``.

``harness_for(name, policy)`` returns the adapter configured with the policy's model and key
variable; the registry lists every harness the factory knows (the contract suite runs over it).
"""

from __future__ import annotations

from triloop.adapters.protocols import Harness
from triloop.domain.policy import HarnessPolicy
from triloop.execution.harnesses.aider import AiderHarness
from triloop.execution.harnesses.autofix import AutofixHarness
from triloop.execution.harnesses.base import AgentHarness, HarnessOutputError, Usage
from triloop.execution.harnesses.claude_code import ClaudeCodeHarness
from triloop.execution.harnesses.codex import CodexHarness
from triloop.execution.harnesses.gemini_cli import GeminiCliHarness
from triloop.execution.harnesses.mini_swe_agent import MiniSweAgentHarness
from triloop.execution.harnesses.openhands import OpenHandsHarness

HARNESSES: dict[str, Harness] = {
    h.name: h
    for h in (
        AutofixHarness(),
        ClaudeCodeHarness(),
        CodexHarness(),
        GeminiCliHarness(),
        OpenHandsHarness(),
        AiderHarness(),
        MiniSweAgentHarness(),
    )
}
AGENT_HARNESSES = tuple(name for name, h in HARNESSES.items() if isinstance(h, AgentHarness))


def harness_for(name: str, policy: HarnessPolicy | None = None) -> Harness:
    """The harness called ``name``, configured from its policy entry (model, key variable)."""
    try:
        harness = HARNESSES[name]
    except KeyError:
        raise ValueError(f"unknown harness {name!r}; known: {sorted(HARNESSES)}") from None
    return harness.configured(policy)


__all__ = [
    "AGENT_HARNESSES",
    "HARNESSES",
    "AgentHarness",
    "AutofixHarness",
    "HarnessOutputError",
    "Usage",
    "harness_for",
]
