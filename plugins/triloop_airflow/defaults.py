"""Shared DAG settings: owner, retries per kind of task, and why each is what it is."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

START_DATE = datetime(2026, 1, 1)
OWNER = "triloop"
TAGS = ["triloop"]

DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    # Control-plane tasks touch the Triloop DB and local git: transient failures (a locked
    # SQLite file, a busy disk) clear up within seconds, so two quick retries with backoff.
    "retries": 2,
    "retry_delay": timedelta(seconds=15),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}

# Sandbox containers: one retry covers a container that failed to start; a harness that ran
# and failed is recorded on the ticket and retried by the lifecycle (attempts), not by Airflow.
SANDBOX_ARGS: dict[str, Any] = {
    "retries": 1,
    "retry_delay": timedelta(seconds=30),
    "pool": "triloop_sandbox",
}

# Forge calls (push, open PR, merge) are idempotent; a forge outage deserves more patience.
FORGE_ARGS: dict[str, Any] = {
    "retries": 4,
    "retry_delay": timedelta(seconds=30),
    "pool": "triloop_forge",
}


# What every Triloop DAG shares; each DAG adds its id, schedule, tags and concurrency.
DAG_KWARGS: dict[str, Any] = {
    "start_date": START_DATE,
    "catchup": False,
    "default_args": DEFAULT_ARGS,
}
