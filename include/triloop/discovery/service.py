"""Discovery: prepare a scan, then turn the sandbox's output into deduplicated tickets."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop import lint_config
from triloop.bootstrap import App
from triloop.discovery.names import refuse_unsafe_names
from triloop.discovery.quarantine import gate
from triloop.discovery.scanners import ScanContext, run_scanners
from triloop.discovery.suppression import screen
from triloop.discovery.upsert import upsert_groups
from triloop.domain.contracts import Finding, RepoRef, ScanRequest
from triloop.domain.grouping import group_findings
from triloop.domain.policy import Policy
from triloop.store.ledger import Actor, record
from triloop.store.models import Repo, Scan, Ticket
from triloop.workspace import make_workspace

log = logging.getLogger(__name__)


def active_repos(app: App) -> list[RepoRef]:
    with app.uow() as session:
        rows = session.scalars(select(Repo).where(Repo.active).order_by(Repo.id)).all()
        return [repo_ref(r) for r in rows]


def repo_ref(row: Repo) -> RepoRef:
    return RepoRef(
        repo_id=row.id, name=row.name, remote=row.remote, default_branch=row.default_branch
    )


def prepare_scan(app: App, repo: RepoRef, actor: Actor) -> ScanRequest:
    """Update the repo's scan workspace to the default branch head, fetched from its forge."""
    from triloop.forges import clone_source  # forges -> tracking -> this module: import here

    ws, sha = make_workspace(
        app.settings.workspaces_dir,
        "scan",
        actor.run_owner,
        repo.repo_id,
        remote=clone_source(app, repo),  # GitHub's clone URL, or the onboarded bare repo
        ref=repo.default_branch,
        writable_src=False,
    )
    log.info("repo %s: scanning %s at %s", repo.repo_id, repo.default_branch, sha)
    if not lint_config.configures_ruff(ws.src):  # else ruff finds the repository's own
        lint_config.write_default(ws.out, app.policy.code_scans.lint.default_select)
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
        # A path or rule id holding a control or bidi character: that finding is refused.
        kept = refuse_unsafe_names(
            session,
            actor,
            repo_id=request.repo_id,
            scan_key=key,
            head_sha=request.head_sha,
            findings=findings,
        )
        refused, findings = len(findings) - len(kept), kept
        # Flood control: a batch failing its suite is quarantined and makes no tickets.
        held = gate(
            session,
            app.policy,
            actor,
            repo_id=request.repo_id,
            scan_key=key,
            head_sha=request.head_sha,
            findings=findings,
        )
        if held is not None:
            return list(held.released_ticket_ids)
        created, keys = upsert_findings(session, app.policy, request.repo_id, findings, actor)
        # A scanner that failed said nothing about its tickets: they count as still seen, so
        # the janitor does not close them as resolved.
        unjudged = _tickets_of(session, request.repo_id, set(failures))
        session.add(
            Scan(
                repo_id=request.repo_id,
                idempotency_key=key,
                head_sha=request.head_sha,
                finding_count=len(findings),
                ticket_keys=sorted(set(keys) | unjudged),
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
                "tickets": len(keys),
                "new_tickets": created,
                "failed_scanners": sorted(failures),
                "refused_findings": refused,
            },
        )
    return created


def upsert_findings(
    session: Session, policy: Policy, repo_id: str, findings: list[Finding], actor: Actor
) -> tuple[list[str], list[str]]:
    """Group, score and upsert one scan's findings in the caller's transaction.

    Returns (ids of the tickets created, keys of every ticket the scan holds).
    """
    groups = group_findings(repo_id, findings, policy.grouping)
    # Suppression: only created, updated or reopened groups reach the upsert.
    decisions = screen(session, policy, repo_id, {g.key: g.findings for g in groups}, actor)
    kept = [g for g in groups if decisions[g.key].verdict.upserts]
    created = upsert_groups(session, policy, repo_id, kept, actor)
    return created, [g.key for g in groups]


def _tickets_of(session: Session, repo_id: str, tools: set[str]) -> set[str]:
    """Keys of the repository's tickets from these tools (the scanners that failed)."""
    if not tools:
        return set()
    rows = session.scalars(
        select(Ticket.key).where(Ticket.repo_id == repo_id, Ticket.tool.in_(sorted(tools)))
    )
    return set(rows)
