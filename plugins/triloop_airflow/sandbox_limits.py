"""The policy's sandbox budgets, handed to every SandboxOperator as a factory.

``SANDBOX_ARGS`` (triloop_airflow.defaults) passes :func:`policy_resources` as
``sandbox_resources``; the operator calls it when its task runs, so the policy file is read then
(an edit applies from the next sandbox on), never while a DAG file is parsed. A malformed
policy fails that task with PolicyError naming the file and the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triloop.domain.sandbox_resources import SandboxResources


def policy_resources() -> SandboxResources:
    """``sandbox_resources`` of the policy file in effect (TRILOOP_POLICY_PATH or the default)."""
    from triloop.config import load_settings
    from triloop.domain.policy import load_policy

    return load_policy(load_settings().policy_path).sandbox_resources
