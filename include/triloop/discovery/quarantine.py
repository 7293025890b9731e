"""Quarantined scan batches: the flood-control gate, the operator's list and release.

A batch that fails the suite (:mod:`triloop.discovery.quality`) makes no tickets: it is kept
whole in a ``quarantines`` row with the failed expectations, and a ledger row says why. An
operator's ``triloop quarantine release ID`` ingests it exactly once (a compare-and-set on the
row's state); a second release is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from triloop.bootstrap import App
from triloop.discovery.quality import history, records, row_bound, validate_batch
from triloop.domain.contracts import Finding
from triloop.domain.policy import Policy
from triloop.store.ledger import Actor, record
from triloop.store.models import Quarantine, utcnow

log = logging.getLogger(__name__)
QUARANTINED, RELEASED = "quarantined", "released"

Ingest = Callable[[Session, Policy, str, list[Finding], Actor], list[str]]
"""Group and upsert findings in the caller's transaction; return the created ticket ids."""


class QuarantineError(LookupError):
    """A release of a quarantine that does not exist or was already released."""


def gate(
    session: Session,
    policy: Policy,
    actor: Actor,
    *,
    repo_id: str,
    scan_key: str,
    head_sha: str,
    findings: Sequence[Finding],
) -> Quarantine | None:
    """None: the batch may make tickets. Else its quarantine row (found again on a re-run)."""
    rules = policy.suppression.flood_control
    if not rules.enabled:
        return None
    earlier = session.scalar(
        select(Quarantine).where(Quarantine.repo_id == repo_id, Quarantine.scan_key == scan_key)
    )
    if earlier is not None:
        return earlier
    bound = row_bound(history(session, repo_id, rules), rules)
    report = validate_batch(records(findings), bound)
    summary = {"rows": report.rows, "max_rows": bound, "seconds": round(report.seconds, 3)}
    if report.success:
        record(
            session,
            actor,
            "discovery.flood_control",
            repo_id=repo_id,
            idempotency_key=f"flood:{scan_key}",
            duration_s=report.seconds,
            payload=summary,
        )
        return None
    row = Quarantine(
        repo_id=repo_id,
        scan_key=scan_key,
        head_sha=head_sha,
        finding_count=len(findings),
        failed=report.failed,
        findings=[_dump(f) for f in findings],
        state=QUARANTINED,
    )
    session.add(row)
    session.flush()
    failed = ", ".join(f["expectation"] for f in report.failed)
    log.warning("repo %s: scan %s quarantined (%s)", repo_id, scan_key, failed)
    record(
        session,
        actor,
        "discovery.quarantine",
        repo_id=repo_id,
        idempotency_key=f"quarantine:{scan_key}",
        outcome="quarantined",
        error=f"batch of {len(findings)} findings failed: {failed}",
        duration_s=report.seconds,
        payload={**summary, "quarantine_id": row.id, "head_sha": head_sha, "failed": report.failed},
    )
    return row


def _dump(finding: Finding) -> dict[str, Any]:
    # model_dump warns on a value outside its Literal (a scanner that skipped validation).
    return finding.model_dump(mode="json", warnings=False)


def pending(session: Session) -> list[Quarantine]:
    return list(
        session.scalars(
            select(Quarantine).where(Quarantine.state == QUARANTINED).order_by(Quarantine.id)
        ).all()
    )


def release(
    session: Session, policy: Policy, quarantine_id: int, actor: Actor, ingest: Ingest
) -> Quarantine:
    """Ingest a quarantined batch now, once; a second release raises QuarantineError."""
    row = session.get(Quarantine, quarantine_id)
    if row is None:
        raise QuarantineError(f"quarantine {quarantine_id} does not exist")
    taken = session.execute(
        update(Quarantine)
        .where(Quarantine.id == quarantine_id, Quarantine.state == QUARANTINED)
        .values(state=RELEASED, released_at=utcnow(), released_by=actor.name)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(row)
        raise QuarantineError(
            f"quarantine {quarantine_id} was already released by {row.released_by} at "
            f"{row.released_at}: its batch was ingested then, and is not ingested twice"
        )
    session.refresh(row)
    findings, invalid = [], []
    for item in row.findings:
        try:
            findings.append(Finding.model_validate(item))
        except ValidationError as exc:
            invalid.append(f"{item.get('rule')} at {item.get('path')}: {exc.errors()[0]['msg']}")
    created = ingest(session, policy, row.repo_id, findings, actor)
    row.released_ticket_ids = created
    record(
        session,
        actor,
        "discovery.quarantine_release",
        repo_id=row.repo_id,
        idempotency_key=f"quarantine-release:{row.id}",
        payload={
            "quarantine_id": row.id,
            "scan_key": row.scan_key,
            "findings": len(findings),
            "dropped_invalid": invalid[:20],
            "new_tickets": created,
        },
    )
    return row


def release_batch(app: App, quarantine_id: int, actor: Actor) -> Quarantine:
    """``triloop quarantine release ID``: a refused release writes only its ledger row."""
    from triloop.discovery.service import upsert_findings  # the service imports this module

    def ingest(
        session: Session, policy: Policy, repo_id: str, findings: list[Finding], who: Actor
    ) -> list[str]:
        return upsert_findings(session, policy, repo_id, findings, who)[0]

    try:
        with app.uow() as session:
            row = release(session, app.policy, quarantine_id, actor, ingest)
            session.flush()
            session.expunge(row)
            return row
    except QuarantineError as exc:
        with app.uow() as session:
            record(
                session,
                actor,
                "discovery.quarantine_release",
                outcome="refused",
                error=str(exc),
                payload={"quarantine_id": quarantine_id},
            )
        raise
