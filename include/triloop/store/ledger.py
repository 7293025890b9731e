"""Who did what: the actor behind every ledger row, and the functions that write rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from triloop.store.models import LedgerEntry, utcnow


@dataclass(frozen=True)
class Actor:
    """The task try (or CLI user) acting; built from an Airflow context at the edge."""

    name: str
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    try_number: int | None = None
    map_index: int | None = None

    @property
    def run_owner(self) -> str:
        """Lease owner: the DAG run, so a cleared and re-run task finds its own claims."""
        return f"{self.dag_id}/{self.run_id}" if self.dag_id else self.name

    @classmethod
    def from_airflow_context(cls, context: Mapping[str, Any]) -> Actor:
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            name=f"airflow:{ti.dag_id}.{ti.task_id}",
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=getattr(ti, "try_number", None),
            map_index=map_index if map_index is not None and map_index >= 0 else None,
        )


CLI = Actor(name="cli")


def record(session: Session, actor: Actor, action: str, **fields: Any) -> LedgerEntry:
    """Add one ledger row to the session's transaction (``fields``: see :func:`_columns`)."""
    entry = LedgerEntry(**_columns(actor, action, **fields))
    session.add(entry)
    return entry


def record_many(session: Session, actor: Actor, action: str, rows: list[dict[str, Any]]) -> None:
    """One row per item of ``rows`` (keyword arguments of :func:`record`), in one INSERT.

    For hot paths (claims): no ORM objects, so no identity-map bookkeeping and no per-row
    RETURNING of ids.
    """
    if rows:
        table = LedgerEntry.metadata.tables[LedgerEntry.__tablename__]
        values = [_columns(actor, action, **row) for row in rows]
        session.connection().execute(insert(table), values)


def _columns(
    actor: Actor,
    action: str,
    *,
    outcome: str = "ok",
    repo_id: str | None = None,
    ticket_id: str | None = None,
    pull_request_id: int | None = None,
    idempotency_key: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    error: str | None = None,
    tokens: int = 0,
    cost_usd: float = 0.0,
    duration_s: float = 0.0,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return dict(
        at=utcnow(),
        dag_id=actor.dag_id,
        run_id=actor.run_id,
        task_id=actor.task_id,
        try_number=actor.try_number,
        map_index=actor.map_index,
        actor=actor.name,
        action=action,
        outcome=outcome,
        repo_id=repo_id,
        ticket_id=ticket_id,
        pull_request_id=pull_request_id,
        idempotency_key=idempotency_key,
        from_state=from_state,
        to_state=to_state,
        error=error,
        tokens=tokens,
        cost_usd=cost_usd,
        duration_s=duration_s,
        payload=payload or {},
    )
