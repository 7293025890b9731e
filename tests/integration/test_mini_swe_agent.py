"""A real agent client from PyPI, end to end: mini-swe-agent in the sandbox makes the PR's patch.

mini-swe-agent 2.4.6 (litellm, the openai client) runs in the ``triloop-sandbox-mini-swe-agent``
image under SandboxOperator with an egress allowlist. Its only model is
tests/support/model_server.py, a scripted OpenAI-compatible server that the test starts as a
container on a network the test creates (the proxy's upstream; internal, so nothing on it
reaches anything else). What the scripted model asks for, mini really does in /workspace; the
patch the sandbox leaves goes through Triloop's own prepare/finish into the local forge.

- the edit script: one real edit (a bash tool call running sed on the ticket's file), then
  mini-swe-agent's submit command; the PR's diff is that edit.
- the forever script: never submits; the egress proxy answers 429 once the ticket's token
  budget is spent, mini stops, and the ticket waits in needs_human with the limit named, no PR.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlalchemy import select
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import HarnessRequest
from triloop.domain.policy import HarnessPolicy
from triloop.execution.harnesses import harness_for
from triloop.execution.harnesses.settings import sandbox_settings
from triloop.execution.service import claim, finish, prepare
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, PullRequest, Repo, Ticket
from triloop_sandbox import SandboxOperator

from tests.support.rows import host_scan
from tests.support.scripted_model import API_KEY, MODEL_PORT, SUBMIT, model_server, served

pytestmark = pytest.mark.docker

HARNESS = "mini-swe-agent"
# The F401 ticket of the sample repository: `os` and `sys` imported but unused.
TICKET_FILE = "inventory/models.py"
EDIT = f"sed -i -e '/^import os$/d' -e '/^import sys$/d' {TICKET_FILE}"


def _actor(run: str, task: str) -> Actor:
    return Actor(name=f"test:{task}", dag_id="triloop_test", run_id=run, task_id=task, try_number=1)


@pytest.fixture
def upstream(docker_client: docker.DockerClient) -> Iterator[str]:
    """An internal network of the test's own: the model server and the egress proxy meet here."""
    name = f"triloop-test-upstream-{uuid.uuid4().hex[:10]}"
    network = docker_client.networks.create(
        name, driver="bridge", internal=True, labels={"io.triloop.test": "mini-swe-agent"}
    )
    try:
        yield name
    finally:
        network.reload()
        for container in network.containers:
            container.remove(force=True)
        network.remove()


def configure(app: App, image: str, model_host: str, *, max_tokens: int | None = None) -> App:
    """The factory with harnesses.mini-swe-agent pointed at the scripted model."""
    entry = HarnessPolicy(
        image=image,
        egress=[f"{model_host}:{MODEL_PORT}"],
        api_base=f"http://{model_host}:{MODEL_PORT}/v1",
        model="openai/scripted-model",
        api_key_env="OPENAI_API_KEY",
    )
    update: dict[str, Any] = {
        "harnesses": {**app.policy.harnesses, HARNESS: entry},
        # Discovery sends what autofix may not fix (here F401) to the agent harness.
        "agent_harness": HARNESS,
        "autofix_rules": [rule for rule in app.policy.autofix_rules if rule != "F401"],
    }
    if max_tokens is not None:
        update["budgets"] = app.policy.budgets.model_copy(update={"ticket_max_tokens": max_tokens})
    return dataclasses.replace(app, policy=app.policy.model_copy(update=update))


def agent_ticket(app: App) -> tuple[HarnessRequest, str]:
    """Onboard the sample and scan it (its F401 ticket goes to mini-swe-agent), claim, prepare."""
    repo = onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r", "onboard"))
    with app.uow() as session:
        ref = repo_ref(session.get_one(Repo, repo.id))
    host_scan(app, ref, _actor("scan", "ingest"))
    with app.uow() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.rule == "F401", Ticket.path == TICKET_FILE)
        ).one()
        assert (ticket.harness, ticket.state) == (HARNESS, "ready")
        ticket_id = ticket.id
    claims = {c.ticket_id: c for c in claim(app, _actor("exec", "claim"))}
    assert ticket_id in claims, f"{ticket_id} was not claimed: {sorted(claims)}"
    return prepare(app, claims[ticket_id], _actor("exec", "prepare")), repo.remote


def run_in_sandbox(app: App, request: HarnessRequest, upstream: str) -> None:
    """The harness's command in the sandbox as the execution DAG runs it: image, limits,
    allowlist and key variable from the policy (sandbox_settings), egress via the proxy."""
    settings = sandbox_settings(app.policy, request)
    assert settings.api_key_env is not None
    operator = SandboxOperator(
        task_id="run_harness",
        image=settings.image,
        command=harness_for(request.harness).command(request),
        workspace=request.workspace,
        workspace_readonly=False,
        output_dir=request.output_dir,
        workspace_root=str(app.settings.workspaces_dir),
        ticket_id=request.ticket_id,
        wall_clock_limit_s=settings.wall_clock_limit_s,
        private_environment={settings.api_key_env: API_KEY},
        egress_allowlist=settings.egress_allowlist,
        egress_upstream_network=upstream,
        egress_max_tokens=request.budget.max_tokens,
    )
    operator.execute({"run_id": f"mini-{uuid.uuid4().hex[:8]}"})


def git_out(*args: str, cwd: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def test_mini_swe_agent_edit_becomes_the_pull_request(
    app: App, docker_client: docker.DockerClient, mini_swe_agent_image: str, upstream: str
) -> None:
    with model_server(
        docker_client, mini_swe_agent_image, upstream, "--script", "edit", "--edit-command", EDIT
    ) as (host, server):
        app = configure(app, mini_swe_agent_image, host)
        request, remote = agent_ticket(app)
        started = time.monotonic()
        run_in_sandbox(app, request, upstream)
        elapsed = time.monotonic() - started
        requests = served(server)
    out = Path(request.output_dir)
    trajectory = json.loads((out / "agent.traj.json").read_text())
    assert trajectory["info"]["exit_status"] == "Submitted", trajectory["messages"][-1]
    assert trajectory["info"]["mini_version"] == "2.4.6"
    # The scripted model was asked twice (edit, submit), each time with the key, via the proxy.
    assert [r["status"] for r in requests] == [200, 200]
    assert [r["command"] for r in requests] == [EDIT, SUBMIT]
    meter = json.loads((out / "egress" / "usage.json").read_text())
    assert meter["tokens"] == sum(r["total_tokens"] for r in requests) > 0
    assert meter["over_budget"] == ""

    pr = finish(app, request, _actor("exec", "open_pr"))
    assert pr is not None
    diff = git_out("diff", request.base_sha, pr.head_sha, cwd=remote)
    assert git_out("diff", "--name-only", request.base_sha, pr.head_sha, cwd=remote).split() == [
        TICKET_FILE
    ]
    removed = [ln for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    assert removed == ["-import os", "-import sys"]
    assert not any(ln.startswith("+") and not ln.startswith("+++") for ln in diff.splitlines())
    with app.uow() as session:
        ticket = session.get_one(Ticket, request.ticket_id)
        assert ticket.state == "pr_open"
        row = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.ticket_id == ticket.id, LedgerEntry.action == "harness.result"
            )
        ).one()
        assert row.outcome == "changed" and row.tokens == meter["tokens"]
        assert "mini-swe-agent Submitted" in (row.payload or {}).get("summary", "")
    print(f"mini-swe-agent edit run: {elapsed:.1f}s in the sandbox, {meter['tokens']} tokens")


def test_a_model_that_keeps_going_is_stopped_at_the_token_limit(
    app: App, docker_client: docker.DockerClient, mini_swe_agent_image: str, upstream: str
) -> None:
    limit = 6000
    with model_server(docker_client, mini_swe_agent_image, upstream, "--script", "forever") as (
        host,
        server,
    ):
        app = configure(app, mini_swe_agent_image, host, max_tokens=limit)
        request, remote = agent_ticket(app)
        assert request.budget.max_tokens == limit
        started = time.monotonic()
        # mini exits 1 on the proxy's 429, but the sandbox reports a budget stop, not a
        # failure: the task succeeds, so Airflow does not retry it and spend the budget again.
        run_in_sandbox(app, request, upstream)
        elapsed = time.monotonic() - started
        requests = served(server)
    out = Path(request.output_dir)
    meter = json.loads((out / "egress" / "usage.json").read_text())
    # The model never stopped asking; the proxy let requests through until the budget was
    # spent and refused the next one, so the server saw only the metered ones.
    assert len(requests) >= 2 and all(r["status"] == 200 for r in requests)
    assert meter["tokens"] == sum(r["total_tokens"] for r in requests) >= limit
    assert meter["tokens"] - requests[-1]["total_tokens"] < limit
    assert meter["over_budget"] == "tokens"
    trajectory = json.loads((out / "agent.traj.json").read_text())
    assert trajectory["info"]["exit_status"] == "RateLimitError"
    result = json.loads((out / "result.json").read_text())
    assert (result["status"], result["over_budget"], result["exit_code"]) == (
        "over_budget",
        "tokens",
        1,
    )
    assert elapsed < request.budget.max_runtime_s  # stopped by tokens, not by the clock

    assert finish(app, request, _actor("exec", "open_pr")) is None
    with app.uow() as session:
        ticket = session.get_one(Ticket, request.ticket_id)
        assert ticket.state == "needs_human"
        assert "tokens" in (ticket.last_error or "") and str(limit) in (ticket.last_error or "")
        assert session.scalars(select(PullRequest)).all() == []
    heads = git_out("ls-remote", "--heads", remote, cwd=str(out))
    assert [line.split()[1] for line in heads.splitlines()] == ["refs/heads/main"]
    print(f"mini-swe-agent forever run: stopped after {len(requests)} answers, {elapsed:.1f}s")
