"""Discovery shows new tickets in each repo's tracker once, even when re-run; the janitor
closes their issues. GitHub through the hook against the fake GitHub on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from triloop.adapters.protocols import TrackerError
from triloop.bootstrap import App
from triloop.domain.policy import RepoPolicy, TrackerPolicy
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry
from triloop.tracking import close_tickets, publish_tickets

from tests.support.fake_github import FakeGitHub
from tests.support.fake_github_issues import add_repo
from tests.support.rows import add_ticket

ACTOR = Actor(name="test", dag_id="triloop_discovery", run_id="r1", task_id="repo.show_in_tracker")
CONN = "triloop_github_tracking"


def ledger(app: App, action: str) -> int:
    with app.uow() as session:
        return int(session.scalar(select(func.count()).where(LedgerEntry.action == action)) or 0)


@pytest.fixture
def github_app(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[App, FakeGitHub]]:
    """``app`` whose repo ``r`` shows tickets in acme/app on the fake GitHub."""
    with FakeGitHub() as fake:
        add_repo(fake, "acme/app")
        conn = {"conn_type": "github", "host": fake.base_url, "password": "test-token"}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
        tracker = TrackerPolicy(kind="github", conn_id=CONN, repo="acme/app")
        policy = app.policy.model_copy(update={"repos": {"r": RepoPolicy(tracker=tracker)}})
        yield App(settings=app.settings, policy=policy), fake


def test_local_publish_is_idempotent_under_rerun(app: App) -> None:
    for tid in ("T-1", "T-2"):
        add_ticket(app, tid, state="new")
    add_ticket(app, "T-3", state="suppressed")
    first = publish_tickets(app, "r", ["T-1", "T-2", "T-3"], ACTOR)
    again = publish_tickets(app, "r", ["T-1", "T-2", "T-3"], ACTOR)
    assert first == again == {"T-1": "T-1", "T-2": "T-2"}
    assert ledger(app, "tracker.publish") == 2


def test_github_publish_survives_a_lost_answer_and_a_rerun(
    github_app: tuple[App, FakeGitHub],
) -> None:
    app, fake = github_app
    for tid in ("T-1", "T-2"):
        add_ticket(app, tid, state="new")
    fake.drop_next("POST", r"/repos/acme/app/issues$")  # T-1 created, its answer lost
    with pytest.raises(TrackerError, match="could not create the issue of T-1") as caught:
        publish_tickets(app, "r", ["T-1", "T-2"], ACTOR)
    assert caught.value.transient
    shown = publish_tickets(app, "r", ["T-1", "T-2"], ACTOR)  # Airflow's retry
    assert shown == {"T-1": "acme/app#1", "T-2": "acme/app#2"}
    assert publish_tickets(app, "r", ["T-1", "T-2"], ACTOR) == shown  # a cleared task
    issues = fake.state["repos"]["acme/app"].issues
    assert sorted(i["title"] for i in issues.values()) == ["F401 in a.py", "F401 in a.py"]
    assert "Triloop ticket T-1: `triloop show T-1`" in issues[1]["body"]
    assert "<!-- triloop:ticket=T-1 -->" in issues[1]["body"]
    assert (fake.count("POST", "/repos/acme/app/issues"), ledger(app, "tracker.publish")) == (2, 2)


def test_janitor_closes_published_issues_once(github_app: tuple[App, FakeGitHub]) -> None:
    app, fake = github_app
    for tid in ("T-1", "T-2"):
        add_ticket(app, tid, state="new")
    publish_tickets(app, "r", ["T-1"], ACTOR)
    reason = "the latest scan no longer reports its finding"
    assert close_tickets(app, ["T-1", "T-2"], ACTOR, reason=reason) == ["T-1"]
    assert close_tickets(app, ["T-1", "T-2"], ACTOR, reason=reason) == []
    issue = fake.state["repos"]["acme/app"].issues[1]
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    comments = fake.state["repos"]["acme/app"].comments[1]
    assert [c["body"].split("\n")[0] for c in comments] == [f"Triloop closed this issue: {reason}"]
    assert ledger(app, "tracker.close") == 1


def test_a_tracker_failure_on_close_is_a_ledger_row(github_app: tuple[App, FakeGitHub]) -> None:
    app, fake = github_app
    add_ticket(app, "T-1", state="new")
    publish_tickets(app, "r", ["T-1"], ACTOR)
    fake.fail_next("PATCH", r"/issues/1$", 502, "Server Error")
    assert close_tickets(app, ["T-1"], ACTOR, reason="gone") == []
    with app.uow() as session:
        row = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "tracker.close_failed")
        ).one()
    assert row.ticket_id == "T-1" and "502 Server Error" in str(row.error)
    assert row.payload == {"transient": True}


@pytest.mark.parametrize(
    ("tracker", "message"),
    [
        ({"kind": "jira"}, "tracker kind 'jira' is not one of"),
        ({"kind": "github"}, "a github tracker needs repo: owner/name, not None"),
        ({"kind": "github", "repo": "noslash"}, "needs repo: owner/name, not 'noslash'"),
        ({"kind": "local", "token": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_tracker_policies_are_refused(tracker: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RepoPolicy.model_validate({"tracker": tracker})
