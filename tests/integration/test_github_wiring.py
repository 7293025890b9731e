"""Execution and governance on a repository whose forge is GitHub (the policy's choice).

The loops' own service functions, on the host (ruff stands in for the sandbox, as in
test_control_plane), against the fake GitHub and git smart HTTP on loopback: workspaces fetch
from GitHub's clone URL with the token only in git's environment, the branch, pull request,
status, evidence comment and merge all land on GitHub, and a base that moves between the checks
and the merge sends the pull request back for a recheck on the new base instead of merging.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from triloop.adapters.git import GitError
from triloop.adapters.github_git import auth_env
from triloop.adapters.protocols import CloneSource
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.forge_policy import ForgePolicy
from triloop.domain.policy import RepoPolicy
from triloop.forges import clone_source
from triloop.governance.service import decide, merge, prepare_review, select_reviews
from triloop.onboarding import materialise_sample, onboard
from triloop.store.models import LedgerEntry, PullRequest, Repo, Ticket
from triloop.workspace import make_workspace

from tests.integration.test_control_plane import _actor, _fake_sandbox_outputs, _pr_for_first_ticket
from tests.support.github_repo import TOKEN, GitHubRepo, git, github_repo


@pytest.fixture
def github(app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubRepo]:
    """The sample onboarded, GitHub's copy of it, and the policy naming GitHub as its forge."""
    row = onboard(app, str(materialise_sample(app)), name="sample", actor=_actor("r"))
    with github_repo(Path(row.remote), tmp_path / "github", monkeypatch) as gh:
        app.policy.repos["sample"] = RepoPolicy(
            autonomy_level=2, forge=ForgePolicy.model_validate(gh.forge)
        )
        yield gh


def _files_holding(root: Path, secrets: list[bytes]) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and any(s in path.read_bytes() for s in secrets)
    ]


def test_the_loops_work_on_github_and_keep_its_token_out_of_workspaces(
    app: App, github: GitHubRepo, tmp_path: Path
) -> None:
    repo_id, number = _pr_for_first_ticket(app, tmp_path)  # execution: prepare and finish
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        mirror = session.get_one(Repo, repo_id).remote
        branch, head = pr.branch, pr.head_sha
    # The branch and the pull request are GitHub's; the onboarded mirror saw nothing.
    assert github.data.head(branch) == head
    assert github.pulls[number]["head"]["ref"] == branch
    assert git("ls-remote", "--heads", mirror, branch, cwd=tmp_path) == ""

    reviewer = _actor("gov-1", "decide")
    assert select_reviews(app, reviewer) == [{"repo_id": repo_id, "number": number}]
    review = prepare_review(app, repo_id, number, reviewer)
    assert (review.head_sha, review.base_sha) == (head, github.data.head("main"))
    _fake_sandbox_outputs(review)
    decision = decide(app, review, reviewer)
    assert decision.outcome == "auto_merge"
    [status] = github.statuses(head)
    assert (status["context"], status["state"]) == ("triloop/checks", "success")
    assert "checks passed; auto_merge (low risk)" in status["description"]
    [evidence] = github.comments(number)
    assert "| tests | passed |" in evidence

    merged = merge(app, decision, reviewer)
    assert merged is not None and github.pulls[number]["merged"] is True
    assert github.data.head("main") == merged["merge_sha"]
    assert merge(app, decision, _actor("gov-1", "auto_merge")) == merged  # a cleared task
    assert github.merges() == 1

    # git received the token from its environment; no file of any workspace holds it.
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode())
    assert any(github.server.authorised(seen) for seen in github.server.seen)
    assert _files_holding(app.settings.workspaces_dir, [TOKEN.encode(), basic]) == []


def test_a_base_moved_on_github_is_rechecked_not_merged(
    app: App, github: GitHubRepo, tmp_path: Path
) -> None:
    repo_id, number = _pr_for_first_ticket(app, tmp_path)
    first = _actor("gov-1", "decide")
    select_reviews(app, first)
    review = prepare_review(app, repo_id, number, first)
    _fake_sandbox_outputs(review)
    decision = decide(app, review, first)
    moved = github.land_on_main(tmp_path, "hotfix")  # between the checks and the merge

    assert merge(app, decision, first) is None
    assert github.merges() == 0 and github.pulls[number]["state"] == "open"
    assert github.data.head("main") == moved
    with app.uow() as session:
        pr = session.scalars(select(PullRequest)).one()
        assert session.get_one(Ticket, pr.ticket_id).state == "pr_open"
        recheck = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "ticket.recheck")
        ).one()
    assert "needs a recheck" in recheck.payload["reason"]

    # The next governance run checks the pull request again, on the new base, and merges it.
    second = _actor("gov-2", "decide")
    assert select_reviews(app, second) == [{"repo_id": repo_id, "number": number}]
    again = prepare_review(app, repo_id, number, second)
    assert (again.head_sha, again.base_sha) == (review.head_sha, moved)
    _fake_sandbox_outputs(again)
    redecided = decide(app, again, second)
    merged = merge(app, redecided, second)
    assert merged is not None and github.merges() == 1
    parents = git("rev-list", "--parents", "-n1", str(merged["merge_sha"]), cwd=github.bare)
    assert parents.split()[1:] == [moved, review.head_sha]


def test_a_refused_token_fails_the_fetch_without_showing_it(
    app: App, github: GitHubRepo, tmp_path: Path
) -> None:
    with app.uow() as session:
        repo = repo_ref(session.get_one(Repo, "sample"))
    source = clone_source(app, repo)
    assert source.url == github.clone_url and "Authorization" in str(dict(source.env))
    assert TOKEN not in repr(source)
    wrong = CloneSource(source.url, auth_env(source.url, "not-the-token"))
    with pytest.raises(GitError, match="exited 128") as refused:
        make_workspace(tmp_path / "ws", "t", remote=wrong, ref="main", writable_src=False)
    assert "not-the-token" not in str(refused.value) and "Authorization" not in str(refused.value)
