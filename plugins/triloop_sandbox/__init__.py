"""Triloop's sandbox operator: DockerOperator hardened by default (see DESIGN.md, Sandbox model)."""

from __future__ import annotations

from triloop_sandbox.exceptions import SandboxPolicyError, SandboxTimeout
from triloop_sandbox.operator import SandboxOperator

__all__ = ["SandboxOperator", "SandboxPolicyError", "SandboxTimeout"]
