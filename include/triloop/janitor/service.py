"""Janitor: reap expired leases, close tickets whose finding is gone, clean up after runs."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from triloop.bootstrap import App
from triloop.domain.states import TicketState
from triloop.janitor import containers, egress
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import LedgerEntry, Repo, Scan, Ticket
from triloop.workspace import remove_workspace

log = logging.getLogger(__name__)
OPEN_UNSTARTED = (TicketState.NEW.value, TicketState.TRIAGED.value, TicketState.READY.value)
S = TicketState
TERMINAL = tuple(s.value for s in (S.MERGED, S.VERIFIED, S.REVERTED, S.CLOSED, S.DEAD_LETTER))
WORKSPACE_RETENTION_S = 3600
LOST_LEASE_ACTIONS = ("ticket.lease_expired", "ticket.abandon", "lease.lost")


def reap_leases(app: App, actor: Actor, now: datetime | None = None) -> list[str]:
    """Return expired leases to ready; the ledger says who lost each one."""
    with app.uow() as session:
        reaped = []
        for ticket in ticket_store.expired_leases(session, now):
            lost_by = ticket.lease_owner
            used = ticket_store.attempts_used(ticket)
            ctx = {"attempts": used, "max_attempts": app.policy.max_attempts}
            event = "lease_expired" if used < app.policy.max_attempts else "abandon"
            ticket_store.transition(
                session, ticket, event, actor, context=ctx, payload={"lost_by": lost_by}
            )
            reaped.append(ticket.id)
        record(session, actor, "janitor.reap_leases", payload={"reaped": reaped})
        return reaped


def remove_orphaned_sandboxes(
    app: App, actor: Actor, client: Any, now: datetime | None = None
) -> list[str]:
    """Remove sandbox containers nobody waits for; the ledger lists what was removed.

    Exited ones; running ones past twice the policy's wall clock; and running ones whose DAG
    run lost the lease on their ticket (``io.triloop.ticket_id`` and run labels) while no
    longer holding it: a worker killed mid-run leaves its container running, and once
    :func:`reap_leases` has taken the ticket back the container's work can never be used.
    A container counts as orphaned only when this database's ledger records that its run
    lost that ticket, so containers of another installation on the same engine are left alone.
    """
    lost = _lost_runs(app, containers.sandboxes(client, running_only=True))

    def orphaned(labels: Any) -> bool:
        return (labels.get(containers.TICKET_LABEL), containers.run_owner(labels)) in lost

    max_running = timedelta(seconds=2 * app.policy.sandbox_wall_clock_s)
    removed = containers.remove_finished_sandboxes(client, max_running, now, orphaned=orphaned)
    egress_removed = egress.remove_finished_egress(client, now)  # proxies and their networks
    with app.uow() as session:
        orphans = sorted(f"{ticket}@{owner}" for ticket, owner in lost)
        record(
            session,
            actor,
            "janitor.remove_sandboxes",
            payload={"removed": removed, "lost_leases": orphans, "egress_removed": egress_removed},
        )
    return removed


def _lost_runs(app: App, running: list[Any]) -> set[tuple[str, str]]:
    """(ticket, run) pairs among ``running`` sandboxes whose run lost and no longer holds
    the ticket's lease, according to the ledger."""
    wanted = {
        (labels[containers.TICKET_LABEL], owner)
        for labels in (c.labels or {} for c in running)
        if labels.get(containers.TICKET_LABEL) and (owner := containers.run_owner(labels))
    }
    if not wanted:
        return set()
    ticket_ids = sorted({ticket for ticket, _ in wanted})
    with app.uow() as session:
        holders = {
            ticket_id: owner
            for ticket_id, owner in session.execute(
                select(Ticket.id, Ticket.lease_owner).where(Ticket.id.in_(ticket_ids))
            ).tuples()
        }
        rows = session.execute(
            select(LedgerEntry.ticket_id, LedgerEntry.payload)
            .where(LedgerEntry.ticket_id.in_(ticket_ids))
            .where(LedgerEntry.action.in_(LOST_LEASE_ACTIONS))
        ).tuples()
        lost = {(str(t), str(p.get("lost_by") or p.get("owner"))) for t, p in rows if p}
    return {(t, o) for t, o in wanted & lost if t in holders and holders[t] != o}


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
    from triloop.tracking import close_tickets  # their issues too (GitHub: network, so after)

    close_tickets(app, closed, actor, reason="the latest scan no longer reports its finding")
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
    """An operator sends a dead-lettered or needs-human ticket back to ready.

    A dead letter gets a fresh round of attempts; a ticket a budget stopped keeps its round (it
    used no more attempts than it had). Either way ``attempts`` keeps counting, so the next
    attempt gets a number (claim, effects, run record, branch) never used before.
    """
    with app.uow() as session:
        ticket = ticket_store.get(session, ticket_id)
        spent, source = ticket.attempts, ticket.state
        ticket_store.transition(
            session, ticket, "requeue", actor, payload={"attempts_before": spent}
        )
        if source != TicketState.NEEDS_HUMAN.value:
            ticket.attempts_base = ticket.attempts
        return ticket
