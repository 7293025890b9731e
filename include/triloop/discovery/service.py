"""Discovery: prepare a scan, then turn the sandbox's output into deduplicated tickets."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.bootstrap import App
from triloop.discovery.scanners import ScanContext, run_scanners
from triloop.domain.contracts import Finding, RepoRef, ScanRequest
from triloop.domain.fingerprint import ticket_id_for, ticket_key
from triloop.domain.policy import Policy
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import Repo, Scan, Ticket
from triloop.workspace import make_workspace

log = logging.getLogger(__name__)
SEVERITY_WEIGHT = {"info": 0.5, "low": 1.0, "medium": 3.0, "high": 8.0, "critical": 20.0}


def active_repos(app: App) -> list[RepoRef]:
    with app.uow() as session:
        rows = session.scalars(select(Repo).where(Repo.active).order_by(Repo.id)).all()
        return [repo_ref(r) for r in rows]


def repo_ref(row: Repo) -> RepoRef:
    return RepoRef(
        repo_id=row.id, name=row.name, remote=row.remote, default_branch=row.default_branch
    )


def prepare_scan(app: App, repo: RepoRef, actor: Actor) -> ScanRequest:
    """Update the repo's scan workspace to the default branch head."""
    ws, sha = make_workspace(
        app.settings.workspaces_dir,
        "scan",
        actor.run_owner,
        repo.repo_id,
        remote=repo.remote,
        ref=repo.default_branch,
        writable_src=False,
    )
    log.info("repo %s: scanning %s at %s", repo.repo_id, repo.default_branch, sha)
    return ScanRequest(
        repo_id=repo.repo_id, head_sha=sha, workspace=str(ws.src), output_dir=str(ws.out)
    )


def ingest_scan(app: App, request: ScanRequest, actor: Actor) -> list[str]:
    """Upsert tickets for one scan; return the ids of tickets it created.

    Idempotent per (run, repo): a re-run finds its recorded scan and returns the same ids.
    """
    key = f"{actor.run_owner}:{request.repo_id}"
    with app.uow() as session:
        done = session.scalar(
            select(Scan).where(Scan.repo_id == request.repo_id, Scan.idempotency_key == key)
        )
        if done is not None:
            return list(done.new_ticket_ids)
    ctx = ScanContext(
        repo_id=request.repo_id,
        checkout=Path(request.workspace),
        output_dir=Path(request.output_dir),
        policy=app.policy,
        head_sha=request.head_sha,
    )
    findings, failures = run_scanners(ctx)
    with app.uow() as session:
        for scanner, error in sorted(failures.items()):
            # One scanner's bad input costs only its own findings; the others land.
            record(
                session,
                actor,
                "discovery.scanner_failed",
                repo_id=request.repo_id,
                idempotency_key=f"{key}:{scanner}",
                outcome="error",
                error=error,
                payload={"scanner": scanner, "head_sha": request.head_sha},
            )
        groups = group_findings(request.repo_id, findings)
        created = [
            tid
            for tkey, items in sorted(groups.items())
            if (tid := _upsert(session, app.policy, request.repo_id, tkey, items, actor))
        ]
        session.add(
            Scan(
                repo_id=request.repo_id,
                idempotency_key=key,
                head_sha=request.head_sha,
                finding_count=len(findings),
                ticket_keys=sorted(groups),
                new_ticket_ids=created,
            )
        )
        record(
            session,
            actor,
            "discovery.scan",
            repo_id=request.repo_id,
            idempotency_key=key,
            payload={
                "head_sha": request.head_sha,
                "findings": len(findings),
                "tickets": len(groups),
                "new_tickets": created,
                "failed_scanners": sorted(failures),
            },
        )
    return created


def group_findings(repo_id: str, findings: list[Finding]) -> dict[str, list[Finding]]:
    """Findings of one rule in one file are fixed together: one ticket each."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        groups[ticket_key(repo_id, finding.rule, finding.path)].append(finding)
    return groups


def _upsert(
    session: Session, policy: Policy, repo_id: str, key: str, items: list[Finding], actor: Actor
) -> str | None:
    first = items[0]
    priority = sum(SEVERITY_WEIGHT[f.severity] for f in items)
    payload = [f.model_dump(mode="json") for f in items]
    existing = session.scalar(select(Ticket).where(Ticket.key == key))
    if existing is not None:
        existing.findings, existing.priority = payload, priority
        return None
    autofixable = (
        policy.autonomy_for(repo_id) > 0
        and first.tool == "ruff"
        and policy.autofix_allows(first.rule)
        and all(f.fixable for f in items)
    )
    # What autofix cannot fix goes to the policy's agent harness, if one is configured.
    agent = policy.agent_harness if policy.autonomy_for(repo_id) > 0 else None
    harness = "autofix" if autofixable else agent
    count = f" ({len(items)} findings)" if len(items) > 1 else ""
    ticket = Ticket(
        id=ticket_id_for(key),
        key=key,
        repo_id=repo_id,
        tool=first.tool,
        rule=first.rule,
        path=first.path,
        title=f"{first.rule} in {first.path}: {first.message}{count}",
        severity=max((f.severity for f in items), key=SEVERITY_WEIGHT.__getitem__),
        harness=harness,
        state="new",
        priority=priority,
        findings=payload,
    )
    session.add(ticket)
    session.flush()
    record(
        session,
        actor,
        "ticket.create",
        repo_id=repo_id,
        ticket_id=ticket.id,
        to_state="new",
        idempotency_key=f"ticket:{key}",
        payload={"rule": first.rule},
    )
    event = "triage_ready" if harness else "triage_hold"
    ticket_store.transition(
        session,
        ticket,
        event,
        actor,
        payload={
            "reason": f"{harness} harness applies"
            if harness
            else "no harness configured for this rule"
        },
    )
    return ticket.id
