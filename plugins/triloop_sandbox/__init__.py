"""Triloop's sandbox operator: DockerOperator hardened by default (see DESIGN.md, Sandbox model)."""

from __future__ import annotations

from triloop_sandbox.exceptions import SandboxDiskBudgetExceeded, SandboxPolicyError, SandboxTimeout
from triloop_sandbox.operator import SandboxOperator

__all__ = ["SandboxDiskBudgetExceeded", "SandboxOperator", "SandboxPolicyError", "SandboxTimeout"]
