"""The optional LLM reviewer in governance (``reviewer:`` in the policy), off by default.

An agent harness from the registry reads the pull request's diff in the sandbox, with the
merged checkout mounted read-only, and writes findings to /out/review.json. A finding whose
severity is in ``block_on`` fails the ``llm-review`` check and so blocks the pull request; a
green review never stands in for the deterministic checks, which a merge always needs.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from triloop.domain.contracts import Budget, Severity

SEVERITIES: tuple[str, ...] = get_args(Severity)


class ReviewerPolicy(BaseModel):
    """Which agent harness reviews pull requests, what blocks, and what one review may spend."""

    model_config = ConfigDict(extra="forbid")
    harness: str | None = Field(
        default=None,
        description="Agent harness (e.g. mini-swe-agent, claude-code) that reviews each PR;"
        " its image, egress and key come from harnesses.<name>. None: no LLM review",
    )
    block_on: list[Severity] = Field(
        default=["high", "critical"],  # pydantic copies a mutable default per instance
        description="Finding severities that fail the llm-review check (and block the PR)",
    )
    max_findings: int = Field(
        default=100, ge=1, le=1000, description="Findings read from review.json; more is an error"
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="Tokens one review may use; None: budgets.ticket_max_tokens"
    )
    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Dollars one review may spend; None: the ticket limit"
    )
    max_runtime_s: int | None = Field(
        default=None, ge=10, description="Seconds one review may take; None: the ticket limit"
    )

    @field_validator("harness")
    @classmethod
    def _agent_harness(cls, name: str | None) -> str | None:
        if name is None:
            return None
        # The registry imports the policy module: read it when a policy is validated.
        from triloop.execution.harnesses import AGENT_HARNESSES, HARNESSES

        if name not in HARNESSES:
            raise ValueError(f"unknown harness {name!r}; known: {sorted(HARNESSES)}")
        if name not in AGENT_HARNESSES:
            raise ValueError(
                f"harness {name!r} cannot review: it runs no model; use an agent harness,"
                f" one of {sorted(AGENT_HARNESSES)}"
            )
        return name

    @field_validator("block_on")
    @classmethod
    def _some_severity(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(
                f"block_on must name at least one severity of {list(SEVERITIES)}; a reviewer"
                " that can never block adds nothing but evidence"
            )
        return sorted(set(value), key=SEVERITIES.index)

    @property
    def enabled(self) -> bool:
        return self.harness is not None

    def budget(self, base: Budget) -> Budget:
        """One review's limits: this section's, else ``base`` (the per-ticket ones)."""
        return Budget(
            max_tokens=self.max_tokens or base.max_tokens,
            max_cost_usd=self.max_cost_usd or base.max_cost_usd,
            max_runtime_s=self.max_runtime_s or base.max_runtime_s,
        )
