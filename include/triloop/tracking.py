"""Showing tickets to people: each repository's tracker (``repos.<id>.tracker`` in the policy).

Discovery publishes the tickets a scan created; the janitor closes the issue of a ticket it
closes. Each publish and close is an effect under a key derived from the repository and the
ticket (``tracker-publish:{repo}:{ticket}``, ``tracker-close:{repo}:{ticket}``), committed one
ticket at a time, so a retried or cleared task calls the tracker only for tickets it has not
done yet. The trackers are idempotent themselves too (GitHub's finds its issue by a marker), which
covers a crash between the tracker's answer and the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from triloop.adapters.local_tracker import LocalTracker
from triloop.adapters.protocols import Tracker, TrackerError
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.policy import TrackerPolicy
from triloop.domain.states import TicketState
from triloop.store import effects
from triloop.store.ledger import Actor, record
from triloop.store.models import Repo, Ticket

if TYPE_CHECKING:
    from github import Github

log = logging.getLogger(__name__)
NOT_SHOWN = (TicketState.SUPPRESSED.value, TicketState.CLOSED.value)
MAX_LISTED = 10


def github_client(conn_id: str) -> Github:
    """The PyGithub client of Airflow connection ``conn_id`` (providers-github's hook)."""
    from airflow.providers.github.hooks.github import GithubHook

    return GithubHook(github_conn_id=conn_id).get_conn()


def tracker_policy(app: App, repo_id: str) -> TrackerPolicy:
    repo = app.policy.repos.get(repo_id)
    return repo.tracker if repo is not None else TrackerPolicy()


def tracker_for(
    app: App, session: Session, repo_id: str, *, client: Callable[[str], Github] = github_client
) -> Tracker:
    """The tracker the policy names for ``repo_id``, on ``session``'s transaction."""
    chosen = tracker_policy(app, repo_id)
    if chosen.kind == "local":
        return LocalTracker(session)
    from triloop.adapters.github_tracker import GitHubIssuesTracker

    assert chosen.repo is not None  # the policy refuses a github tracker without one
    return GitHubIssuesTracker(
        session, lambda: client(chosen.conn_id), chosen.repo, label=chosen.label
    )


def ticket_body(ticket: Ticket) -> str:
    """The issue text: what was found where, and how to see the ticket in Triloop."""
    findings: list[dict[str, Any]] = list(ticket.findings or [])
    lines = [
        f"**{ticket.tool} {ticket.rule}** ({ticket.severity}) in `{ticket.path}`",
        "",
        f"{len(findings)} finding(s), priority {ticket.priority:.3f}:",
    ]
    for finding in findings[:MAX_LISTED]:
        where = f"{finding.get('path', ticket.path)}:{finding.get('line', '?')}"
        lines.append(f"- `{where}` {finding.get('message', '')}".rstrip())
    if len(findings) > MAX_LISTED:
        lines.append(f"- ... and {len(findings) - MAX_LISTED} more")
    lines += ["", f"Triloop ticket {ticket.id}: `triloop show {ticket.id}`"]
    return "\n".join(lines)


def publish_tickets(
    app: App,
    repo_id: str,
    ticket_ids: list[str],
    actor: Actor,
    *,
    client: Callable[[str], Github] = github_client,
) -> dict[str, str]:
    """Show each ticket of ``ticket_ids`` in ``repo_id``'s tracker; return ticket id to ref.

    Suppressed and closed tickets are not shown. A tracker error stops at that ticket (the
    ones before it stay published and are skipped when the task runs again).
    """
    shown: dict[str, str] = {}
    for ticket_id in ticket_ids:
        with app.uow() as session:
            ticket = session.get(Ticket, ticket_id)
            if ticket is None or ticket.repo_id != repo_id:
                raise TrackerError(f"ticket {ticket_id!r} does not exist in repo {repo_id!r}")
            if ticket.state in NOT_SHOWN:
                continue
            key = f"tracker-publish:{repo_id}:{ticket_id}"

            def act(ticket: Ticket = ticket, session: Session = session) -> dict[str, Any]:
                tracker = tracker_for(app, session, repo_id, client=client)
                repo = repo_ref(_repo(session, repo_id))
                issue = tracker.publish(
                    repo, ticket.id, title=ticket.title, body=ticket_body(ticket)
                )
                kind = tracker_policy(app, repo_id).kind
                return {"tracker": kind, "ref": issue.ref}

            result, acted = effects.once(session, key, "tracker_publish", act)
            if acted:
                record(
                    session,
                    actor,
                    "tracker.publish",
                    repo_id=repo_id,
                    ticket_id=ticket_id,
                    idempotency_key=key,
                    payload=result,
                )
            shown[ticket_id] = str(result["ref"])
    return shown


def close_tickets(
    app: App,
    ticket_ids: list[str],
    actor: Actor,
    *,
    reason: str,
    resolution: str = "completed",
    client: Callable[[str], Github] = github_client,
) -> list[str]:
    """Close the published issues of ``ticket_ids``; return the ids whose issue it closed.

    A tracker that fails leaves a ``tracker.close_failed`` ledger row naming the ticket and the
    error, and the others are still closed: the tickets themselves are closed already.
    """
    closed: list[str] = []
    for ticket_id in ticket_ids:
        try:
            with app.uow() as session:
                ticket = session.get(Ticket, ticket_id)
                repo_id = ticket.repo_id if ticket is not None else ""
                if effects.recorded(session, f"tracker-publish:{repo_id}:{ticket_id}") is None:
                    continue  # never shown: nothing to close
                key = f"tracker-close:{repo_id}:{ticket_id}"

                def act(
                    session: Session = session, repo_id: str = repo_id, ticket_id: str = ticket_id
                ) -> dict[str, Any]:
                    tracker = tracker_for(app, session, repo_id, client=client)
                    repo = repo_ref(_repo(session, repo_id))
                    issue = tracker.close(repo, ticket_id, reason=reason, resolution=resolution)
                    return {"ref": issue.ref, "reason": reason, "resolution": resolution}

                result, acted = effects.once(session, key, "tracker_close", act)
                if acted:
                    record(
                        session,
                        actor,
                        "tracker.close",
                        repo_id=repo_id,
                        ticket_id=ticket_id,
                        idempotency_key=key,
                        payload=result,
                    )
                    closed.append(ticket_id)
        except TrackerError as exc:
            log.warning("ticket %s: its issue was not closed: %s", ticket_id, exc)
            with app.uow() as session:
                record(
                    session,
                    actor,
                    "tracker.close_failed",
                    outcome="error",
                    ticket_id=ticket_id,
                    error=str(exc),
                    payload={"transient": exc.transient},
                )
    return closed


def _repo(session: Session, repo_id: str) -> Repo:
    row = session.get(Repo, repo_id)
    if row is None:
        raise TrackerError(f"repo {repo_id!r} does not exist")
    return row
