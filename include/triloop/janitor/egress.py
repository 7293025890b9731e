"""Finding and removing egress proxies and networks whose sandbox run is over (by label)."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from docker.errors import APIError

from triloop.janitor.containers import sandboxes

log = logging.getLogger(__name__)
EGRESS_LABEL = "io.triloop.egress"
NETWORK_LABEL = "io.triloop.egress.network"  # on a proxy: the internal network it serves
GRACE = timedelta(minutes=5)
_CREATED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def remove_finished_egress(
    client: Any,
    now: datetime | None = None,
    grace: timedelta = GRACE,
    *,
    labels: list[str] | None = None,
) -> list[str]:
    """Remove egress proxies and internal networks that no running sandbox uses any more.

    An operator tears its gateway down when its run ends; a worker killed mid-run leaves it
    behind. A network is in use while a running sandbox container is attached to it; a gateway
    younger than ``grace`` is left alone, since its sandbox may be about to start. ``client``
    is a ``docker.DockerClient``; ``labels`` narrows the search (``key=value`` filters, e.g.
    one run's). Returns the names of what was removed.
    """
    moment = now or datetime.now(UTC)
    running = {c.id for c in sandboxes(client, running_only=True)}
    wanted = {"label": [f"{EGRESS_LABEL}=1", *(labels or [])]}
    networks = client.networks.list(filters=wanted, greedy=True)
    busy = {n.name for n in networks if running & set(n.attrs.get("Containers") or {})}
    removed = []
    for proxy in client.containers.list(all=True, filters=wanted):
        served = (proxy.labels or {}).get(NETWORK_LABEL)
        if served in busy or not _older(proxy.attrs.get("Created"), moment, grace):
            continue
        if _gone(lambda p=proxy: p.remove(force=True)):
            continue
        removed.append(proxy.name)
    for network in networks:
        if network.name in busy or not _older(network.attrs.get("Created"), moment, grace):
            continue
        for container_id in network.attrs.get("Containers") or {}:
            _gone(lambda n=network, c=container_id: n.disconnect(c, force=True))
        if _gone(network.remove):
            continue
        removed.append(network.name)
    if removed:
        log.info("removed egress proxies and networks: %s", ", ".join(removed))
    return removed


def _gone(action: Any) -> bool:
    """Run a removal; True when its object was already gone (removed meanwhile)."""
    try:
        action()
    except APIError as exc:
        if exc.status_code not in (404, 409):
            raise
        return True
    return False


def _older(created: str | None, moment: datetime, grace: timedelta) -> bool:
    match = _CREATED.match(created or "")
    if match is None:
        return False  # unknown age: leave it for the next round
    offset = (match.group(2) or "Z").replace("Z", "+00:00")
    return moment - datetime.fromisoformat(match.group(1) + offset) >= grace
