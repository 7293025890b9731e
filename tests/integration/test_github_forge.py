"""The GitHub forge against the fake GitHub: lost answers, GitHub's refusals, the mirror rows.

What every forge must do is in tests/contract/test_forge_contract.py; this is what only the
GitHub forge has: its REST errors and their classification, answers lost after GitHub acted,
pushing with the token kept out of argv, and the fake's own git-backed behaviour.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from github import Auth, Github
from sqlalchemy import select
from triloop.adapters.github_forge import GitHubForge
from triloop.adapters.github_git import auth_env
from triloop.adapters.local_forge import BaseMoved, LocalForge
from triloop.adapters.protocols import ForgeError, PullRequestInfo
from triloop.bootstrap import App
from triloop.domain.contracts import RepoRef
from triloop.forges import forge_for
from triloop.retry import Disposition, classify
from triloop.store.models import PullRequest

from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_repos import attach_git
from tests.support.git_http import GitHttpServer
from tests.support.rows import add_ticket

ForgeSession = Callable[[], AbstractContextManager[GitHubForge]]


def _git(*args: str, cwd: Path) -> str:
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository with one commit on main."""
    bare, work = tmp_path / "app.git", tmp_path / "seed"
    _git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    _git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    (work / "a.txt").write_text("a\n")
    _git("add", "-A", cwd=work)
    _git("commit", "-qm", "seed", cwd=work)
    _git("push", "-q", "origin", "HEAD:main", cwd=work)
    return bare


@pytest.fixture
def repo(app: App, remote: Path) -> RepoRef:
    add_ticket(app, "T-1", state="running", repo_id="r")
    return RepoRef(repo_id="r", name="r", remote=str(remote))


@pytest.fixture
def fake(remote: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        attach_git(server, "acme/app", remote)
        yield server


@pytest.fixture
def forge(app: App, fake: FakeGitHub, remote: Path) -> ForgeSession:
    """A factory of forge sessions; each ``with`` block is one transaction."""

    def client() -> Github:
        return Github(auth=Auth.Token("test-token"), base_url=fake.base_url)

    @contextmanager
    def session() -> Iterator[GitHubForge]:
        with app.uow() as s:
            yield GitHubForge(s, client, "acme/app", clone_url=str(remote), pace=False)

    return session


def _commit(
    remote: Path, tmp: Path, name: str, base: str = "main", file: str = ""
) -> tuple[Path, str]:
    clone = tmp / name
    _git("clone", "-q", "--branch", base, str(remote), str(clone), cwd=tmp)
    (clone / (file or f"{name}.txt")).write_text(f"{name}\n")
    _git("add", "-A", cwd=clone)
    _git("commit", "-qm", name, cwd=clone)
    return clone, _git("rev-parse", "HEAD", cwd=clone)


def _open(
    forge: GitHubForge, repo: RepoRef, clone: Path, sha: str, branch: str = "triloop/x"
) -> PullRequestInfo:
    forge.push_branch(repo, clone, sha, branch)
    return forge.open_pull_request(
        repo, ticket_id="T-1", branch=branch, title="Fix F401", body="b", harness="autofix"
    )


def _main(remote: Path) -> str:
    return _git("rev-parse", "main", cwd=remote)


def test_a_lost_merge_answer_does_not_merge_twice(
    forge: ForgeSession, fake: FakeGitHub, repo: RepoRef, remote: Path, tmp_path: Path
) -> None:
    base = _main(remote)
    clone, sha = _commit(remote, tmp_path, "one")
    with forge() as f:
        pr = _open(f, repo, clone, sha)
    fake.drop_next("PUT", r"/pulls/\d+/merge$")
    with forge() as f, pytest.raises(ForgeError, match="could not merge acme/app#1") as lost:
        f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)
    assert lost.value.transient
    with forge() as f:
        merged = f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)
    assert fake.count("PUT", r".*/pulls/1/merge") == 1
    assert merged.state == "merged" and merged.merge_sha == _main(remote)
    assert _git(
        "rev-parse", f"{merged.merge_sha}^1", f"{merged.merge_sha}^2", cwd=remote
    ).split() == [
        base,
        sha,
    ]


def test_lost_answers_to_opening_and_commenting_show_each_once(
    forge: ForgeSession, fake: FakeGitHub, repo: RepoRef, remote: Path, tmp_path: Path
) -> None:
    clone, sha = _commit(remote, tmp_path, "one")
    with forge() as f:
        f.push_branch(repo, clone, sha, "triloop/x")
    fake.drop_next("POST", r"/pulls$")
    with forge() as f, pytest.raises(ForgeError, match="could not open a pull request"):
        _open(f, repo, clone, sha)
    fake.drop_next("POST", r"/issues/1/comments$")
    with forge() as f, pytest.raises(ForgeError, match="could not comment on acme/app#1"):
        pr = _open(f, repo, clone, sha)
        f.comment(repo, pr.number, "evidence", key="comment:d1")
    with forge() as f:
        pr = _open(f, repo, clone, sha)
        f.comment(repo, pr.number, "evidence", key="comment:d1")
        f.comment(repo, pr.number, "evidence", key="comment:d1")
    assert fake.count("POST", r".*/pulls") == 1
    assert fake.count("POST", r".*/issues/1/comments") == 1
    comments = fake.state["repos"]["acme/app"].comments[1]
    assert [c["body"] for c in comments] == ["evidence\n\n<!-- triloop:comment=comment:d1 -->"]


def test_triloop_keeps_a_mirror_row_of_each_pull_request(
    forge: ForgeSession, app: App, repo: RepoRef, remote: Path, tmp_path: Path
) -> None:
    base = _main(remote)
    clone, sha = _commit(remote, tmp_path, "one")
    with forge() as f:
        pr = _open(f, repo, clone, sha)
    with app.uow() as session:
        row = session.scalars(select(PullRequest)).one()
        assert (row.number, row.ticket_id, row.state, row.head_sha) == (
            pr.number,
            "T-1",
            "open",
            sha,
        )
        assert (row.title, row.harness, row.base_branch) == ("Fix F401", "autofix", "main")
    with forge() as f:
        merged = f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)
    with app.uow() as session:
        row = session.scalars(select(PullRequest)).one()
        assert (row.state, row.merge_sha) == ("merged", merged.merge_sha)
        assert row.merged_at is not None


@pytest.mark.parametrize(
    ("status", "headers", "transient", "message"),
    [
        (500, {}, True, "500 Server Error"),
        (502, {}, True, "502 Bad Gateway"),
        (429, {"retry_after": "1"}, True, "429 Too Many"),
        (403, {"x_ratelimit_remaining": "0"}, True, "403 API rate limit"),
        (403, {}, False, "403 Resource not accessible"),
        (401, {}, False, "401 Bad credentials"),
        (404, {}, False, "404 Not Found"),
        (422, {}, False, "422 Validation Failed"),
    ],
)
def test_github_errors_are_transient_or_permanent(
    forge: ForgeSession,
    fake: FakeGitHub,
    repo: RepoRef,
    status: int,
    headers: dict[str, str],
    transient: bool,
    message: str,
) -> None:
    texts = {
        500: "Server Error",
        502: "Bad Gateway",
        429: "Too Many Requests",
        401: "Bad credentials",
        404: "Not Found",
        422: "Validation Failed",
    }
    text = message.split(" ", 1)[1] if status == 403 else texts[status]
    fake.fail_next("POST", r"/statuses/", status, text, **headers)
    with (
        forge() as f,
        pytest.raises(ForgeError, match=f"could not set status .*: {message}") as err,
    ):
        f.set_status(repo, _main(Path(repo.remote)), context="c", state="success", description="d")
    assert err.value.transient is transient
    assert classify(err.value) is (Disposition.TRANSIENT if transient else Disposition.PERMANENT)


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        (
            (409, "Head branch was modified. Review and try the merge again."),
            ForgeError,
            "head moved during the merge",
        ),
        ((405, "Pull Request is not mergeable"), ForgeError, "#1 is not mergeable: Pull Request"),
        (None, BaseMoved, "main moved past .*: PR #1 needs a recheck"),
    ],
)
def test_merge_refusals_are_permanent_and_change_nothing(
    forge: ForgeSession,
    fake: FakeGitHub,
    repo: RepoRef,
    remote: Path,
    tmp_path: Path,
    fault: tuple[int, str] | None,
    error: type[ForgeError],
    message: str,
) -> None:
    base = _main(remote)
    clone, sha = _commit(remote, tmp_path, "one")
    with forge() as f:
        pr = _open(f, repo, clone, sha)
    if fault is None:
        other, moved = _commit(remote, tmp_path, "two")
        _git("push", "-q", "origin", "HEAD:main", cwd=other)
        base_now = moved
    else:
        fake.fail_next("PUT", r"/merge$", *fault)
        base_now = base
    with forge() as f, pytest.raises(error, match=message) as refused:
        f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=base)
    assert not refused.value.transient
    if error is ForgeError:  # BaseMoved is governance's to handle: it sends the PR to a recheck
        assert classify(refused.value) is Disposition.PERMANENT
    assert _main(remote) == base_now
    with forge() as f:
        assert f.get_pull_request(repo, pr.number).state == "open"


def test_a_conflicting_pull_request_is_not_mergeable(
    forge: ForgeSession, repo: RepoRef, remote: Path, tmp_path: Path
) -> None:
    clone, sha = _commit(remote, tmp_path, "one", file="a.txt")
    other, moved = _commit(remote, tmp_path, "two", file="a.txt")
    _git("push", "-q", "origin", "HEAD:main", cwd=other)
    with forge() as f:
        pr = _open(f, repo, clone, sha)
    with forge() as f, pytest.raises(ForgeError, match="#1 is not mergeable"):
        f.merge(repo, pr.number, expected_head_sha=sha, expected_base_sha=moved)
    assert _main(remote) == moved


def test_a_push_never_forces(
    forge: ForgeSession, repo: RepoRef, remote: Path, tmp_path: Path
) -> None:
    clone, sha = _commit(remote, tmp_path, "one")
    other, rewritten = _commit(remote, tmp_path, "two")
    with forge() as f:
        f.push_branch(repo, clone, sha, "triloop/x")
    refused_push = r"push of triloop/x to .* failed"
    with forge() as f, pytest.raises(ForgeError, match=refused_push) as refused:
        f.push_branch(repo, other, rewritten, "triloop/x")
    assert classify(refused.value) is Disposition.PERMANENT
    assert _git("rev-parse", "triloop/x", cwd=remote) == sha


@pytest.mark.parametrize("token", ["test-token", "wrong-token"])
def test_a_push_over_https_carries_the_token_only_in_a_header(
    app: App, fake: FakeGitHub, repo: RepoRef, remote: Path, tmp_path: Path, token: str
) -> None:
    clone, sha = _commit(remote, tmp_path, "one")
    with GitHttpServer(remote.parent, "test-token") as server:
        fake.tokens.add(token)

        def client() -> Github:
            return Github(auth=Auth.Token(token), base_url=fake.base_url)

        url = server.url(remote.name)
        with app.uow() as session:
            forge = GitHubForge(session, client, "acme/app", clone_url=url, pace=False)
            if token == "wrong-token":
                with pytest.raises(ForgeError, match=f"push of triloop/x to {url} failed") as err:
                    forge.push_branch(repo, clone, sha, "triloop/x")
                assert not err.value.transient and token not in str(err.value)
                assert _git("branch", "--list", "triloop/x", cwd=remote) == ""
            else:
                forge.push_branch(repo, clone, sha, "triloop/x")
                assert forge.branch_sha(repo, "triloop/x") == sha
    basic = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert server.seen and set(server.seen) == {basic}  # every request, from the first one
    assert token not in _git("config", "--list", cwd=clone)


def test_the_token_reaches_git_only_through_its_environment() -> None:
    env = auth_env("https://github.com/acme/app.git", "ghs_secret")
    header = env["GIT_CONFIG_VALUE_0"]
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader" and env["GIT_CONFIG_COUNT"] == "1"
    assert (
        base64.b64decode(header.removeprefix("Authorization: Basic "))
        == b"x-access-token:ghs_secret"
    )
    assert auth_env("/srv/git/app.git", "ghs_secret") == {}
    assert auth_env("https://github.com/acme/app.git", None) == {}


def test_a_status_description_is_cut_to_githubs_limit(
    forge: ForgeSession, fake: FakeGitHub, repo: RepoRef, remote: Path
) -> None:
    sha = _main(remote)
    with forge() as f:
        f.set_status(repo, sha, context="triloop/checks", state="failure", description="x" * 300)
    status = fake.state["git"]["acme/app"].statuses[sha][0]
    assert len(status["description"]) == 140 and status["description"].endswith("…")


@pytest.mark.parametrize(
    ("name", "message"),
    [("acme", "'acme' must be owner/name"), ("acme/app/x", "must be owner/name")],
)
def test_a_bad_repository_name_is_refused(app: App, name: str, message: str) -> None:
    with app.uow() as session, pytest.raises(ForgeError, match=message):
        GitHubForge(session, lambda: Github(), name)


def test_an_unknown_pull_request_is_a_permanent_error(forge: ForgeSession, repo: RepoRef) -> None:
    with forge() as f, pytest.raises(ForgeError, match="read pull request acme/app#9: 404") as err:
        f.get_pull_request(repo, 9)
    assert not err.value.transient


def test_the_policy_chooses_each_repos_forge(
    app: App, fake: FakeGitHub, repo: RepoRef, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "github", "host": fake.base_url, "password": "test-token"}
    monkeypatch.setenv("AIRFLOW_CONN_TRILOOP_FORGE_TEST", json.dumps(conn))
    doc = {"kind": "github", "conn_id": "triloop_forge_test", "repo": "acme/app"}
    policy = app.policy.model_validate(
        {**app.policy.model_dump(), "repos": {"r": {"forge": {**doc, "clone_url": str(remote)}}}}
    )
    chosen = dataclasses.replace(app, policy=policy)
    with app.uow() as session:
        assert isinstance(forge_for(app, session, "r"), LocalForge)
        github = forge_for(chosen, session, "r")
        assert isinstance(github, GitHubForge) and github.clone_url == str(remote)
        assert github.branch_sha(repo, "main") == _main(remote)  # through the hook's connection
        assert isinstance(forge_for(chosen, session, "other"), LocalForge)
    policy = app.policy.model_validate({**app.policy.model_dump(), "repos": {"r": {"forge": doc}}})
    with app.uow() as session:
        default_url = forge_for(dataclasses.replace(app, policy=policy), session, "r")
        assert isinstance(default_url, GitHubForge)
        assert default_url.clone_url == "https://github.com/acme/app.git"
