"""The embedded tracker: tickets shown to people are records in Triloop's own database.

Each published ticket is an effect under ``tracker:{repo}:{ticket}`` (title, body) and its close
one under ``tracker-close:{repo}:{ticket}`` (reason): both written once, never rewritten, so a
retried or cleared task that publishes or closes again finds its earlier record.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from triloop.adapters.protocols import RESOLUTIONS, TrackerError, TrackerIssue
from triloop.domain.contracts import RepoRef
from triloop.store import effects
from triloop.store.models import Ticket


class LocalTracker:
    """Implements :class:`~triloop.adapters.protocols.Tracker` on a session's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def publish(self, repo: RepoRef, ticket_id: str, *, title: str, body: str) -> TrackerIssue:
        ticket = self.session.get(Ticket, ticket_id)
        if ticket is None or ticket.repo_id != repo.repo_id:
            raise TrackerError(f"ticket {ticket_id!r} does not exist in repo {repo.repo_id!r}")
        key = _key("tracker", repo, ticket_id)
        effects.once(self.session, key, "tracker_issue", lambda: {"title": title, "body": body})
        issue = self.get(repo, ticket_id)
        assert issue is not None
        return issue

    def get(self, repo: RepoRef, ticket_id: str) -> TrackerIssue | None:
        shown = effects.recorded(self.session, _key("tracker", repo, ticket_id))
        if shown is None:
            return None
        closed = effects.recorded(self.session, _key("tracker-close", repo, ticket_id))
        return TrackerIssue(
            ticket_id=ticket_id,
            ref=ticket_id,
            title=str(shown["title"]),
            body=str(shown["body"]),
            state="closed" if closed else "open",
            close_reason=str(closed["reason"]) if closed else None,
            resolution=str(closed.get("resolution", "completed")) if closed else None,
        )

    def close(
        self, repo: RepoRef, ticket_id: str, *, reason: str, resolution: str = "completed"
    ) -> TrackerIssue:
        if resolution not in RESOLUTIONS:
            raise TrackerError(f"resolution {resolution!r} is not one of {list(RESOLUTIONS)}")
        if self.get(repo, ticket_id) is None:
            raise TrackerError(f"ticket {ticket_id!r} was never published in {repo.repo_id!r}")
        key = _key("tracker-close", repo, ticket_id)
        record = {"reason": reason, "resolution": resolution}
        effects.once(self.session, key, "tracker_close", lambda: record)
        issue = self.get(repo, ticket_id)
        assert issue is not None
        return issue


def _key(prefix: str, repo: RepoRef, ticket_id: str) -> str:
    return f"{prefix}:{repo.repo_id}:{ticket_id}"
