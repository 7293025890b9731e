"""The Tracker contract: every implementation must pass these.

The local tracker runs on SQLite and PostgreSQL; GitHub Issues runs through the providers-github
hook and PyGithub against the fake GitHub REST server (tests.support.fake_github) on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from triloop.adapters.github_tracker import GitHubIssuesTracker
from triloop.adapters.local_tracker import LocalTracker
from triloop.adapters.protocols import Tracker, TrackerError
from triloop.bootstrap import App
from triloop.domain.contracts import RepoRef

from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_issues import add_repo
from tests.support.rows import add_ticket

TrackerFactory = Callable[[], AbstractContextManager[Tracker]]
REPO = RepoRef(repo_id="r", name="r", remote="/nowhere")
GITHUB_CONN = "triloop_github_contract"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake_github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A fake GitHub with repository acme/app, and an Airflow connection pointing at it."""
    with FakeGitHub() as fake:
        add_repo(fake, "acme/app")
        conn = {"conn_type": "github", "host": fake.base_url, "password": "test-token"}
        monkeypatch.setenv(f"AIRFLOW_CONN_{GITHUB_CONN.upper()}", json.dumps(conn))
        yield fake


def github_client(conn_id: str = GITHUB_CONN) -> Callable[[], object]:
    def client() -> object:
        from airflow.providers.github.hooks.github import GithubHook

        return GithubHook(github_conn_id=conn_id).get_conn()

    return client


@pytest.fixture(params=["local", "github"])
def tracker(request: pytest.FixtureRequest, app: App) -> TrackerFactory:
    """A factory of tracker sessions; each ``with`` block is one transaction."""
    add_ticket(app, "T-1")

    @contextmanager
    def local() -> Iterator[Tracker]:
        with app.uow() as session:
            yield LocalTracker(session)

    @contextmanager
    def github() -> Iterator[Tracker]:
        with app.uow() as session:
            yield GitHubIssuesTracker(session, github_client(), "acme/app", pace=False)  # type: ignore[arg-type]

    if request.param == "github":
        request.getfixturevalue("fake_github")
    return {"local": local, "github": github}[request.param]


def test_publish_is_idempotent_by_ticket(tracker: TrackerFactory) -> None:
    with tracker() as t:
        assert t.get(REPO, "T-1") is None
        first = t.publish(REPO, "T-1", title="F401 in a.py", body="unused import")
    with tracker() as t:
        again = t.publish(REPO, "T-1", title="F401 in a.py", body="unused import")
        assert again == first == t.get(REPO, "T-1")
    assert (first.state, first.title, first.body) == ("open", "F401 in a.py", "unused import")
    assert (first.close_reason, first.resolution) == (None, None)


def test_close_is_idempotent_and_keeps_the_first_reason(tracker: TrackerFactory) -> None:
    with tracker() as t:
        t.publish(REPO, "T-1", title="t", body="b")
    with tracker() as t:
        closed = t.close(REPO, "T-1", reason="fixed by #3")
    with tracker() as t:
        assert t.close(REPO, "T-1", reason="other", resolution="not_planned") == closed
        assert t.get(REPO, "T-1") == closed
    assert (closed.state, closed.close_reason) == ("closed", "fixed by #3")
    assert closed.resolution == "completed"


def test_close_as_not_planned(tracker: TrackerFactory) -> None:
    with tracker() as t:
        t.publish(REPO, "T-1", title="t", body="b")
        closed = t.close(REPO, "T-1", reason="won't fix", resolution="not_planned")
    assert (closed.state, closed.close_reason, closed.resolution) == (
        "closed",
        "won't fix",
        "not_planned",
    )


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (lambda t: t.publish(REPO, "T-404", title="t", body="b"), "'T-404' does not exist"),
        (
            lambda t: t.publish(
                REPO.model_copy(update={"repo_id": "s"}), "T-1", title="t", body="b"
            ),
            "'T-1' does not exist in repo 's'",
        ),
        (lambda t: t.close(REPO, "T-1", reason="r"), "'T-1' was never published"),
        (
            lambda t: t.close(REPO, "T-1", reason="r", resolution="wontfix"),
            "resolution 'wontfix' is not one of",
        ),
    ],
)
def test_bad_requests_are_refused_as_permanent(
    tracker: TrackerFactory, act: Callable[[Tracker], object], message: str
) -> None:
    from triloop.retry import Disposition, classify

    with tracker() as t, pytest.raises(TrackerError, match=message) as caught:
        act(t)
    assert classify(caught.value) is Disposition.PERMANENT
    with tracker() as t:
        assert t.get(REPO, "T-1") is None
