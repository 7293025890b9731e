"""Finding and removing sandbox containers the janitor is responsible for (by label)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from docker.errors import APIError

log = logging.getLogger(__name__)
SANDBOX_LABEL = "io.triloop.sandbox"
TICKET_LABEL = "io.triloop.ticket_id"
Orphaned = Callable[[Mapping[str, str]], bool]
"""Given a running sandbox's labels: did the run it belongs to lose its work (see service)?"""


def sandboxes(client: Any, *, running_only: bool = False) -> list[Any]:
    """Every container labelled as a Triloop sandbox (``docker ps -a --filter label=...``)."""
    filters: dict[str, Any] = {"label": f"{SANDBOX_LABEL}=1"}
    if running_only:
        filters["status"] = "running"
    return list(client.containers.list(all=True, filters=filters))


def run_owner(labels: Mapping[str, str]) -> str | None:
    """The DAG run (lease owner, ``dag_id/run_id``) a sandbox's labels name, if any."""
    dag_id, run_id = labels.get("io.triloop.dag_id"), labels.get("io.triloop.run_id")
    return f"{dag_id}/{run_id}" if dag_id and run_id else None


def remove_finished_sandboxes(
    client: Any,
    max_running: timedelta,
    now: datetime | None = None,
    *,
    orphaned: Orphaned | None = None,
) -> list[str]:
    """Remove exited sandbox containers, running ones older than ``max_running``, and running
    ones ``orphaned`` picks: a worker killed mid-run (SIGKILL, a lost node) leaves its
    container running with nobody waiting for it.

    ``client`` is a ``docker.DockerClient``; passing it in keeps this module free of I/O setup.
    """
    moment = now or datetime.now(UTC)
    removed = []
    for container in sandboxes(client):
        wanted = container.status == "running" and not _overdue(container, moment, max_running)
        if wanted and not (orphaned is not None and orphaned(container.labels or {})):
            continue
        try:
            container.remove(force=True)
        except APIError as exc:  # removed meanwhile (its operator finished, a parallel janitor)
            if exc.status_code not in (404, 409):
                raise
            continue
        removed.append(container.name)
        log.info("removed sandbox container %s (%s)", container.name, container.status)
    return removed


def _overdue(container: Any, moment: datetime, max_running: timedelta) -> bool:
    started = container.attrs.get("State", {}).get("StartedAt", "")
    if not started:
        return False
    began = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
    return moment - began >= max_running
