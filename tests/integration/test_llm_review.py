"""The optional LLM reviewer, for real: mini-swe-agent reviews a pull request in the sandbox.

governance's prepare_review and prepare_llm_review write the reviewer's request (the PR's
title and diff fenced in its prompt); SandboxOperator runs it with the merged checkout mounted
read-only, on an internal network whose only way out is the egress proxy to
tests/support/model_server.py (scripted: its one command writes /out/review.json, then it
submits); decide turns the file into the llm-review check. The deterministic checks' outputs
are written on the host (as in test_control_plane), all green, so the reviewer alone decides
whether this PR is blocked.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlalchemy import select
from triloop.adapters.git import git
from triloop.bootstrap import App
from triloop.domain.policy import HarnessPolicy, RepoPolicy
from triloop.domain.reviewer_policy import ReviewerPolicy
from triloop.governance.reviewer import prepare_llm_review
from triloop.governance.service import decide, prepare_review, select_reviews
from triloop.store.models import CheckRun
from triloop_sandbox import SandboxOperator

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs, _pr_for_first_ticket
from tests.integration.test_mini_swe_agent import upstream  # noqa: F401  (a fixture)
from tests.support.scripted_model import API_KEY, MODEL_PORT, model_server, served

pytestmark = pytest.mark.docker

HARNESS = "mini-swe-agent"
FINDING = {
    "path": "inventory/models.py",
    "line": 1,
    "severity": "high",
    "rule": "unsafe-deserialization",
    "message": "pickle.loads on request data",
}
# The scripted model's one command: write the findings, and try to change the repository too.
TAMPER = "echo tampered >> README.md"


def _write_review(content: str) -> str:
    return f"printf '%s' '{content}' > /out/review.json; {TAMPER}"


def _configure(app: App, image: str, model_host: str) -> App:
    entry = HarnessPolicy(
        image=image,
        egress=[f"{model_host}:{MODEL_PORT}"],
        api_base=f"http://{model_host}:{MODEL_PORT}/v1",
        model="openai/scripted-model",
        api_key_env="OPENAI_API_KEY",
    )
    policy = app.policy.model_copy(
        update={
            "harnesses": {**app.policy.harnesses, HARNESS: entry},
            "reviewer": ReviewerPolicy(harness=HARNESS, block_on=["high", "critical"]),
            "repos": {**app.policy.repos, "sample": RepoPolicy(autonomy_level=3)},
        }
    )
    return dataclasses.replace(app, policy=policy)


def _run_reviewer(prepared: dict[str, Any], app: App, network: str) -> None:
    """The DAG's llm_review task: the settings apply_review_settings sets, a read-only mount."""
    operator = SandboxOperator(
        task_id="llm_review",
        image=prepared["image"],
        command=prepared["command"],
        workspace=prepared["workspace"],
        output_dir=prepared["output_dir"],
        workspace_root=str(app.settings.workspaces_dir),
        wall_clock_limit_s=prepared["wall_clock_limit_s"],
        private_environment={prepared["api_key_env"]: API_KEY},
        egress_allowlist=prepared["egress_allowlist"],
        egress_upstream_network=network,
        egress_max_tokens=prepared["budget"]["max_tokens"],
    )
    assert operator.workspace_readonly
    operator.execute({"run_id": f"review-{uuid.uuid4().hex[:8]}"})


@pytest.mark.parametrize(
    ("review", "status", "outcome", "excerpt"),
    [
        (
            json.dumps([FINDING]),
            "failed",
            "blocked",
            "[high] inventory/models.py:1 llm-review.unsafe-deserialization: pickle.loads",
        ),
        ("[]", "passed", "auto_merge", "0 finding(s), 0 blocking"),
        ("this is not JSON", "error", "blocked", "review.json is not JSON"),
    ],
    ids=["blocking-finding", "no-findings", "unparsable"],
)
def test_mini_swe_agent_reviews_a_pull_request(
    app: App,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    mini_swe_agent_image: str,
    upstream: str,  # noqa: F811
    review: str,
    status: str,
    outcome: str,
    excerpt: str,
) -> None:
    command = _write_review(review)
    with model_server(
        docker_client, mini_swe_agent_image, upstream, "--script", "edit", "--edit-command", command
    ) as (host, server):
        app = _configure(app, mini_swe_agent_image, host)
        repo_id, number = _pr_for_first_ticket(app, tmp_path)
        actor = _actor("gov-llm", "decide")
        assert select_reviews(app, actor) == [{"repo_id": repo_id, "number": number}]
        prepared_review = prepare_review(app, repo_id, number, actor)
        assert prepared_review.review_out
        _fake_sandbox_outputs(prepared_review)
        prepared = prepare_llm_review(app, prepared_review)
        request = json.loads(Path(prepared["output_dir"], "request.json").read_text())
        assert request["mode"] == "review" and "pull request diff" in request["prompt"]
        _run_reviewer(prepared, app, upstream)
        requests = served(server)
    # The scripted model was asked (through the proxy, with the key): write, then submit.
    assert [r["status"] for r in requests] == [200, 200] and requests[0]["command"] == command
    out = Path(prepared_review.review_out)
    result = json.loads((out / "result.json").read_text())
    assert (result["status"], result["files_changed"]) == ("no_change", [])
    trajectory = (out / "agent.traj.json").read_text()
    # The tampering command was refused (the checkout is not the sandbox user's, and it is
    # mounted read-only besides).
    assert "cannot create README.md" in trajectory
    merged = Path(prepared_review.merged_workspace)
    assert git("status", "--porcelain", cwd=merged) == ""

    decision = decide(app, prepared_review, actor)
    assert decision.outcome == outcome
    with app.uow() as session:
        row = session.scalars(select(CheckRun).where(CheckRun.check_id == "llm-review")).one()
        others = session.scalars(select(CheckRun).where(CheckRun.check_id != "llm-review")).all()
    assert all(c.status == "passed" for c in others), [(c.check_id, c.status) for c in others]
    assert row.status == status and excerpt in row.excerpt
    assert "triloop-harness agent --request /out/request.json" in row.command
    if status == "failed":
        assert row.rule_ids == ["llm-review.unsafe-deserialization"]
        assert decision.reasons[0] == "checks not green: llm-review"
