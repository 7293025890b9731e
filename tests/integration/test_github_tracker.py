"""GitHub Issues through PyGithub against the fake GitHub: errors, lost answers, paging."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from github import Auth, Github
from triloop.adapters.github_tracker import GitHubIssuesTracker
from triloop.adapters.protocols import TrackerError
from triloop.bootstrap import App
from triloop.domain.contracts import RepoRef
from triloop.retry import Disposition, classify

from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_issues import FakeRepo, add_repo
from tests.support.rows import add_ticket

REPO = RepoRef(repo_id="r", name="r", remote="/nowhere")


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        add_repo(server, "acme/app")
        yield server


def client(fake: FakeGitHub, token: str = "test-token") -> Github:
    return Github(auth=Auth.Token(token), base_url=fake.base_url)


def raw(fake: FakeGitHub, method: str, path: str, body: Any = None, token: str | None = None):  # type: ignore[no-untyped-def]
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(fake.base_url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


@pytest.mark.parametrize(
    ("method", "path", "body", "token", "status", "message"),
    [
        ("GET", "/repos/acme/app", None, None, 401, "Requires authentication"),
        ("GET", "/repos/acme/app", None, "wrong", 401, "Bad credentials"),
        ("GET", "/repos/acme/nope", None, "test-token", 404, "Not Found"),
        ("GET", "/repos/acme/app/issues/7", None, "test-token", 404, "Not Found"),
        ("POST", "/repos/acme/app/issues", {"body": "no title"}, "test-token", 422, "Validation"),
        ("PATCH", "/repos/acme/app/issues/1", {"state": "gone"}, "test-token", 422, "Validation"),
    ],
)
def test_the_fake_answers_errors_as_github_does(
    fake: FakeGitHub,
    method: str,
    path: str,
    body: Any,
    token: str | None,
    status: int,
    message: str,
) -> None:
    raw(fake, "POST", "/repos/acme/app/issues", {"title": "one"}, "test-token")
    code, doc, headers = raw(fake, method, path, body, token)
    assert code == status
    assert doc["message"].startswith(message) and "documentation_url" in doc
    assert "x-ratelimit-remaining" in {k.lower() for k in headers}
    if status == 422:
        assert doc["errors"][0]["resource"] == "Issue"


def test_the_fake_pages_lists_with_link_headers(fake: FakeGitHub) -> None:
    repo: FakeRepo = fake.state["repos"]["acme/app"]
    gh = client(fake).get_repo("acme/app")
    for n in range(1, 36):
        raw(
            fake,
            "POST",
            "/repos/acme/app/issues",
            {"title": f"i{n}", "labels": ["x"]},
            "test-token",
        )
    code, page, headers = raw(
        fake, "GET", "/repos/acme/app/issues?labels=x&per_page=10", None, "test-token"
    )
    assert (code, len(page)) == (200, 10)
    assert 'rel="next"' in headers["Link"] and "page=4" in headers["Link"]
    assert sorted(i.number for i in gh.get_issues(state="all", labels=["x"])) == list(range(1, 36))
    assert fake.count("GET", "/repos/acme/app/issues") == 3  # PyGithub pages by 30: 2 pages
    assert len(repo.issues) == 35


@pytest.fixture
def tracker(app: App, fake: FakeGitHub) -> Any:
    """``tracker(act)`` runs ``act`` on a GitHub tracker in one transaction."""
    add_ticket(app, "T-1")

    def run(act: Any, token: str = "test-token", repository: str = "acme/app") -> Any:
        with app.uow() as session:
            gh = GitHubIssuesTracker(session, lambda: client(fake, token), repository, pace=False)
            return act(gh)

    return run


def publish(t: GitHubIssuesTracker) -> Any:
    return t.publish(REPO, "T-1", title="t", body="b")


@pytest.mark.parametrize(
    ("token", "repository", "status", "message"),
    [
        ("wrong", "acme/app", 401, "could not get repository acme/app: 401 Bad credentials"),
        ("test-token", "acme/gone", 404, "could not get repository acme/gone: 404 Not Found"),
    ],
)
def test_refusals_are_permanent_errors_with_status(
    tracker: Any, token: str, repository: str, status: int, message: str
) -> None:
    with pytest.raises(TrackerError, match=message) as caught:
        tracker(publish, token, repository)
    assert (caught.value.status, caught.value.transient) == (status, False)
    assert classify(caught.value) is Disposition.PERMANENT


@pytest.mark.parametrize(
    ("status", "message", "headers", "transient"),
    [
        (502, "Server Error", {}, True),
        (403, "API rate limit exceeded for user.", {"x_ratelimit_remaining": "0"}, True),
        (403, "Resource not accessible by integration", {}, False),
        (422, "Validation Failed", {}, False),
    ],
)
def test_create_errors_tell_transient_from_permanent(
    tracker: Any,
    fake: FakeGitHub,
    status: int,
    message: str,
    headers: dict[str, str],
    transient: bool,
) -> None:
    fake.fail_next("POST", r"/issues$", status, message, **headers)
    with pytest.raises(
        TrackerError, match=f"could not create the issue of T-1.*{status}"
    ) as caught:
        tracker(publish)
    assert (caught.value.status, caught.value.transient) == (status, transient)
    expected = Disposition.TRANSIENT if transient else Disposition.PERMANENT
    assert classify(caught.value) is expected
    assert tracker(publish).ref == "acme/app#1"


def test_rate_limited_reads_fail_transient_without_sleeping_until_reset(
    tracker: Any, fake: FakeGitHub
) -> None:
    fake.rate_limit_remaining = 0
    with pytest.raises(TrackerError, match="403") as caught:
        tracker(lambda t: t.get(REPO, "T-1"))
    assert caught.value.transient and classify(caught.value) is Disposition.TRANSIENT


def test_a_lost_create_answer_still_shows_the_ticket_once(tracker: Any, fake: FakeGitHub) -> None:
    fake.drop_next("POST", r"/repos/acme/app/issues$")
    with pytest.raises(TrackerError, match="could not create the issue of T-1") as caught:
        tracker(publish)
    assert caught.value.transient  # Airflow retries the task
    again = tracker(publish)
    issues = fake.state["repos"]["acme/app"].issues
    assert (again.ref, len(issues)) == ("acme/app#1", 1)
    assert fake.count("POST", "/repos/acme/app/issues") == 1  # the client never re-sent it


def test_a_stopped_server_is_a_transient_error(tracker: Any, fake: FakeGitHub) -> None:
    def stop_then_get(t: GitHubIssuesTracker) -> Any:
        assert t.get(REPO, "T-1") is None
        fake.stop()
        return t.get(REPO, "T-1")

    with pytest.raises(TrackerError, match="could not find the issue of T-1") as caught:
        tracker(stop_then_get)
    assert caught.value.transient


def test_the_issue_found_once_is_read_by_number(app: App, tracker: Any, fake: FakeGitHub) -> None:
    with app.uow() as session:
        t = GitHubIssuesTracker(session, lambda: client(fake), "acme/app", pace=False)
        t.publish(REPO, "T-1", title="t", body="b")
    lists = fake.count("GET", "/repos/acme/app/issues")
    with app.uow() as session:
        t = GitHubIssuesTracker(session, lambda: client(fake), "acme/app", pace=False)
        assert t.get(REPO, "T-1") is not None
    assert fake.count("GET", "/repos/acme/app/issues") == lists
    assert fake.count("GET", "/repos/acme/app/issues/1") == 1
    label = fake.state["repos"]["acme/app"].labels["triloop"]
    assert label["description"] == "Ticket raised by Triloop"
