"""The SandboxOperator keeps its ticket's lease while a real container runs, and stops the run
when the lease is lost (real Docker engine, real SQLite Triloop database)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest
from sqlalchemy import select
from triloop.bootstrap import App
from triloop.janitor.service import reap_leases
from triloop.store import tickets as ticket_store
from triloop.store.leases import TicketLease
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, Ticket
from triloop_sandbox import SandboxOperator
from triloop_sandbox.lease import SandboxLeaseLost

from tests.support.rows import add_ticket

pytestmark = pytest.mark.docker

TICKET = "T-SANDBOX-LEASE"
LEASE_S = 3  # renewed every second; the runs below last longer than one lease
JANITOR = Actor(name="test:janitor", dag_id="triloop_janitor", run_id="j-1")


@pytest.fixture
def run_id() -> str:
    return f"lease-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def context(run_id: str) -> dict[str, Any]:
    """What the operator reads from an Airflow task context: the task instance's ids."""
    ti = SimpleNamespace(
        dag_id="triloop_execution",
        run_id=run_id,
        task_id="ticket.run_harness",
        try_number=1,
        map_index=0,
    )
    return {"ti": ti, "run_id": run_id}


@pytest.fixture
def claimed(app: App, context: dict[str, Any]) -> datetime:
    """TICKET claimed by the context's DAG run for LEASE_S seconds; returns the expiry."""
    add_ticket(app, TICKET)
    with app.uow() as session:
        actor = Actor.from_airflow_context(context)
        [ticket] = ticket_store.claim_ready(session, actor, limit=1, lease_seconds=LEASE_S)
        assert ticket.lease_expires_at is not None
        return ticket.lease_expires_at.replace(tzinfo=UTC)


@pytest.fixture
def operator_for(
    app: App, tmp_path: Path, out_dir: Path, sandbox_image: str
) -> Callable[..., SandboxOperator]:
    workspace = tmp_path / "ws"
    workspace.mkdir()

    def lease(ticket_id: str, context: Any) -> TicketLease:
        return TicketLease(app, ticket_id, Actor.from_airflow_context(context), LEASE_S)

    def build(seconds: int) -> SandboxOperator:
        return SandboxOperator(
            task_id="ticket.run_harness",
            workspace=str(workspace),
            output_dir=str(out_dir),
            workspace_root=str(tmp_path),
            image=sandbox_image,
            entrypoint=["sleep"],
            command=[str(seconds)],
            ticket_id=TICKET,
            lease=lease,
        )

    return build


def _containers(client: docker.DockerClient, run_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"io.triloop.run_id={run_id}"})


def _lease(app: App) -> tuple[str, str | None, datetime]:
    with app.uow() as session:
        ticket = session.get_one(Ticket, TICKET)
        assert ticket.lease_expires_at is not None
        return ticket.state, ticket.lease_owner, ticket.lease_expires_at.replace(tzinfo=UTC)


def test_a_run_longer_than_its_lease_keeps_it(
    app: App,
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    context: dict[str, Any],
    claimed: datetime,
    run_id: str,
) -> None:
    operator_for(2 * LEASE_S + 1).execute(context)
    assert datetime.now(UTC) > claimed, "the run should have outlived the claim's lease"
    assert reap_leases(app, JANITOR) == []
    state, owner, expires = _lease(app)
    assert (state, owner) == ("claimed", f"triloop_execution/{run_id}")
    assert expires > claimed
    assert _containers(docker_client, run_id) == []


def test_a_lease_lost_mid_run_kills_the_container_and_fails_the_task(
    app: App,
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    context: dict[str, Any],
    claimed: datetime,
    run_id: str,
) -> None:
    seen: list[str] = []

    def janitor_takes_the_ticket() -> None:
        deadline = time.monotonic() + 60
        while not (found := _containers(docker_client, run_id)) and time.monotonic() < deadline:
            time.sleep(0.1)
        seen.extend(c.name for c in found)
        reap_leases(app, JANITOR, now=datetime.now(UTC) + timedelta(hours=1))

    thief = threading.Thread(target=janitor_takes_the_ticket, daemon=True)
    thief.start()
    started = time.monotonic()
    with pytest.raises(SandboxLeaseLost, match=f"lost its lease on ticket {TICKET}") as caught:
        operator_for(300).execute(context)
    thief.join(timeout=10)
    assert seen, "the sandbox container never appeared"
    assert time.monotonic() - started < 60
    assert caught.value.container_id and caught.value.owner == f"triloop_execution/{run_id}"
    assert _containers(docker_client, run_id) == []
    with app.uow() as session:
        lost = session.scalars(select(LedgerEntry).where(LedgerEntry.action == "lease.lost")).one()
    assert lost.payload["state"] == "ready" and lost.payload["owner"].endswith(run_id)


def test_a_lost_lease_starts_no_container(
    app: App,
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    context: dict[str, Any],
    claimed: datetime,
    run_id: str,
) -> None:
    """A retried harness task whose ticket the janitor took back meanwhile starts nothing."""
    assert reap_leases(app, JANITOR, now=claimed + timedelta(seconds=1)) == [TICKET]
    with pytest.raises(SandboxLeaseLost, match="no container was started"):
        operator_for(300).execute(context)
    assert _containers(docker_client, run_id) == []
