"""Suppression against the store: the verdict for each candidate group of a scan.

:func:`screen` is called by the upsert with the scan's groups. It reads what it needs in a few
bulk queries, reopens escalated tickets, writes one ledger row per suppression, deferral and
reopen, and returns the verdicts; the upsert then writes only the groups whose verdict
``upserts``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from triloop.domain.contracts import Finding
from triloop.domain.policy import Policy, WontFix
from triloop.domain.suppression import (
    OPEN_STATES,
    QUIET_STATES,
    Candidate,
    Capacity,
    Decision,
    Existing,
    Verdict,
    decide,
    rate_of,
    wont_fix_match,
)
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record_many
from triloop.store.models import Suppression, Ticket

log = logging.getLogger(__name__)
_CHUNK = 2000
_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def screen(
    session: Session,
    policy: Policy,
    repo_id: str,
    groups: Mapping[str, Sequence[Finding]],
    actor: Actor,
    *,
    scan_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Decision]:
    """The verdict for every group (ticket key -> findings) of one scan of ``repo_id``."""
    moment = now or datetime.now(UTC)
    scan_key = scan_key or f"{actor.run_owner}:{repo_id}"
    rules = policy.suppression
    existing = _existing(session, list(groups))
    entries, keyed = _wont_fix(session, policy, repo_id)
    capacity = _capacity(session, policy, repo_id, moment)
    decisions: dict[str, Decision] = {}
    rows: list[dict[str, Any]] = []
    for key in sorted(groups, key=lambda k: _order(k, groups[k])):
        first = groups[key][0]
        candidate = Candidate(key, repo_id, first.rule, first.path, rate_of(groups[key]))
        match = keyed.get(key) or wont_fix_match(entries, repo_id, first.rule, first.path)
        decision = decide(candidate, existing.get(key), match, capacity, rules, moment)
        decisions[key] = decision
        if decision.verdict is Verdict.REOPEN:
            _reopen(session, decision, candidate, actor)
        elif not decision.verdict.upserts:
            rows.append(_row(repo_id, scan_key, candidate, decision))
    for verdict in (Verdict.WONT_FIX, Verdict.COOLDOWN, Verdict.CLOSED, Verdict.DEFER):
        record_many(
            session,
            actor,
            f"suppression.{verdict.value}",
            [row for row in rows if row["payload"]["verdict"] == verdict.value],
        )
    if rows:
        log.info("repo %s: %d candidates suppressed or deferred", repo_id, len(rows))
    return decisions


def summary(decisions: Mapping[str, Decision]) -> dict[str, int]:
    """How many candidates got each verdict (for the scan's ledger row)."""
    counts: dict[str, int] = {}
    for decision in decisions.values():
        counts[decision.verdict.value] = counts.get(decision.verdict.value, 0) + 1
    return dict(sorted(counts.items()))


def _order(key: str, items: Sequence[Finding]) -> tuple[int, int, str]:
    """Most severe and largest groups first, so caps defer the least valuable."""
    return (-max(_RANK[f.severity] for f in items), -len(items), key)


def _existing(session: Session, keys: list[str]) -> dict[str, Existing]:
    found: dict[str, Existing] = {}
    quiet = [state.value for state in QUIET_STATES]
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = session.execute(
            select(Ticket.key, Ticket.id, Ticket.state, Ticket.updated_at).where(
                Ticket.key.in_(chunk)
            )
        ).all()
        quiet_ids = [r.id for r in rows if r.state in quiet]
        rates = {
            tid: rate_of(findings)
            for tid, findings in (
                session.execute(select(Ticket.id, Ticket.findings).where(Ticket.id.in_(quiet_ids)))
                if quiet_ids
                else []
            )
        }
        for r in rows:
            since = r.updated_at if r.updated_at.tzinfo else r.updated_at.replace(tzinfo=UTC)
            found[r.key] = Existing(r.id, r.state, since, rates.get(r.id))
    return found


def _wont_fix(
    session: Session, policy: Policy, repo_id: str
) -> tuple[list[WontFix], dict[str, WontFix]]:
    """(rule/path entries from the policy and the CLI, {ticket key: entry} from the CLI)."""
    entries = list(policy.suppression.wont_fix)
    keyed: dict[str, WontFix] = {}
    rows = session.scalars(
        select(Suppression).where(
            or_(Suppression.repo_id == repo_id, Suppression.repo_id.is_(None))
        )
    ).all()
    for row in rows:
        entry = WontFix(rule=row.rule, path=row.path, repo=row.repo_id, reason=row.reason)
        if row.ticket_key:
            keyed[row.ticket_key] = entry
        else:
            entries.append(entry)
    return entries, keyed


def _capacity(session: Session, policy: Policy, repo_id: str, now: datetime) -> Capacity:
    rules = policy.suppression
    capacity = Capacity(max_open=rules.max_open_per_repo, max_new=rules.max_new_per_hour)
    in_repo = select(func.count()).select_from(Ticket).where(Ticket.repo_id == repo_id)
    if rules.max_open_per_repo is not None:
        open_states = [state.value for state in OPEN_STATES]
        capacity.open_now = session.scalar(in_repo.where(Ticket.state.in_(open_states))) or 0
    if rules.max_new_per_hour is not None:
        since = now - timedelta(hours=1)
        capacity.new_last_hour = session.scalar(in_repo.where(Ticket.created_at >= since)) or 0
    return capacity


def _reopen(session: Session, decision: Decision, candidate: Candidate, actor: Actor) -> None:
    assert decision.ticket_id is not None
    ticket = ticket_store.get(session, decision.ticket_id)
    payload = {"reason": decision.reason, "rate_per_hour": candidate.rate}
    ticket_store.transition(session, ticket, "reopen", actor, payload=payload)
    event = "triage_ready" if ticket.harness else "triage_hold"
    ticket_store.transition(session, ticket, event, actor, payload={"reason": "reopened"})


def _row(repo_id: str, scan_key: str, candidate: Candidate, decision: Decision) -> dict[str, Any]:
    return {
        "repo_id": repo_id,
        "ticket_id": decision.ticket_id,
        "idempotency_key": f"suppression:{scan_key}:{candidate.key}",
        "payload": {
            "verdict": decision.verdict.value,
            "key": candidate.key,
            "rule": candidate.rule,
            "path": candidate.path,
            "reason": decision.reason,
            "rate_per_hour": candidate.rate,
        },
    }
