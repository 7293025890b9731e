"""What the factory is doing, gathered once for ``triloop status`` and the Airflow UI page.

:func:`read_status` reads in one read-only transaction (on SQLite it takes no write lock, so a
status page polled by monitoring never queues behind claims) and writes nothing: a breaker row
that was never made reads as closed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from triloop.bootstrap import App
from triloop.domain import breaker
from triloop.domain.budget import utc_day
from triloop.domain.contracts import Finding
from triloop.domain.states import TicketState
from triloop.store import breaker as breaker_store
from triloop.store import runs
from triloop.store.db import READ_ONLY, engine_for
from triloop.store.models import (
    CircuitBreaker,
    EscapedDefect,
    LedgerEntry,
    PullRequest,
    Repo,
    Ticket,
)

LOOPS = (
    "triloop_discovery",
    "triloop_execution",
    "triloop_governance",
    "triloop_verification",
    "triloop_janitor",
)
LEDGER_ROWS = 25


class BreakerStatus(BaseModel):
    state: str = Field(description="closed, open or half_open")
    reason: str = Field(default="", description="Why it last moved")
    opened_at: datetime | None = None
    half_opens_at: datetime | None = Field(default=None, description="When open: cooldown end")
    trial_ticket: str | None = None

    @property
    def line(self) -> str:
        """One line for a terminal: the state, why, and what happens next."""
        if self.state == breaker.BreakerState.OPEN and self.half_opens_at:
            due = f"{self.half_opens_at:%Y-%m-%d %H:%M:%S}"
            return f"open ({self.reason}); half-opens at {due} UTC"
        if self.state == breaker.BreakerState.OPEN:
            return f"open ({self.reason})"
        if self.state == breaker.BreakerState.HALF_OPEN:
            trial = self.trial_ticket or "none yet"
            return f"half_open: trial ticket {trial}, a success closes it ({self.reason})"
        return self.state


class Spend(BaseModel):
    day: str = Field(description="The UTC day, ISO format")
    total_usd: float
    global_limit_usd: float
    per_repo_usd: dict[str, float]
    repo_limit_usd: float


class TicketLine(BaseModel):
    id: str
    repo_id: str
    title: str = Field(description="Untrusted text from a scanner or tracker")
    reason: str = Field(default="", description="The ticket's last error")


class WaitingLine(BaseModel):
    """Tickets no harness takes, per repository, rule and reason (triaged, harness unset)."""

    repo_id: str
    rule: str
    tickets: int
    reason: str = Field(description="Why no harness takes them, and what to change")


class PullRequestLine(BaseModel):
    repo_id: str
    number: int
    state: str
    branch: str
    title: str
    merge_sha: str = ""


class LedgerLine(BaseModel):
    id: int
    at: datetime
    actor: str
    run: str = Field(description="dag_id/run_id, or the actor outside a DAG run")
    task: str
    action: str
    ticket_id: str | None
    move: str
    outcome: str
    error: str = ""


class StatusReport(BaseModel):
    """The factory's state at ``generated_at``."""

    schema_version: int = 1
    generated_at: datetime
    database: str = Field(description="SQLAlchemy URL with any password masked")
    repos: list[str]
    breaker: BreakerStatus
    spend: Spend
    tickets_by_state: dict[str, int]
    dead_letters: list[TicketLine]
    needs_human: list[TicketLine]
    waiting_for_harness: list[WaitingLine] = Field(
        default_factory=list, description="Triaged tickets no harness takes, and why"
    )
    pull_requests: dict[str, int] = Field(description="Counts: open, merged, total")
    open_pull_requests: list[PullRequestLine]
    merged_pull_requests: list[PullRequestLine] = Field(description="The last ten merged")
    verification: dict[str, int] = Field(
        default_factory=dict,
        description="Post-merge verification: verified and reverted merges, escaped defects",
    )
    last_runs: dict[str, str | None] = Field(description="Per loop: its newest ledger row")
    ledger: list[LedgerLine] = Field(description="The newest ledger rows, newest first")


@contextmanager
def read_only_session(app: App) -> Iterator[Session]:
    """A session in one transaction that only reads (``BEGIN`` without IMMEDIATE on SQLite)."""
    with engine_for(app.settings.db_url).connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        with Session(bind=conn) as session, session.begin():
            yield session


def read_status(app: App, ledger_rows: int = LEDGER_ROWS) -> StatusReport:
    with read_only_session(app) as session:
        return gather(session, app, ledger_rows)


def gather(session: Session, app: App, ledger_rows: int = LEDGER_ROWS) -> StatusReport:
    now = datetime.now(UTC)
    prs = session.scalars(select(PullRequest).order_by(PullRequest.id)).all()
    open_prs = [_pr(p) for p in prs if p.state == "open"]
    merged = [_pr(p) for p in prs if p.state == "merged"]
    by_state = session.execute(
        select(Ticket.state, func.count()).group_by(Ticket.state).order_by(Ticket.state)
    ).all()
    return StatusReport(
        generated_at=now,
        database=make_url(app.settings.db_url).render_as_string(hide_password=True),
        repos=list(session.scalars(select(Repo.id).order_by(Repo.id))),
        breaker=breaker_status(session, app),
        spend=spend(session, app, now),
        tickets_by_state={state: count for state, count in by_state},
        dead_letters=_tickets_in(session, TicketState.DEAD_LETTER),
        needs_human=_tickets_in(session, TicketState.NEEDS_HUMAN),
        waiting_for_harness=_waiting(session, app),
        pull_requests={"open": len(open_prs), "merged": len(merged), "total": len(prs)},
        open_pull_requests=open_prs,
        merged_pull_requests=merged[-10:],
        verification=_verification(session),
        last_runs={dag_id: _last_run(session, dag_id) for dag_id in LOOPS},
        ledger=_ledger(session, ledger_rows),
    )


def breaker_status(session: Session, app: App) -> BreakerStatus:
    row = session.scalars(
        select(CircuitBreaker).where(CircuitBreaker.scope == breaker_store.GLOBAL)
    ).one_or_none()
    if row is None:  # made on first claim; never made means never tripped
        return BreakerStatus(state=breaker.BreakerState.CLOSED.value)
    view = breaker_store.view(row)
    return BreakerStatus(
        state=view.state.value,
        reason=view.reason,
        opened_at=view.opened_at,
        half_opens_at=breaker.half_opens_at(view, app.policy.circuit_breaker),
        trial_ticket=view.trial_ticket,
    )


def spend(session: Session, app: App, now: datetime) -> Spend:
    """Today's spend (UTC day) against the daily limits."""
    daily, limits = runs.daily_spend(session, now), app.policy.budgets
    return Spend(
        day=utc_day(now)[0].date().isoformat(),
        total_usd=daily.total_usd,
        global_limit_usd=limits.global_daily_cost_usd,
        per_repo_usd=dict(sorted(daily.per_repo_usd.items())),
        repo_limit_usd=limits.repo_daily_cost_usd,
    )


def _tickets_in(session: Session, state: TicketState) -> list[TicketLine]:
    rows = session.scalars(
        select(Ticket).where(Ticket.state == state.value).order_by(Ticket.updated_at)
    ).all()
    return [
        TicketLine(id=t.id, repo_id=t.repo_id, title=t.title, reason=t.last_error or "")
        for t in rows
    ]


def _waiting(session: Session, app: App) -> list[WaitingLine]:
    """Triaged tickets without a harness, counted per repository, rule and reason."""
    from triloop.discovery.upsert import why_no_harness

    counts: Counter[tuple[str, str, str]] = Counter()
    rows = session.execute(
        select(Ticket.repo_id, Ticket.rule, Ticket.findings).where(
            Ticket.state == TicketState.TRIAGED.value, Ticket.harness.is_(None)
        )
    ).tuples()
    for repo_id, rule, findings in rows:
        parsed = [Finding.model_validate(f) for f in findings or []]
        counts[(repo_id, rule, why_no_harness(app.policy, repo_id, parsed))] += 1
    return [
        WaitingLine(repo_id=repo_id, rule=rule, tickets=n, reason=reason)
        for (repo_id, rule, reason), n in sorted(counts.items())
    ]


def _pr(pr: PullRequest) -> PullRequestLine:
    return PullRequestLine(
        repo_id=pr.repo_id,
        number=pr.number,
        state=pr.state,
        branch=pr.branch,
        title=pr.title,
        merge_sha=pr.merge_sha or "",
    )


def _verification(session: Session) -> dict[str, int]:
    states = (TicketState.VERIFIED.value, TicketState.REVERTED.value)
    rows = session.execute(
        select(Ticket.state, func.count()).where(Ticket.state.in_(states)).group_by(Ticket.state)
    ).tuples()
    counts = {state: int(n) for state, n in rows}
    defects = session.scalar(select(func.count()).select_from(EscapedDefect)) or 0
    return {
        "verified": counts.get(TicketState.VERIFIED.value, 0),
        "reverted": counts.get(TicketState.REVERTED.value, 0),
        "escaped_defects": int(defects),
    }


def _last_run(session: Session, dag_id: str) -> str | None:
    last = session.scalar(
        select(LedgerEntry)
        .where(LedgerEntry.dag_id == dag_id)
        .order_by(LedgerEntry.id.desc())
        .limit(1)
    )
    return f"{last.at:%Y-%m-%d %H:%M:%S} {last.run_id} ({last.action})" if last else None


def _ledger(session: Session, limit: int) -> list[LedgerLine]:
    rows = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(limit))
    return [
        LedgerLine(
            id=row.id,
            at=row.at,
            actor=row.actor,
            run=f"{row.dag_id or row.actor}/{row.run_id or '-'}",
            task=f"{row.task_id or '-'}#{row.try_number or 0}",
            action=row.action,
            ticket_id=row.ticket_id,
            move=f"{row.from_state or ''}->{row.to_state or ''}" if row.to_state else "",
            outcome=row.outcome,
            error=row.error or "",
        )
        for row in rows
    ]
