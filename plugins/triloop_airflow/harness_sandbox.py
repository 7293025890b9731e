"""Run-time settings of the harness sandbox, applied just before its container starts.

``SandboxOperator`` takes ``wall_clock_limit_s`` and ``private_environment`` as plain values,
while a ticket's limits and key are only known once ``prepare_workspace`` ran. This
``pre_execute`` hook reads that task's output (the same map index) and sets them; the model API
key is read from its Airflow connection here, at run time, never at parse time, and goes only
into ``private_environment`` (never rendered, never in ``environment``).
"""

from __future__ import annotations

from typing import Any

from triloop.errors import PermanentError
from triloop_sandbox.egress import check_allowlist

PREPARE_TASK = "ticket.prepare_workspace"
REVIEW_TASK = "pull_request.prepare_llm_review"
REVIEW_PREPARE_TASK = "pull_request.prepare_review"


class HarnessKeyMissing(PermanentError):
    """The harness's API key connection does not exist or has no password."""


def apply_harness_settings(context: Any, prepare_task: str = PREPARE_TASK) -> None:
    from airflow.sdk import Connection

    ti, task = context["ti"], context["task"]
    prepared = ti.xcom_pull(task_ids=prepare_task, map_indexes=ti.map_index)
    task.wall_clock_limit_s = int(prepared["wall_clock_limit_s"])
    # Validated as __init__ validates it: a bad entry is refused before anything starts.
    task.egress_allowlist = check_allowlist(list(prepared.get("egress_allowlist") or []))
    # The proxy stops the model answering once the ticket's token budget is spent.
    tokens = int(prepared["budget"]["max_tokens"])
    task.egress_max_tokens = tokens if task.egress_allowlist else None
    conn_id, env = prepared.get("api_key_conn_id"), prepared.get("api_key_env")
    if conn_id and env:
        try:
            key = Connection.get(conn_id).password
        except Exception as exc:  # the SDK raises its own not-found error types
            raise HarnessKeyMissing(f"API key connection {conn_id!r} unavailable: {exc}") from exc
        if not key:
            raise HarnessKeyMissing(f"API key connection {conn_id!r} has no password")
        task.private_environment = {env: key}


def apply_review_settings(context: Any) -> None:
    """Governance's LLM reviewer: the same settings, from ``prepare_llm_review``'s output."""
    apply_harness_settings(context, REVIEW_TASK)


def skip_unless_autofix(context: Any) -> None:
    """Governance's autofix rerun: skipped (with the reason) for a PR no autofix harness made."""
    from airflow.sdk.exceptions import AirflowSkipException

    ti = context["ti"]
    prepared = ti.xcom_pull(task_ids=REVIEW_PREPARE_TASK, map_indexes=ti.map_index)
    if not (prepared or {}).get("reproduce_workspace"):
        raise AirflowSkipException("not an autofix pull request: there is no fix to rerun")
