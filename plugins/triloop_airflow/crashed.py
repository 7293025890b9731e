"""Which check sandboxes of one pull request crashed: the evidence governance's decide gets.

A sandbox task fails when its container errs, the harness crashes, the kernel kills it (OOM) or
its wall-clock limit stops it. ``decide`` still runs (its trigger rule is all_done) and records
an ``error`` check naming the task and its log (triloop.governance.bad_input.apply_crashes), so
the PR never stays in review for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "pull_request"
SANDBOX_TASKS = (
    "analyze_base",
    "analyze_merged",
    "tests_base",
    "run_tests",
    "tests_guard",
    "reproduce_autofix",
    "llm_review",
)
CRASHED = frozenset({"failed", "upstream_failed"})
"""upstream_failed: the sandbox never ran, its own preparation (prepare_llm_review) failed."""


def crashed_sandboxes(context: Mapping[str, Any]) -> dict[str, str]:
    """{sandbox task id: its log URL} for this map index's sandboxes that did not finish."""
    ti = context["ti"]
    task_ids = [f"{GROUP}.{name}" for name in SANDBOX_TASKS]
    states = ti.get_task_states(
        dag_id=ti.dag_id, map_index=ti.map_index, task_ids=task_ids, run_ids=[ti.run_id]
    ).get(ti.run_id, {})
    own = ti.log_url.split("?", 1)[0]  # .../tasks/<this task>/mapped/<index>
    crashed = {}
    for task_id in task_ids:
        state = states.get(f"{task_id}_{ti.map_index}", states.get(task_id))
        if state in CRASHED:
            crashed[task_id] = own.replace(f"/tasks/{ti.task_id}", f"/tasks/{task_id}", 1)
    return crashed


def crash_causes(context: Mapping[str, Any], crashed: Mapping[str, str]) -> dict[str, str]:
    """{crashed sandbox task id: why it failed}, as SandboxOperator left it in XCom (a budget,
    a limit, an exit code; triloop_sandbox.exceptions.note_failure). Tasks that left none are
    not listed."""
    from triloop_sandbox.exceptions import FAILURE_KEY

    ti = context["ti"]
    causes = {}
    for task_id in crashed:
        cause = ti.xcom_pull(task_ids=task_id, map_indexes=ti.map_index, key=FAILURE_KEY)
        if isinstance(cause, str) and cause:
            causes[task_id] = cause
    return causes


def require_review(context: Mapping[str, Any], review: dict[str, Any] | None) -> dict[str, Any]:
    """``review`` (prepare_review's output); without it, skip if prepare_review was skipped (the
    PR no longer merges) and fail if it failed: there is nothing to decide."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    if review:
        return review
    ti = context["ti"]
    task_id = f"{GROUP}.prepare_review"
    states = ti.get_task_states(
        dag_id=ti.dag_id, map_index=ti.map_index, task_ids=[task_id], run_ids=[ti.run_id]
    ).get(ti.run_id, {})
    state = states.get(f"{task_id}_{ti.map_index}", states.get(task_id))
    if state in CRASHED:
        raise AirflowFailException(f"{task_id} {state}: nothing was checked, nothing to decide")
    raise AirflowSkipException(f"{task_id} is {state}: nothing was checked")
