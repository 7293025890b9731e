"""Harness adapters: how to ask the sandbox for a patch, and how to read what it said.

The adapters live in ``triloop.execution.harnesses`` (one module per harness); this module
keeps the names the rest of the control plane imports.
"""

from __future__ import annotations

from triloop.execution.harnesses import HARNESSES, harness_for
from triloop.execution.harnesses.autofix import AutofixHarness
from triloop.execution.harnesses.base import HarnessOutputError

__all__ = ["HARNESSES", "AutofixHarness", "HarnessOutputError", "harness_for"]
