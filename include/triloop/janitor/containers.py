"""Finding and removing sandbox containers the janitor is responsible for (by label)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)
SANDBOX_LABEL = "io.triloop.sandbox"


def remove_finished_sandboxes(
    client: Any, max_running: timedelta, now: datetime | None = None
) -> list[str]:
    """Remove exited sandbox containers, and running ones older than ``max_running``.

    ``client`` is a ``docker.DockerClient``; passing it in keeps this module free of I/O setup.
    """
    moment = now or datetime.now(UTC)
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{SANDBOX_LABEL}=1"}):
        started = container.attrs.get("State", {}).get("StartedAt", "")
        running = container.status == "running"
        if running and started:
            began = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
            if moment - began < max_running:
                continue
        container.remove(force=True)
        removed.append(container.name)
        log.info("removed sandbox container %s (%s)", container.name, container.status)
    return removed
