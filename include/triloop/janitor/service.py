"""Janitor: reap expired leases, close tickets whose finding is gone, clean up after runs."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from triloop.bootstrap import App
from triloop.domain.states import TicketState
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import Repo, Scan, Ticket
from triloop.workspace import remove_workspace

log = logging.getLogger(__name__)
OPEN_UNSTARTED = (TicketState.NEW.value, TicketState.TRIAGED.value, TicketState.READY.value)
TERMINAL = (TicketState.MERGED.value, TicketState.CLOSED.value, TicketState.DEAD_LETTER.value)
WORKSPACE_RETENTION_S = 3600


def reap_leases(app: App, actor: Actor, now: datetime | None = None) -> list[str]:
    """Return expired leases to ready; the ledger says who lost each one."""
    with app.uow() as session:
        reaped = []
        for ticket in ticket_store.expired_leases(session, now):
            lost_by = ticket.lease_owner
            ctx = {"attempts": ticket.attempts, "max_attempts": app.policy.max_attempts}
            event = "lease_expired" if ticket.attempts < app.policy.max_attempts else "abandon"
            ticket_store.transition(
                session, ticket, event, actor, context=ctx, payload={"lost_by": lost_by}
            )
            reaped.append(ticket.id)
        record(session, actor, "janitor.reap_leases", payload={"reaped": reaped})
        return reaped


def close_resolved(app: App, actor: Actor) -> list[str]:
    """Close tickets nobody started whose finding the latest scan no longer reports."""
    closed: list[str] = []
    with app.uow() as session:
        for repo_id in session.scalars(select(Repo.id)).all():
            latest = session.scalar(
                select(Scan).where(Scan.repo_id == repo_id).order_by(Scan.id.desc()).limit(1)
            )
            if latest is None:
                continue
            seen = set(latest.ticket_keys)
            for ticket in session.scalars(
                select(Ticket).where(Ticket.repo_id == repo_id, Ticket.state.in_(OPEN_UNSTARTED))
            ).all():
                if ticket.key not in seen:
                    ticket_store.transition(
                        session,
                        ticket,
                        "resolve",
                        actor,
                        payload={
                            "reason": f"not reported by scan {latest.id} at {latest.head_sha}"
                        },
                    )
                    closed.append(ticket.id)
        record(session, actor, "janitor.close_resolved", payload={"closed": closed})
    return closed


def clean_workspaces(app: App, actor: Actor, retention_s: int = WORKSPACE_RETENTION_S) -> int:
    """Remove run workspaces older than the retention whose tickets are no longer active."""
    root = app.settings.workspaces_dir
    if not root.exists():
        return 0
    with app.uow() as session:
        active = set(
            session.scalars(
                select(Ticket.id).where(Ticket.state.not_in(TERMINAL + OPEN_UNSTARTED))
            ).all()
        )
    cutoff = time.time() - retention_s
    removed = 0
    for kind_dir in root.iterdir():
        for run_dir in kind_dir.iterdir() if kind_dir.is_dir() else []:
            if _busy(run_dir, active) or run_dir.stat().st_mtime > cutoff:
                continue
            remove_workspace(run_dir)
            removed += 1
    with app.uow() as session:
        record(session, actor, "janitor.clean_workspaces", payload={"removed": removed})
    return removed


def _busy(run_dir: Path, active: set[str]) -> bool:
    return any(run_dir.name.startswith(f"{tid}-") for tid in active)


def requeue(app: App, ticket_id: str, actor: Actor) -> Ticket:
    """An operator sends a dead-lettered ticket back to ready, with fresh attempts."""
    with app.uow() as session:
        ticket = ticket_store.get(session, ticket_id)
        spent = ticket.attempts
        ticket_store.transition(
            session, ticket, "requeue", actor, payload={"attempts_before": spent}
        )
        ticket.attempts = 0
        return ticket
