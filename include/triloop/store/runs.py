"""Harness runs: one row per (ticket, attempt), the figures budgets and the breaker read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triloop.domain.breaker import RunRecord
from triloop.domain.budget import DailySpend, utc_day
from triloop.store.models import HarnessRun


def find(session: Session, ticket_id: str, attempt: int) -> HarnessRun | None:
    return session.scalars(
        select(HarnessRun).where(HarnessRun.ticket_id == ticket_id, HarnessRun.attempt == attempt)
    ).one_or_none()


def add_once(session: Session, run: HarnessRun) -> tuple[HarnessRun, bool]:
    """Record ``run`` unless its (ticket, attempt) has one; return (the row, added)."""
    earlier = find(session, run.ticket_id, run.attempt)
    if earlier is not None:
        return earlier, False
    session.add(run)
    session.flush()
    return run, True


def latest(session: Session, *, since_id: int, limit: int) -> list[RunRecord]:
    """The newest ``limit`` runs with an id above ``since_id``, oldest first."""
    rows = session.scalars(
        select(HarnessRun)
        .where(HarnessRun.id > since_id)
        .order_by(HarnessRun.id.desc())
        .limit(limit)
    ).all()
    return [record_of(row) for row in reversed(rows)]


def record_of(row: HarnessRun) -> RunRecord:
    return RunRecord(row.ticket_id, row.run_owner, row.status, row.summary)


def newest_id(session: Session) -> int:
    return int(session.scalar(select(func.max(HarnessRun.id))) or 0)


def daily_spend(session: Session, day: datetime) -> DailySpend:
    """Dollars recorded runs spent in ``day``'s UTC day, in all and per repository."""
    start, end = utc_day(day)
    rows = session.execute(
        select(HarnessRun.repo_id, func.coalesce(func.sum(HarnessRun.cost_usd), 0.0))
        .where(HarnessRun.finished_at >= start, HarnessRun.finished_at < end)
        .group_by(HarnessRun.repo_id)
    ).all()
    per_repo = {repo: float(usd) for repo, usd in rows}
    return DailySpend(total_usd=sum(per_repo.values()), per_repo_usd=per_repo)
