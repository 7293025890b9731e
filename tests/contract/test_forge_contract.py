"""The Forge contract: every implementation must pass these.

The local forge runs on SQLite and PostgreSQL; the GitHub forge runs through the providers-github
hook and PyGithub against the fake GitHub REST server (tests.support.fake_github) on loopback,
its clone URL pointing at the sample's bare repository, which the fake reads its git data from.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from triloop.adapters.github_forge import GitHubForge
from triloop.adapters.local_forge import LocalForge
from triloop.adapters.protocols import BaseMoved, Forge, ForgeError, PullRequestInfo
from triloop.bootstrap import App
from triloop.domain.contracts import RepoRef
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import Effect, PullRequest, Ticket
from triloop.workspace import make_workspace

from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_repos import attach_git

ForgeFactory = Callable[[], AbstractContextManager[Forge]]
GITHUB_CONN = "triloop_github_forge_contract"


def _git(*args: str, cwd: Path) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    """The local forge keeps pull requests in the Triloop DB: run it on both databases."""
    return str(request.param)


@pytest.fixture
def repo(app: App) -> RepoRef:
    row = onboard(app, str(materialise_sample(app)), name="sample", actor=CLI)
    with app.uow() as session:  # pull requests refer to tickets
        session.add(
            Ticket(
                id="T-1",
                key="k1",
                repo_id="sample",
                tool="ruff",
                rule="F401",
                path="a.py",
                title="t",
                severity="low",
                state="running",
            )
        )
    return RepoRef(repo_id=row.id, name=row.name, remote=row.remote)


@pytest.fixture
def fake_github(repo: RepoRef, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A fake GitHub whose acme/app is the sample's bare repo; an Airflow connection to it."""
    with FakeGitHub() as fake:
        attach_git(fake, "acme/app", Path(repo.remote))
        conn = {"conn_type": "github", "host": fake.base_url, "password": "test-token"}
        monkeypatch.setenv(f"AIRFLOW_CONN_{GITHUB_CONN.upper()}", json.dumps(conn))
        yield fake


def github_client() -> object:
    from airflow.providers.github.hooks.github import GithubHook

    return GithubHook(github_conn_id=GITHUB_CONN).get_conn()


@pytest.fixture(params=["local", "github"])
def forge(request: pytest.FixtureRequest, app: App, repo: RepoRef) -> ForgeFactory:
    """A factory of forge sessions; each ``with`` block is one transaction."""

    @contextmanager
    def local() -> Iterator[Forge]:
        with app.uow() as session:
            yield LocalForge(session)

    @contextmanager
    def github() -> Iterator[Forge]:
        with app.uow() as session:
            yield GitHubForge(
                session,
                github_client,  # type: ignore[arg-type]
                "acme/app",
                clone_url=repo.remote,
                pace=False,
            )

    if request.param == "github":
        request.getfixturevalue("fake_github")
    return {"local": local, "github": github}[request.param]


def _commit_on_top(repo: RepoRef, tmp: Path, name: str, base: str = "main") -> tuple[Path, str]:
    clone = tmp / name
    _git("clone", "-q", "--branch", base, repo.remote, str(clone), cwd=tmp)
    (clone / f"{name}.txt").write_text(f"{name}\n")
    _git("add", "-A", cwd=clone)
    _git("commit", "-qm", name, cwd=clone)
    return clone, _git("rev-parse", "HEAD", cwd=clone)


def _open_pr(f: Forge, repo: RepoRef, clone: Path, sha: str) -> PullRequestInfo:
    f.push_branch(repo, clone, sha, "triloop/x")
    return f.open_pull_request(
        repo, ticket_id="T-1", branch="triloop/x", title="t", body="", harness="autofix"
    )


def test_push_is_idempotent(forge: ForgeFactory, repo: RepoRef, tmp_path: Path) -> None:
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        assert f.branch_sha(repo, "triloop/x") is None
        f.push_branch(repo, clone, sha, "triloop/x")
        f.push_branch(repo, clone, sha, "triloop/x")
        assert f.branch_sha(repo, "triloop/x") == sha


def test_open_pull_request_is_idempotent_by_branch(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path
) -> None:
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        first = _open_pr(f, repo, clone, sha)
    with forge() as f:
        again = _open_pr(f, repo, clone, sha)
        assert again == first and first.head_sha == sha and first.state == "open"
        assert f.get_pull_request(repo, first.number) == first


def test_open_pull_request_needs_the_branch(forge: ForgeFactory, repo: RepoRef) -> None:
    with forge() as f, pytest.raises(ForgeError, match="branch 'triloop/none' does not exist"):
        f.open_pull_request(
            repo, ticket_id="T-1", branch="triloop/none", title="t", body="", harness="autofix"
        )


def test_merge_lands_exactly_what_was_checked(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path
) -> None:
    base = _git("ls-remote", repo.remote, "refs/heads/main", cwd=tmp_path).split()[0]
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        pr = _open_pr(f, repo, clone, sha)
    with forge() as f, pytest.raises(ForgeError, match="head moved"):
        f.merge(repo, pr.number, expected_head_sha=base, expected_base_sha=base)
    with forge() as f:
        merged = f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)
    with forge() as f:
        assert f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base) == merged
    assert merged.state == "merged" and merged.merge_sha
    assert _git("ls-remote", repo.remote, "refs/heads/main", cwd=tmp_path).split()[0] == (
        merged.merge_sha
    )


def test_merge_refuses_a_moved_base(forge: ForgeFactory, repo: RepoRef, tmp_path: Path) -> None:
    base = _git("ls-remote", repo.remote, "refs/heads/main", cwd=tmp_path).split()[0]
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    other, _ = _commit_on_top(repo, tmp_path, "two")
    _git("push", "-q", "origin", "HEAD:main", cwd=other)  # someone else lands first
    with forge() as f:
        pr = _open_pr(f, repo, clone, sha)
    with forge() as f, pytest.raises(BaseMoved, match="needs a recheck"):
        f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)


def test_workspaces_fetch_from_the_clone_source(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path
) -> None:
    """A workspace made from the forge's clone source has its branches, and no remote URL."""
    main = _git("ls-remote", repo.remote, "refs/heads/main", cwd=tmp_path).split()[0]
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        f.push_branch(repo, clone, sha, "triloop/x")
        source = f.clone_source(repo)
    ws, head = make_workspace(
        tmp_path / "ws", "contract", remote=source, ref="main", writable_src=False
    )
    assert head == main
    assert _git("rev-parse", "origin/triloop/x", cwd=ws.src) == sha
    assert _git("remote", cwd=ws.src) == ""  # nothing to fetch with later, no URL kept
    assert "env=" not in repr(source)  # credentials, if any, never reach a log


def test_comments_are_idempotent_by_key(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path, app: App
) -> None:
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        pr = _open_pr(f, repo, clone, sha)
        f.comment(repo, pr.number, "evidence", key="comment:1")
    with forge() as f:
        f.comment(repo, pr.number, "evidence", key="comment:1")
    with app.uow() as session:
        count = session.scalar(
            select(func.count()).select_from(Effect).where(Effect.kind == "comment")
        )
    assert count == 1


def test_statuses_are_idempotent_and_the_latest_state_wins(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path
) -> None:
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        f.push_branch(repo, clone, sha, "triloop/x")  # a status is on a commit the forge has
        f.set_status(repo, sha, context="triloop/checks", state="pending", description="running")
    with forge() as f:
        f.set_status(repo, sha, context="triloop/checks", state="pending", description="running")
        f.set_status(repo, sha, context="triloop/checks", state="success", description="4/4")
        f.set_status(repo, sha, context="triloop/sbom", state="success", description="stored")
    with forge() as f:
        assert f.statuses(repo, sha) == {"triloop/checks": "success", "triloop/sbom": "success"}
        assert f.statuses(repo, "0" * 40) == {}
        with pytest.raises(ForgeError, match="status state 'green' is not one of"):
            f.set_status(repo, sha, context="triloop/checks", state="green", description="")


def test_every_side_effect_is_recorded_once_under_its_key(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path, app: App
) -> None:
    base = _git("ls-remote", repo.remote, "refs/heads/main", cwd=tmp_path).split()[0]
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    for _ in range(2):  # a retried or cleared task does it all again
        with forge() as f:
            pr = _open_pr(f, repo, clone, sha)
            f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)
    with app.uow() as session:
        keys = sorted(session.scalars(select(Effect.key).where(Effect.kind != "comment")))
    assert keys == [
        f"merge:{repo.repo_id}#{pr.number}",
        f"pr:{repo.repo_id}:triloop/x",
        f"push:{repo.repo_id}:triloop/x:{sha}",
    ]


def test_closing_a_pull_request_closes_it_once(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path, app: App
) -> None:
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        pr = _open_pr(f, repo, clone, sha)
    for _ in range(2):  # a cleared task closes again: one close, one comment
        with forge() as f:
            closed = f.close_pull_request(repo, pr.number, comment="Blocked: tests failed")
        assert closed == replace(pr, state="closed")
    with forge() as f:
        assert f.get_pull_request(repo, pr.number).state == "closed"
        with pytest.raises(ForgeError, match="not open"):
            f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=sha)
    with app.uow() as session:
        row = session.scalars(select(PullRequest)).one()
        kinds = sorted(session.scalars(select(Effect.kind).where(Effect.key.contains("close:"))))
    assert row.state == "closed"  # Triloop's row of it too
    assert kinds == ["close", "comment"]


def test_closing_needs_an_unmerged_pull_request(
    forge: ForgeFactory, repo: RepoRef, tmp_path: Path
) -> None:
    base = _git("ls-remote", repo.remote, "refs/heads/main", cwd=tmp_path).split()[0]
    clone, sha = _commit_on_top(repo, tmp_path, "one")
    with forge() as f:
        pr = _open_pr(f, repo, clone, sha)
        f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)
    with forge() as f, pytest.raises(ForgeError, match=rf"#{pr.number} is merged, not open"):
        f.close_pull_request(repo, pr.number)
    with forge() as f, pytest.raises(ForgeError, match=r"pull request .*#99\b"):
        f.close_pull_request(repo, 99)
    with forge() as f:
        assert f.get_pull_request(repo, pr.number).state == "merged"
