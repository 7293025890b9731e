"""The governance DAG's optional LLM review: a read-only SandboxOperator configured like an agent
run, upstream of the decision, whose skip (no reviewer configured) does not skip the decision
(tests/e2e/test_sample_repo_loop.py runs the DAG with no reviewer: the PRs are still decided)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from triloop_airflow.harness_sandbox import apply_review_settings
from triloop_sandbox import SandboxOperator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "triloop_governance.py"))
    assert bag.import_errors == {}
    return bag.dags["triloop_governance"]


def test_the_llm_review_runs_in_a_read_only_sandbox_before_the_decision(dag: Any) -> None:
    review = dag.get_task("pull_request.llm_review")
    assert review.task_type == "SandboxOperator"
    assert review.workspace_readonly  # the reviewer must never change the repository
    assert review._pre_execute_hook is apply_review_settings  # limits, egress, key at run time
    assert review.upstream_task_ids == {"pull_request.prepare_llm_review"}
    assert dag.get_task("pull_request.prepare_llm_review").upstream_task_ids == {
        "pull_request.prepare_review"
    }
    # Like every check sandbox, it feeds decide directly, whose all_done rule makes a crash
    # evidence and lets a skipped review (none configured) through.
    decide = dag.get_task("pull_request.decide")
    assert {
        "pull_request.llm_review",
        "pull_request.analyze_base",
        "pull_request.analyze_merged",
        "pull_request.tests_base",
        "pull_request.run_tests",
        "pull_request.tests_guard",
        "pull_request.reproduce_autofix",
    } <= decide.upstream_task_ids
    assert decide.trigger_rule == "all_done"


def test_the_reviewer_sandbox_reads_its_settings_from_prepare_llm_review() -> None:
    class TaskInstance:
        map_index = 2
        pulled: list[tuple[str, int]] = []

        def xcom_pull(self, *, task_ids: str, map_indexes: int) -> dict[str, Any]:
            self.pulled.append((task_ids, map_indexes))
            budget = {"max_tokens": 4321, "max_cost_usd": 1.0, "max_runtime_s": 60}
            return {"wall_clock_limit_s": 180, "budget": budget, "egress_allowlist": ["m:8000"]}

    task = SandboxOperator(task_id="llm_review", workspace="/w", output_dir="/o", command=["x"])
    ti = TaskInstance()
    apply_review_settings({"ti": ti, "task": task})
    assert ti.pulled == [("pull_request.prepare_llm_review", 2)]
    assert (task.wall_clock_limit_s, task.egress_allowlist, task.egress_max_tokens) == (
        180,
        ["m:8000"],
        4321,
    )
