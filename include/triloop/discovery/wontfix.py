"""The won't-fix list's writes: ``triloop suppress TICKET|RULE[:PATH]`` (each with a ledger row).

:func:`triloop.discovery.suppression.screen` reads these rows with the policy's ``wont_fix``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from triloop.bootstrap import App
from triloop.domain.states import IllegalTransition
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import Suppression, Ticket


class SuppressError(ValueError):
    """A ``triloop suppress`` target that names nothing, or a reason left empty."""


def suppress(
    session: Session, actor: Actor, target: str, reason: str, repo_id: str | None = None
) -> Suppression:
    """Put a ticket (``T-...``: closed as won't-fix) or ``rule[:path]`` on the won't-fix list."""
    if not reason.strip():
        raise SuppressError(f"suppress {target!r}: --reason must say why")
    ticket = session.get(Ticket, target) if target.startswith("T-") else None
    if target.startswith("T-") and ticket is None:
        raise SuppressError(f"suppress {target!r}: no such ticket")
    if ticket is not None:
        row = Suppression(
            repo_id=ticket.repo_id,
            ticket_key=ticket.key,
            ticket_id=ticket.id,
            rule=ticket.rule,
            path=ticket.path,
            reason=reason,
            actor=actor.name,
        )
        if ticket.state != "closed":
            ticket_store.transition(session, ticket, "wont_fix", actor, payload={"reason": reason})
    else:
        rule, _, path = target.partition(":")
        if not rule:
            raise SuppressError(f"suppress {target!r}: give a ticket id or RULE[:PATH_GLOB]")
        row = Suppression(
            repo_id=repo_id, rule=rule, path=path or "**", reason=reason, actor=actor.name
        )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "suppression.add",
        repo_id=row.repo_id,
        ticket_id=row.ticket_id,
        idempotency_key=f"suppress:{row.id}",
        payload={"target": target, "rule": row.rule, "path": row.path, "reason": reason},
    )
    return row


def suppress_target(
    app: App, actor: Actor, target: str, reason: str, repo_id: str | None = None
) -> Suppression:
    """``triloop suppress``: a refusal changes nothing but its own ledger row."""
    try:
        with app.uow() as session:
            row = suppress(session, actor, target, reason, repo_id)
            session.expunge(row)
            return row
    except (SuppressError, IllegalTransition) as exc:
        with app.uow() as session:
            record(
                session,
                actor,
                "suppression.refused",
                outcome="refused",
                repo_id=repo_id,
                error=str(exc),
                payload={"target": target, "reason": reason},
            )
        raise
