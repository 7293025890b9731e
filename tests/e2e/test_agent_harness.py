"""The execution DAG runs a real agent client: mini-swe-agent, configured only by the policy.

Nothing here calls Triloop's services directly: a policy file routes the sample's F401 ticket to
the agent (``agent_harness``, F401 off ``autofix_rules``) and configures it
(``harnesses.mini-swe-agent``: image, egress, api_base, model, api_key_conn_id), an Airflow
connection holds the model API key, and ``triloop_execution`` (dag.test) claims the ticket,
prepares its workspace, runs mini-swe-agent 2.4.6 in the sandbox behind the egress proxy (the
key read from the connection at run time into private_environment, the token budget handed to
the proxy) and opens the pull request. The model is tests/support/model_server.py in a container
on the proxy's upstream network (the project's default, ``triloop-egress-upstream``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from sqlalchemy import select
from triloop.bootstrap import App, bootstrap
from triloop.discovery.service import repo_ref
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import LedgerEntry, PullRequest, Repo, Ticket
from triloop_sandbox.egress import DEFAULT_UPSTREAM

from tests.support.rows import host_scan
from tests.support.scripted_model import API_KEY, MODEL_PORT, SUBMIT, model_server, served

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
HARNESS = "mini-swe-agent"
KEY_CONN = "triloop_scripted_model"
TICKET_FILE = "inventory/models.py"  # the sample's F401 ticket, the highest priority one
EDIT = f"sed -i -e '/^import os$/d' -e '/^import sys$/d' {TICKET_FILE}"


@pytest.fixture
def upstream(docker_client: docker.DockerClient) -> Iterator[str]:
    """The proxy's default upstream network, made as the egress gateway makes it if missing."""
    if not docker_client.networks.list(names=[DEFAULT_UPSTREAM]):
        docker_client.networks.create(
            DEFAULT_UPSTREAM, driver="bridge", labels={"io.triloop.egress.upstream": "1"}
        )
    yield DEFAULT_UPSTREAM


def write_policy(
    tmp_path: Path, image: str, model_host: str, monkeypatch: pytest.MonkeyPatch, **budgets: Any
) -> None:
    policy = yaml.safe_load((ROOT / "include" / "policy" / "default.yaml").read_text())
    policy["claim_batch"] = 1
    # The sample's F401 ticket is the one autofix may not fix: it goes to the agent harness.
    policy["autofix_rules"] = [rule for rule in policy["autofix_rules"] if rule != "F401"]
    policy["agent_harness"] = HARNESS
    policy["budgets"] = {**policy.get("budgets", {}), **budgets}
    policy["harnesses"][HARNESS] = {
        "image": image,
        "egress": [f"{model_host}:{MODEL_PORT}"],
        "api_base": f"http://{model_host}:{MODEL_PORT}/v1",
        "model": "openai/scripted-model",
        "api_key_conn_id": KEY_CONN,
        "api_key_env": "OPENAI_API_KEY",
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("TRILOOP_POLICY_PATH", str(path))
    key = {"conn_type": "generic", "password": API_KEY}
    monkeypatch.setenv(f"AIRFLOW_CONN_{KEY_CONN.upper()}", json.dumps(key))


def route_ticket_to_mini(triloop_home: Path) -> tuple[App, str, str]:
    """Onboard and scan the sample: discovery routes its F401 ticket to mini-swe-agent, as the
    policy says (returns the app, the ticket id and the forge remote)."""
    app = bootstrap(home=triloop_home)
    repo = onboard(app, str(materialise_sample(app)), name="sample", actor=CLI)
    with app.uow() as session:
        ref = repo_ref(session.get_one(Repo, repo.id))
    host_scan(app, ref, CLI)
    with app.uow() as session:
        ticket = session.scalars(
            select(Ticket).where(Ticket.rule == "F401", Ticket.path == TICKET_FILE)
        ).one()
        assert (ticket.harness, ticket.state) == (HARNESS, "ready")
        return app, ticket.id, repo.remote


def git_out(*args: str, cwd: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def test_execution_dag_opens_the_pull_request_mini_swe_agent_wrote(
    factory: dict[str, Any],
    triloop_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    docker_client: docker.DockerClient,
    mini_swe_agent_image: str,
    upstream: str,
) -> None:
    with model_server(
        docker_client, mini_swe_agent_image, upstream, "--script", "edit", "--edit-command", EDIT
    ) as (host, server):
        write_policy(tmp_path, mini_swe_agent_image, host, monkeypatch)
        app, ticket_id, remote = route_ticket_to_mini(triloop_home)
        run = factory["triloop_execution"].test()
        requests = served(server)
    assert str(run.state) == "success"
    # The key came from the Airflow connection (the server answers 401 without it).
    assert [(r["status"], r["command"]) for r in requests] == [(200, EDIT), (200, SUBMIT)]
    with app.uow() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert ticket.state == "pr_open" and ticket.harness == HARNESS
        pr = session.scalars(select(PullRequest).where(PullRequest.ticket_id == ticket_id)).one()
        result = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.ticket_id == ticket_id, LedgerEntry.action == "harness.result"
            )
        ).one()
    assert result.outcome == "changed"
    assert result.tokens == sum(r["total_tokens"] for r in requests)
    base = git_out("rev-parse", "main", cwd=remote).strip()
    diff = git_out("diff", base, pr.head_sha, cwd=remote)
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert changed == ["-import os", "-import sys"]
    assert f"+++ b/{TICKET_FILE}" in diff and diff.count("+++ ") == 1


def test_execution_dag_stops_a_model_that_keeps_going_at_the_token_limit(
    factory: dict[str, Any],
    triloop_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    docker_client: docker.DockerClient,
    mini_swe_agent_image: str,
    upstream: str,
) -> None:
    limit = 6000
    with model_server(docker_client, mini_swe_agent_image, upstream, "--script", "forever") as (
        host,
        server,
    ):
        write_policy(tmp_path, mini_swe_agent_image, host, monkeypatch, ticket_max_tokens=limit)
        app, ticket_id, remote = route_ticket_to_mini(triloop_home)
        run = factory["triloop_execution"].test()
        requests = served(server)
    # One agent run, cut off by the proxy: a budget stop is not a task failure to retry (a
    # retry would be a second run on the same budget).
    assert str(run.state) == "success"
    served_tokens = sum(r["total_tokens"] for r in requests)
    assert served_tokens >= limit and served_tokens - requests[-1]["total_tokens"] < limit
    with app.uow() as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert ticket.state == "needs_human"
        assert "tokens" in (ticket.last_error or "") and str(limit) in (ticket.last_error or "")
        assert session.scalars(select(PullRequest)).all() == []
    heads = git_out("ls-remote", "--heads", remote, cwd=str(tmp_path))
    assert [line.split()[1] for line in heads.splitlines()] == ["refs/heads/main"]
