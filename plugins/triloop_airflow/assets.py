"""The assets every Triloop producer and consumer imports (one home, so names never drift)."""

from __future__ import annotations

from airflow.sdk import Asset

TICKETS = Asset("triloop://tickets", extra={"producer": "triloop_discovery"})
PULL_REQUESTS = Asset("triloop://pull_requests", extra={"producer": "triloop_execution"})
MERGES = Asset("triloop://merges", extra={"producer": "triloop_governance"})
