"""Budgets and the circuit breaker in execution: what claim() may take, what finish() records.

claim() asks :func:`claim_gate` first (breaker open, daily cost limits) and reports with
:func:`settle_claim`; finish() hands every harness outcome to :func:`settle_run`, which records
it once per (ticket, attempt), moves the breaker, and stops an over-budget ticket in
needs_human. Each writes its ledger rows in the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from triloop.bootstrap import App
from triloop.domain import breaker
from triloop.domain.budget import (
    Usage,
    daily_verdict,
    exceeded,
    ticket_budget,
)
from triloop.domain.contracts import Budget, Claim, HarnessRequest, HarnessResult
from triloop.domain.states import TicketState
from triloop.sandbox_files import SandboxFileError, read_sandbox_file
from triloop.store import breaker as breaker_store
from triloop.store import effects, runs
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import HarnessRun, Ticket

log = logging.getLogger(__name__)

METER = Path("egress", "usage.json")
MAX_METER_BYTES = 1 << 20
"""Where the egress proxy leaves its meter, relative to the run's output directory."""


class EgressMeter(BaseModel):
    """The egress proxy's count of one run's model traffic (``<output_dir>/egress/usage.json``)."""

    model_config = ConfigDict(extra="ignore")
    schema_version: int = 1
    requests: int = Field(default=0, ge=0)
    tokens: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    over_budget: str = Field(default="", description="The limit the proxy enforced, or empty")


def read_meter(output_dir: Path) -> EgressMeter | None:
    """The proxy's meter if the run had one; an unreadable one is logged and ignored."""
    path = output_dir / METER
    try:
        return EgressMeter.model_validate_json(read_sandbox_file(path, MAX_METER_BYTES))
    except FileNotFoundError:
        return None
    except (ValidationError, OSError, UnicodeDecodeError, SandboxFileError) as exc:
        log.warning("ignoring unreadable egress meter %s: %s", path, exc)
        return None


class Claims(list[Claim]):
    """One run's claims; ``reason`` says why budgets or the breaker held claims back."""

    def __init__(self, claims: Iterable[Claim] = (), reason: str = "") -> None:
        super().__init__(claims)
        self.reason = reason


@dataclass(frozen=True)
class ClaimGate:
    """What this claim may take: nothing (``reason``), one trial ticket, or a batch that
    leaves out the repositories over their daily cost limit (``held_repos``)."""

    reason: str = ""
    trial: bool = False
    held_repos: Mapping[str, str] = field(default_factory=dict)

    def limit(self, batch: int) -> int:
        return 1 if self.trial else batch


def claim_gate(session: Session, app: App, actor: Actor) -> ClaimGate:
    """Ask the breaker and today's spend whether to claim; move an open breaker whose
    cooldown is over to half_open (one trial)."""
    now = datetime.now(UTC)
    row = breaker_store.load(session)
    view = breaker_store.view(row)
    verdict = breaker.gate(view, app.policy.circuit_breaker, now, _trial_busy(session, view))
    if verdict.reason:
        return ClaimGate(reason=verdict.reason)
    daily = daily_verdict(runs.daily_spend(session, now), app.policy.budgets, now)
    if daily.reason:
        return ClaimGate(reason=daily.reason)
    if verdict.event:
        cooldown = app.policy.circuit_breaker.cooldown_s
        reason = f"cooldown of {cooldown} s over: one trial run decides (opened: {row.reason})"
        breaker_store.move(session, row, verdict.event, reason, actor)
    return ClaimGate(trial=verdict.trial, held_repos=daily.held_repos)


def _trial_busy(session: Session, view: breaker.BreakerView) -> bool:
    if view.state is not breaker.BreakerState.HALF_OPEN or not view.trial_ticket:
        return False
    ticket = session.get(Ticket, view.trial_ticket)
    leased = (TicketState.CLAIMED.value, TicketState.RUNNING.value)
    return ticket is not None and ticket.state in leased and ticket.lease_owner == view.trial_owner


def settle_claim(session: Session, gate: ClaimGate, claimed: list[Ticket], actor: Actor) -> str:
    """Record what held claims back; return why nothing was claimed, if budgets or the
    breaker are why ("" otherwise)."""
    if gate.reason:
        record(session, actor, "execution.paused", outcome="paused", error=gate.reason)
        return gate.reason
    if gate.trial and claimed:
        row = breaker_store.load(session)
        row.trial_owner, row.trial_ticket = actor.run_owner, claimed[0].id
        record(
            session,
            actor,
            "breaker.trial",
            outcome="half_open",
            repo_id=claimed[0].repo_id,
            ticket_id=claimed[0].id,
            payload={"scope": row.scope, "trial_owner": actor.run_owner},
        )
    if gate.held_repos:
        held = "; ".join(gate.held_repos.values())
        record(
            session,
            actor,
            "execution.held",
            outcome="held",
            error=held,
            payload={"repos": sorted(gate.held_repos)},
        )
        return "" if claimed else held
    return ""


def settle_run(
    session: Session,
    app: App,
    ticket: Ticket,
    request: HarnessRequest,
    actor: Actor,
    attempt_key: str,
    result: HarnessResult | None,
    status: str = "died",
) -> bool:
    """Record this attempt's harness run once (``status`` when there is no ``result``: died,
    invalid), let it move the breaker, and stop an over-budget ticket in needs_human.

    Returns True when the ticket went to needs_human: the attempt is over (its effect is
    recorded under ``attempt_key``) and no pull request may be opened.
    """
    meter = read_meter(Path(request.output_dir))
    usage = Usage(
        tokens=max(result.tokens if result else 0, meter.tokens if meter else 0),
        cost_usd=result.cost_usd if result else 0.0,
        runtime_s=result.duration_s if result else 0.0,
    )
    reported = {"egress proxy": meter.over_budget if meter else ""}
    if result is not None and result.status == "over_budget":
        reported = {"harness": result.over_budget or "unnamed", **reported}
    over = exceeded(usage, request.budget, reported)
    now = datetime.now(UTC)
    run, added = runs.add_once(
        session,
        HarnessRun(
            ticket_id=ticket.id,
            repo_id=ticket.repo_id,
            harness=request.harness,
            attempt=request.attempt or ticket.attempts,
            status="over_budget" if over else (result.status if result else status),
            tokens=usage.tokens,
            cost_usd=usage.cost_usd,
            duration_s=usage.runtime_s,
            over_budget=over.limit if over else "",
            summary=(result.summary if result else "")[:2000],
            run_owner=actor.run_owner,
            started_at=now - timedelta(seconds=usage.runtime_s) if usage.runtime_s else None,
            finished_at=now,
        ),
    )
    if added:
        _breaker_after(session, app, run, actor)
    if over is None:
        return False
    ticket_store.transition(
        session,
        ticket,
        "over_budget",
        actor,
        error=over.message,
        payload={
            "limit": over.limit,
            "used": over.used,
            "max": over.maximum,
            "source": over.source,
            "tokens": usage.tokens,
            "cost_usd": usage.cost_usd,
            "runtime_s": usage.runtime_s,
        },
    )
    effects.once(session, attempt_key, "finish", lambda: {"pr": None, "over_budget": over.limit})
    return True


def _breaker_after(session: Session, app: App, run: HarnessRun, actor: Actor) -> None:
    rules = app.policy.circuit_breaker
    row = breaker_store.load(session)
    history = runs.latest(
        session,
        since_id=row.since_run_id,
        limit=max(rules.window_runs, rules.consecutive_failures),
    )
    move = breaker.after_run(breaker_store.view(row), runs.record_of(run), history, rules)
    if move is not None:
        breaker_store.move(session, row, move.event, move.reason, actor)


def request_budget(app: App) -> Budget:
    """The per-ticket limits prepare() puts in the HarnessRequest."""
    return ticket_budget(app.policy.budgets)


def reset_breaker(app: App, actor: Actor) -> str:
    """An operator closes the breaker by hand; says what happened."""
    with app.uow() as session:
        row = breaker_store.load(session)
        if row.state == breaker.BreakerState.CLOSED.value:
            return "circuit breaker is already closed: nothing to reset"
        source = row.state
        breaker_store.move(session, row, "reset", f"reset by {actor.name}", actor)
        return f"circuit breaker reset: {source} -> closed"
