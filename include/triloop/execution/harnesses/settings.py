"""How the sandbox runs one harness: image, wall-clock limit, egress allowlist, API key source.

Everything here is plain data for the DAG (XCom-sized, no secrets): the API key travels as the
NAME of an Airflow connection and of the variable it is handed in as; the task that starts the
sandbox reads the connection at run time into ``private_environment``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from triloop.domain.contracts import HarnessRequest
from triloop.domain.policy import Policy
from triloop.execution.harnesses import harness_for
from triloop.execution.harnesses.base import AgentHarness

AGENT_MARGIN_S = 120
"""Seconds the container outlives the agent's own runtime limit (diff, result, cleanup)."""


class SandboxSettings(BaseModel):
    image: str | None = Field(description="Sandbox image; None: the operator's default")
    wall_clock_limit_s: int = Field(ge=1, description="Container wall-clock limit")
    egress_allowlist: list[str] = Field(default_factory=list, description="host:port pairs")
    api_key_conn_id: str | None = Field(default=None, description="Connection holding the key")
    api_key_env: str | None = Field(default=None, description="Variable the key is handed in as")


def variant_image(name: str) -> str:
    """The image ``scripts/build_sandbox_image.py --harness NAME`` builds."""
    return f"triloop-sandbox-{name}:latest"


def sandbox_settings(policy: Policy, request: HarnessRequest) -> SandboxSettings:
    entry = policy.harnesses.get(request.harness)
    harness = harness_for(request.harness, entry)
    if not isinstance(harness, AgentHarness):
        return SandboxSettings(
            image=entry.image if entry else None, wall_clock_limit_s=policy.sandbox_wall_clock_s
        )
    return SandboxSettings(
        image=(entry.image if entry else None) or variant_image(harness.name),
        wall_clock_limit_s=request.budget.max_runtime_s + AGENT_MARGIN_S,
        egress_allowlist=list(entry.egress) if entry else [],
        api_key_conn_id=entry.api_key_conn_id if entry else None,
        api_key_env=harness.api_key_env,
    )
