"""The loops on a repository whose forge is GitHub: the fake GitHub REST server and git smart
HTTP on loopback, real sandboxes, the real DAGs under ``dag.test``.

The sample is onboarded as usual, then ``repos.sample.forge`` names GitHub, whose copy of the
repository is a bare repository of its own: the onboarded mirror never sees a push or a merge,
so everything asserted on GitHub got there through the forge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from triloop.bootstrap import App, bootstrap
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import DecisionRow, LedgerEntry, PullRequest, Repo

from tests.e2e.rerun import clear, latest_run_id, resume
from tests.e2e.test_sample_repo_loop import _returned, _run
from tests.support.github_repo import GitHubRepo, git, github_repo

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]
GOVERNANCE = "triloop_governance"


@pytest.fixture
def on_github(
    triloop_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[App, GitHubRepo]]:
    """The sample onboarded, GitHub's copy of it, and a policy naming GitHub as its forge."""
    onboarded = bootstrap(home=triloop_home)
    mirror = onboard(onboarded, str(materialise_sample(onboarded)), name="sample", actor=CLI)
    with github_repo(Path(mirror.remote), tmp_path / "github", monkeypatch) as gh:
        policy = yaml.safe_load((ROOT / "include/policy/default.yaml").read_text())
        policy["repos"]["sample"]["forge"] = gh.forge  # autonomy level 2: auto-merge low risk
        policy["claim_batch"] = 2  # two PRs show a moved base; more only cost sandbox time
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        monkeypatch.setenv("TRILOOP_POLICY_PATH", str(path))
        yield bootstrap(home=triloop_home), gh


def _merged(app: App) -> list[PullRequest]:
    with app.uow() as session:
        return list(session.scalars(select(PullRequest).where(PullRequest.state == "merged")))


def _actions(app: App, action: str) -> list[LedgerEntry]:
    with app.uow() as session:
        return list(session.scalars(select(LedgerEntry).where(LedgerEntry.action == action)))


def test_execution_and_governance_work_through_github(
    factory: dict[str, Any], on_github: tuple[App, GitHubRepo], tmp_path: Path
) -> None:
    app, github = on_github
    assert _run(factory, "triloop_discovery") == "success"
    assert _run(factory, "triloop_execution") == "success"
    opened = _returned("triloop_execution", "publish_pull_requests")["pull_requests"]
    assert len(opened) == 2  # one run reviews both on the same base
    with app.uow() as session:
        mirror = session.get_one(Repo, "sample").remote
    for pr in opened:  # each branch and pull request is GitHub's
        assert github.data.head(pr["branch"]) == pr["head_sha"]
        assert github.pulls[pr["number"]]["head"]["ref"] == pr["branch"]
    heads = git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=Path(mirror))
    assert heads == "refs/heads/main"  # the onboarded mirror saw no push

    # Round one: every PR checked on the same base; the first merge moves it under the others.
    base = github.data.head("main")
    assert _run(factory, GOVERNANCE) == "success"
    [first] = _merged(app)
    assert github.pulls[first.number]["merged"] is True and github.merges() == 1
    assert github.data.head("main") == first.merge_sha
    for pr in opened:  # checks and evidence went to GitHub for every PR
        [status] = github.statuses(pr["head_sha"])
        assert (status["context"], status["state"]) == ("triloop/checks", "success")
        assert any("| tests | passed |" in body for body in github.comments(pr["number"]))
    rechecks = _actions(app, "ticket.recheck")
    assert len(rechecks) == len(opened) - 1
    assert all("needs a recheck" in r.payload["reason"] for r in rechecks)
    waiting = [p["number"] for p in opened if p["number"] != first.number]
    assert all(github.pulls[number]["state"] == "open" for number in waiting)

    # Clearing and re-running the merges merges nothing twice.
    run_id = latest_run_id(GOVERNANCE)
    assert clear(GOVERNANCE, run_id, "pull_request.auto_merge") == len(opened)
    resume(factory[GOVERNANCE], run_id)
    assert github.merges() == 1 and github.data.head("main") == first.merge_sha
    assert len(_actions(app, "forge.merge")) == 1

    # Round two re-checks the PRs sent back on the new base, and merges one of them.
    assert _run(factory, GOVERNANCE) == "success"
    with app.uow() as session:
        redecided = session.scalars(
            select(DecisionRow).where(DecisionRow.base_sha == first.merge_sha)
        ).all()
    assert len(redecided) == len(opened) - 1 and base != first.merge_sha
    assert len(_merged(app)) == 2 and github.merges() == 2
