"""Shared DAG settings: owner, retries per kind of task, and why each is what it is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from triloop.retry import POLICIES

from triloop_airflow.sandbox_limits import policy_resources

START_DATE = datetime(2026, 1, 1)
OWNER = "triloop"
TAGS = ["triloop"]

# Retries per kind of task, with the reason for each, live in triloop.retry.POLICIES; whether a
# failure uses them at all is decided by triloop.retry.classify (runtime.permanent_failures_
# fail_fast turns a permanent error into an immediate failure).
DEFAULT_ARGS: dict[str, Any] = {"owner": OWNER, **POLICIES["control_plane"].airflow_args()}

# The engine sandboxes run on: the Airflow connection the Variable triloop_sandbox_engine_conn_id
# names (a separate host over mutual TLS; README "A dedicated sandbox host"), or the local engine
# when it is unset or empty. A template, so the Variable is read when the task runs, never while
# the DAG is parsed; the connection itself is read by SandboxOperator at execute time.
SANDBOX_ENGINE = "{{ var.value.get('triloop_sandbox_engine_conn_id', '') }}"

SANDBOX_ARGS: dict[str, Any] = {
    **POLICIES["sandbox"].airflow_args(),
    "pool": "triloop_sandbox",
    "engine_conn_id": SANDBOX_ENGINE,
    # Disk budgets of the writable mounts, container and task log caps: the policy's
    # sandbox_resources, read when the sandbox task runs.
    "sandbox_resources": policy_resources,
}

FORGE_ARGS: dict[str, Any] = {**POLICIES["forge"].airflow_args(), "pool": "triloop_forge"}


# What every Triloop DAG shares; each DAG adds its id, schedule, tags and concurrency.
DAG_KWARGS: dict[str, Any] = {
    "start_date": START_DATE,
    "catchup": False,
    "default_args": DEFAULT_ARGS,
}
