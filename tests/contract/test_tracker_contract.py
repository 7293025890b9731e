"""The Tracker contract: every implementation must pass these (GitHub Issues joins the list)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
from triloop.adapters.local_tracker import LocalTracker
from triloop.adapters.protocols import Tracker, TrackerError
from triloop.bootstrap import App
from triloop.domain.contracts import RepoRef

from tests.support.rows import add_ticket

TrackerFactory = Callable[[], AbstractContextManager[Tracker]]
REPO = RepoRef(repo_id="r", name="r", remote="/nowhere")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["local"])
def tracker(request: pytest.FixtureRequest, app: App) -> TrackerFactory:
    """A factory of tracker sessions; each ``with`` block is one transaction."""
    add_ticket(app, "T-1")

    @contextmanager
    def local() -> Iterator[Tracker]:
        with app.uow() as session:
            yield LocalTracker(session)

    return {"local": local}[request.param]


def test_publish_is_idempotent_by_ticket(tracker: TrackerFactory) -> None:
    with tracker() as t:
        assert t.get(REPO, "T-1") is None
        first = t.publish(REPO, "T-1", title="F401 in a.py", body="unused import")
    with tracker() as t:
        again = t.publish(REPO, "T-1", title="F401 in a.py", body="unused import")
        assert again == first == t.get(REPO, "T-1")
    assert (first.state, first.title, first.body) == ("open", "F401 in a.py", "unused import")


def test_close_is_idempotent_and_keeps_the_first_reason(tracker: TrackerFactory) -> None:
    with tracker() as t:
        t.publish(REPO, "T-1", title="t", body="b")
    with tracker() as t:
        closed = t.close(REPO, "T-1", reason="fixed by #3")
    with tracker() as t:
        assert t.close(REPO, "T-1", reason="fixed by #3") == closed
        assert t.get(REPO, "T-1") == closed
    assert (closed.state, closed.close_reason) == ("closed", "fixed by #3")


def test_unknown_tickets_are_refused(tracker: TrackerFactory) -> None:
    with tracker() as t, pytest.raises(TrackerError, match="'T-404' does not exist"):
        t.publish(REPO, "T-404", title="t", body="b")
    with tracker() as t, pytest.raises(TrackerError, match="'T-1' was never published"):
        t.close(REPO, "T-1", reason="r")
