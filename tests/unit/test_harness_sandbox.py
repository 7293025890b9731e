"""apply_harness_settings: a ticket's limits and egress reach its sandbox just before it starts."""

from __future__ import annotations

from typing import Any

import pytest
from triloop_airflow.harness_sandbox import apply_harness_settings
from triloop_sandbox import SandboxOperator
from triloop_sandbox.exceptions import SandboxPolicyError


class _TaskInstance:
    map_index = 3

    def __init__(self, prepared: dict[str, Any]) -> None:
        self.prepared = prepared
        self.pulled: list[tuple[str, int]] = []

    def xcom_pull(self, *, task_ids: str, map_indexes: int) -> dict[str, Any]:
        self.pulled.append((task_ids, map_indexes))
        return self.prepared


def _prepared(**fields: Any) -> dict[str, Any]:
    budget = {"max_tokens": 1234, "max_cost_usd": 1.0, "max_runtime_s": 60}
    return {"wall_clock_limit_s": 180, "budget": budget, **fields}


def _apply(prepared: dict[str, Any]) -> SandboxOperator:
    task = SandboxOperator(task_id="run_harness", workspace="/w", output_dir="/o", command=["x"])
    ti = _TaskInstance(prepared)
    apply_harness_settings({"ti": ti, "task": task})
    assert ti.pulled == [("ticket.prepare_workspace", 3)]
    return task


def test_egress_harness_gets_its_allowlist_and_the_token_budget_at_the_proxy() -> None:
    task = _apply(_prepared(egress_allowlist=["model:8000"]))
    assert task.wall_clock_limit_s == 180
    assert task.egress_allowlist == ["model:8000"]
    assert task.egress_max_tokens == 1234
    assert task.private_environment == {}


def test_harness_without_egress_stays_off_the_network() -> None:
    task = _apply(_prepared(egress_allowlist=[]))
    assert not task.egress_allowlist and task.egress_max_tokens is None


def test_bad_egress_entry_is_refused_before_anything_starts() -> None:
    with pytest.raises(SandboxPolicyError, match="egress_allowlist entry 'model'"):
        _apply(_prepared(egress_allowlist=["model"]))


def test_the_api_key_set_at_run_time_reaches_the_container_environment_only() -> None:
    task = _apply(_prepared(egress_allowlist=["model:8000"]))
    task.private_environment = {"OPENAI_API_KEY": "sk-test"}
    # What the provider passes to create_container, and what it renders (never the key).
    assert task._private_environment == {"OPENAI_API_KEY": "sk-test"}
    assert "sk-test" not in repr(task.environment)
    assert "private_environment" not in task.template_fields
