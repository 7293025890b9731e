"""A worker killed with SIGKILL mid-sandbox-run: its lease expires, the janitor takes the ticket
back and removes the orphaned container, and the next attempt opens exactly one pull request.

The worker (tests/integration/crash_worker.py) is a real process running the execution code
path with a real sandbox container; nothing in it knows it is about to be killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.execution.harness import harness_for
from triloop.execution.service import claim, finish, prepare
from triloop.janitor.service import reap_leases, remove_orphaned_sandboxes
from triloop.onboarding import onboard
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, PullRequest, Ticket
from triloop_airflow.leases import ticket_lease
from triloop_sandbox import SandboxOperator

from tests.integration.crash_worker import task_context
from tests.support.rows import host_scan

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
RUFF = str(Path(sys.executable).with_name("ruff"))
JANITOR = Actor(name="test:janitor", dag_id="triloop_janitor", run_id="janitor-1")


def _git(cwd: Path, *args: str) -> str:
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True).stdout


def _one_ticket(app: App, tmp_path: Path) -> tuple[str, str]:
    """Onboard a one-file repo (a unique name, so unique ticket ids) and scan it on the host;
    return the ticket's id and the repo's forge remote."""
    src = tmp_path / "upstream"
    src.mkdir()
    (src / "app.py").write_text("import os\n\n\ndef main() -> int:\n    return 1\n")
    _git(src, "init", "-q", "-b", "main")
    _git(src, "add", "-A")
    _git(src, "commit", "-q", "-m", "init")
    repo = onboard(app, str(src), name=f"crash-{uuid.uuid4().hex[:8]}", actor=JANITOR)
    scanner = Actor(name="test:scan", dag_id="triloop_discovery", run_id="scan-1")
    [ticket_id] = host_scan(app, repo_ref(repo), scanner)
    return ticket_id, repo.remote


@pytest.fixture
def worker_env(app: App, sandbox_image: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of an Airflow worker of this factory (inherited by the crash worker)."""
    conn = {"conn_type": "generic", "extra": {"sqlalchemy_url": app.settings.db_url}}
    monkeypatch.setenv("AIRFLOW_CONN_TRILOOP_DB", json.dumps(conn))
    monkeypatch.setenv("TRILOOP_SANDBOX_IMAGE", sandbox_image)
    return dict(os.environ)


@pytest.fixture
def ticket_containers(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Ticket ids whose sandbox containers the test removes, whatever happens."""
    tickets: list[str] = []
    yield tickets
    for ticket_id in tickets:
        for container in _sandboxes(docker_client, ticket_id):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def _sandboxes(client: docker.DockerClient, ticket_id: str) -> list[Any]:
    """``docker ps -a --filter label=io.triloop.ticket_id=...``"""
    label = f"io.triloop.ticket_id={ticket_id}"
    return client.containers.list(all=True, filters={"label": label})


def _wait_for_running(client: docker.DockerClient, run_id: str, worker: Any, log: Path) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert worker.poll() is None, f"the worker died early:\n{log.read_text()[-3000:]}"
        found = client.containers.list(filters={"label": f"io.triloop.run_id={run_id}"})
        if found and found[0].status == "running":
            return found[0]
        time.sleep(0.2)
    pytest.fail("the worker's sandbox container never started")


def test_a_worker_killed_mid_run_is_recovered_exactly_once(
    app: App,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    worker_env: dict[str, str],
    ticket_containers: list[str],
) -> None:
    ticket_id, remote = _one_ticket(app, tmp_path)
    ticket_containers.append(ticket_id)
    crashed_run, next_run = f"crash-{uuid.uuid4().hex[:8]}", f"next-{uuid.uuid4().hex[:8]}"
    crashed_owner = f"triloop_execution/{crashed_run}"

    # 1. A worker claims the ticket and runs its harness; SIGKILL lands mid-run.
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_worker", crashed_run],
            cwd=ROOT,
            env=worker_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        orphan = _wait_for_running(docker_client, crashed_run, worker, log)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
    orphan.reload()
    assert orphan.status == "running", "a killed worker's container keeps running"
    assert orphan.labels["io.triloop.ticket_id"] == ticket_id

    # 2. The lease is still the dead run's until it expires; the janitor leaves it alone so far.
    with app.uow() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert (ticket.state, ticket.lease_owner) == ("running", crashed_owner)
        expires = ticket.lease_expires_at
        assert expires is not None
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        assert ticket_store.expired_leases(session, now=expires - timedelta(seconds=1)) == []
    assert orphan.name not in remove_orphaned_sandboxes(app, JANITOR, docker_client)

    # 3. Nobody renews it: at its expiry the janitor requeues the ticket and, by its labels,
    #    finds and removes the orphaned container.
    after = expires + timedelta(seconds=1)
    assert reap_leases(app, JANITOR, now=after) == [ticket_id]
    assert orphan.name in remove_orphaned_sandboxes(app, JANITOR, docker_client)
    assert _sandboxes(docker_client, ticket_id) == []

    # 4. The next execution run completes the ticket; a cleared and re-run PR task adds nothing.
    [second] = claim(app, Actor.from_airflow_context(task_context(next_run, "claim_tickets")))
    assert (second.ticket_id, second.attempt) == (ticket_id, 2)
    ctx = task_context(next_run, "ticket.prepare_workspace", 0)
    request = prepare(app, second, Actor.from_airflow_context(ctx))
    SandboxOperator(
        task_id="ticket.run_harness",
        workspace=request.workspace,
        output_dir=request.output_dir,
        command=harness_for(request.harness).command(request),
        ticket_id=ticket_id,
        lease=ticket_lease,
        workspace_readonly=False,
    ).execute(task_context(next_run, "ticket.run_harness", 0))
    pr_task = Actor.from_airflow_context(task_context(next_run, "ticket.open_pull_request", 0))
    pr = finish(app, request, pr_task)
    assert pr is not None and finish(app, request, pr_task) == pr

    with app.uow() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert ticket.state == "pr_open" and ticket.attempts == 2
        prs = session.scalars(select(PullRequest).where(PullRequest.ticket_id == ticket_id)).all()
        assert [(p.number, p.branch) for p in prs] == [(pr.number, pr.branch)]

        def rows(action: str) -> list[LedgerEntry]:
            query = select(LedgerEntry).where(LedgerEntry.ticket_id == ticket_id)
            return list(session.scalars(query.where(LedgerEntry.action == action)))

        assert len(rows("forge.push")) == len(rows("forge.open_pr")) == 1
        [lost] = rows("ticket.lease_expired")
        assert lost.payload["lost_by"] == crashed_owner
        removal = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.action == "janitor.remove_sandboxes")
            .order_by(LedgerEntry.id.desc())
        ).first()
        assert removal is not None
        assert removal.payload["lost_leases"] == [f"{ticket_id}@{crashed_owner}"]
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
    heads = _git(tmp_path, "ls-remote", "--heads", remote).splitlines()
    assert [line.split()[1] for line in heads] == ["refs/heads/main", f"refs/heads/{pr.branch}"]
    assert _sandboxes(docker_client, ticket_id) == []


def test_a_retried_try_removes_what_its_killed_try_left_and_nothing_else(
    docker_client: docker.DockerClient, sandbox_image: str, tmp_path: Path, out_dir: Path
) -> None:
    """When Airflow retries the harness task of a killed worker, the new try removes the
    container of the earlier try (same run, task and map index) before starting its own."""
    run_id = f"retry-{uuid.uuid4().hex[:8]}"
    base = {
        "io.triloop.sandbox": "1",
        "io.triloop.dag_id": "triloop_execution",
        "io.triloop.run_id": run_id,
        "io.triloop.task_id": "ticket.run_harness",
    }
    left = [
        docker_client.containers.run(
            sandbox_image,
            ["300"],
            entrypoint=["sleep"],
            network_mode="none",
            labels={**base, "io.triloop.try_number": "1", "io.triloop.map_index": index},
            detach=True,
        )
        for index in ("0", "1")  # the killed try of map index 0, and a sibling still running
    ]
    workspace = tmp_path / "ws"
    workspace.mkdir()
    retry = task_context(run_id, "ticket.run_harness", 0)
    retry["ti"].try_number = 2
    try:
        SandboxOperator(
            task_id="ticket.run_harness",
            workspace=str(workspace),
            output_dir=str(out_dir),
            workspace_root=str(tmp_path),
            image=sandbox_image,
            entrypoint=["true"],
        ).execute(retry)
        remaining = docker_client.containers.list(
            all=True, filters={"label": f"io.triloop.run_id={run_id}"}
        )
        assert [c.id for c in remaining] == [left[1].id]
    finally:
        for container in left:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
