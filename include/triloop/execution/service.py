"""Execution: claim tickets, prepare the harness workspace, turn its patch into a PR."""

from __future__ import annotations

import json
import logging
from datetime import UTC
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triloop.adapters.git import git
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import Claim, HarnessRequest, PullRequestRef
from triloop.domain.fingerprint import branch_for
from triloop.domain.states import TicketState
from triloop.errors import PermanentError
from triloop.execution import budgets
from triloop.execution.harness import HarnessOutputError, harness_for
from triloop.execution.harnesses.prompt import ticket_details
from triloop.execution.patch import PatchRejected, validate_patch
from triloop.forges import clone_source, forge_for
from triloop.governance.verdicts import review_feedback
from triloop.janitor.service import reap_leases
from triloop.store import effects, pull_requests
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import Repo, Ticket
from triloop.workspace import make_workspace

log = logging.getLogger(__name__)


class HarnessFailed(PermanentError):
    """The harness's output was unusable; the ticket was dead-lettered with this reason."""


class LeaseLost(PermanentError):
    """The run no longer holds the ticket's lease: what it produced must not be used."""


LEASED = (TicketState.CLAIMED.value, TicketState.RUNNING.value)


def attempt_over(app: App, ticket_id: str, actor: Actor) -> str | None:
    """Why this run has nothing left to do on ``ticket_id`` (None while it holds the lease).

    A cleared harness task whose run already finished the ticket's attempt (its PR is open,
    or it failed and went back to ready) asks this before starting a container.
    """
    with app.uow() as session:
        ticket = ticket_store.get(session, ticket_id)
        if ticket.state in LEASED and ticket.lease_owner == actor.run_owner:
            return None
        claims = effects.recorded(session, f"claims:{actor.run_owner}") or {"claims": []}
        if any(c["ticket_id"] == ticket_id for c in claims["claims"]):
            return f"ticket {ticket_id} moved on to {ticket.state} after this run's attempt"
        return None


def claim(app: App, actor: Actor) -> budgets.Claims:
    """Return expired leases to ready (so a crashed run's tickets are not stuck until the
    janitor's daily run), then claim up to ``claim_batch`` ready tickets for this run.

    A run claims once: a cleared and re-run claim task gets the run's recorded claims back,
    even after their tickets moved on, instead of taking a second batch nobody works on.
    An open circuit breaker or a reached daily cost limit claims nothing; ``reason`` says why.
    """
    key = f"claims:{actor.run_owner}"
    with app.uow() as session:
        earlier = effects.recorded(session, key)
    if earlier is not None:
        claimed = (Claim.model_validate(c) for c in earlier["claims"])
        return budgets.Claims(claimed, earlier.get("reason", ""))
    reap_leases(app, actor)
    with app.uow() as session:
        gate = budgets.claim_gate(session, app, actor)
        rows = (
            []
            if gate.reason
            else ticket_store.claim_ready(
                session,
                actor,
                limit=gate.limit(app.policy.claim_batch),
                lease_seconds=app.policy.lease_seconds,
                exclude_repos=gate.held_repos.keys(),
            )
        )
        reason = budgets.settle_claim(session, gate, rows, actor)
        claims = [
            Claim(
                ticket_id=t.id,
                repo_id=t.repo_id,
                owner=actor.run_owner,
                attempt=t.attempts,
                lease_expires_at=_iso(t),
            )
            for t in rows
        ]
        recorded = {"claims": [c.model_dump(mode="json") for c in claims], "reason": reason}
        effects.once(session, key, "claims", lambda: recorded)
        return budgets.Claims(claims, reason)


def _iso(ticket: Ticket) -> str:
    moment = ticket.lease_expires_at
    assert moment is not None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def prepare(app: App, claim: Claim, actor: Actor) -> HarnessRequest:
    """Check the default branch out for the harness and write its request file."""
    with app.uow() as session:
        ticket = ticket_store.get(session, claim.ticket_id)
        if ticket.lease_owner != claim.owner:
            raise PermanentError(f"ticket {ticket.id} is no longer leased to {claim.owner}")
        if ticket.state == TicketState.CLAIMED.value:
            ticket_store.transition(session, ticket, "start", actor)
        repo = repo_ref(session.get_one(Repo, ticket.repo_id))
        name = ticket.harness or ""
        harness = harness_for(name, app.policy.harnesses.get(name))
        rule, paths = ticket.rule, sorted({f["path"] for f in ticket.findings})
        feedback = review_feedback(session, ticket.id)  # a reviewer's "request changes"
        title, details = ticket.title, ticket_details(ticket.findings, feedback)
    ws, sha = make_workspace(
        app.settings.workspaces_dir,
        "execution",
        claim.ticket_id,
        f"attempt-{claim.attempt}",
        remote=clone_source(app, repo),
        ref=repo.default_branch,
        writable_src=True,
    )
    request = HarnessRequest(
        harness=harness.name,
        ticket_id=claim.ticket_id,
        rule=rule,
        paths=paths,
        budget=budgets.request_budget(app),
        title=title,
        details=details,
        attempt=claim.attempt,
        repo_id=repo.repo_id,
        base_sha=sha,
        workspace=str(ws.src),
        output_dir=str(ws.out),
    )
    (ws.out / "request.json").write_text(json.dumps(harness.request_document(request)))
    return request


def finish(app: App, request: HarnessRequest, actor: Actor) -> PullRequestRef | None:
    """Validate the harness's patch, commit and push it, open the pull request."""
    out = Path(request.output_dir)
    with app.uow() as session:
        ticket = ticket_store.get(session, request.ticket_id)
        attempt_key = f"finish:{ticket.id}:{request.attempt or ticket.attempts}"
        done = effects.recorded(session, attempt_key)
        if done is not None:
            if done.get("error"):
                raise HarnessFailed(done["error"])
            return PullRequestRef.model_validate(done["pr"]) if done.get("pr") else None
        if ticket.state in LEASED and ticket.lease_owner != actor.run_owner:
            # This run lost the lease (expired, reaped, claimed again): the attempt is not ours.
            lost = (
                f"ticket {ticket.id} is {ticket.state} under {ticket.lease_owner}, not "
                f"{actor.run_owner}: this run's attempt {request.attempt} is over"
            )
            record(
                session,
                actor,
                "execution.finish",
                outcome="refused",
                repo_id=ticket.repo_id,
                ticket_id=ticket.id,
                error=lost,
            )
            session.commit()
            raise LeaseLost(lost)
        failure: str | None = None
        if not (out / "result.json").exists():
            # The container died before writing its result (killed, timed out, OOM): count it
            # as a failed attempt, not as bad output.
            if budgets.settle_run(session, app, ticket, request, actor, attempt_key, None):
                return None  # the egress proxy stopped it at a budget: needs_human
            _fail_attempt(session, app, ticket, actor, f"no {out}/result.json: the sandbox died")
            effects.once(session, attempt_key, "finish", lambda: {"pr": None})
            return None
        try:
            # The adapter reads result.json and, for an agent CLI, its output (tokens, cost,
            # summary), and maps the run against the request's budget.
            result = harness_for(request.harness).read_output(request, out)
        except HarnessOutputError as exc:
            if budgets.settle_run(
                session, app, ticket, request, actor, attempt_key, None, "invalid"
            ):
                return None
            failure = _dead_letter(session, ticket, actor, attempt_key, f"{out}/result.json: {exc}")
        else:
            failure = None
    if failure:
        raise HarnessFailed(failure)
    with app.uow() as session:
        ticket = ticket_store.get(session, request.ticket_id)
        record(
            session,
            actor,
            "harness.result",
            ticket_id=ticket.id,
            repo_id=ticket.repo_id,
            outcome=result.status,
            tokens=result.tokens,
            cost_usd=result.cost_usd,
            duration_s=result.duration_s,
            payload={"summary": result.summary},
        )
        if budgets.settle_run(session, app, ticket, request, actor, attempt_key, result):
            return None  # over a per-ticket budget: needs_human, no pull request
        if result.status == "no_change":
            ticket_store.transition(
                session, ticket, "give_up", actor, error=f"{request.harness} made no change"
            )
            effects.once(session, attempt_key, "finish", lambda: {"pr": None})
            return None
        if result.status == "failed":
            _fail_attempt(session, app, ticket, actor, result.summary or "harness failed")
            effects.once(session, attempt_key, "finish", lambda: {"pr": None})
            return None
        repo = repo_ref(session.get_one(Repo, ticket.repo_id))
    commit_ws, _ = make_workspace(
        app.settings.workspaces_dir,
        "commit",
        request.ticket_id,
        f"attempt-{ticket.attempts}",
        remote=clone_source(app, repo),
        ref=repo.default_branch,
        writable_src=False,
    )
    git("checkout", "--quiet", "--detach", request.base_sha, cwd=commit_ws.src)
    with app.uow() as session:
        ticket = ticket_store.get(session, request.ticket_id)
        try:
            files = validate_patch(
                out / "patch.diff",
                commit_ws.src,
                request.paths,
                app.policy.patch,
                max_bytes=app.policy.sandbox_resources.patch_max_bytes,
            )
        except PatchRejected as exc:
            failure = _dead_letter(session, ticket, actor, attempt_key, str(exc))
    if failure:
        raise HarnessFailed(failure)
    with app.uow() as session:
        ticket = ticket_store.get(session, request.ticket_id)
        sha = _commit(commit_ws.src, out / "patch.diff", ticket)
        branch = branch_for(ticket.id, ticket.attempts)
        forge = forge_for(app, session, repo.repo_id)
        forge.push_branch(repo, commit_ws.src, sha, branch)
        record(
            session,
            actor,
            "forge.push",
            repo_id=repo.repo_id,
            ticket_id=ticket.id,
            idempotency_key=f"push:{branch}:{sha}",
            payload={"branch": branch, "sha": sha},
        )
        pr = forge.open_pull_request(
            repo,
            ticket_id=ticket.id,
            branch=branch,
            harness=request.harness,
            title=f"[triloop] {ticket.title}"[:200],
            body=_body(ticket, files, request, result.summary),
        )
        ticket_store.transition(
            session,
            ticket,
            "open_pr",
            actor,
            payload={"pull_request": pr.number, "head_sha": pr.head_sha},
        )
        ref = pull_requests.record_opened(session, actor, repo.repo_id, ticket.id, branch, pr)
        effects.once(session, attempt_key, "finish", lambda: {"pr": ref.model_dump(mode="json")})
        return ref


def _fail_attempt(session: Session, app: App, ticket: Ticket, actor: Actor, error: str) -> None:
    """A failed attempt: back to ready while attempts are left, else the dead letter."""
    ticket_store.transition(session, ticket, "fail", actor, error=error)
    used = ticket_store.attempts_used(ticket)
    ctx = {"attempts": used, "max_attempts": app.policy.max_attempts}
    event = "retry" if used < app.policy.max_attempts else "exhaust"
    ticket_store.transition(session, ticket, event, actor, context=ctx)


def _dead_letter(session: Session, ticket: Ticket, actor: Actor, key: str, error: str) -> str:
    """Dead-letter the ticket and record why; the caller fails the task after committing."""
    ticket_store.transition(session, ticket, "give_up", actor, error=error)
    effects.once(session, key, "finish", lambda: {"error": error})
    return error


def _commit(clone: Path, patch: Path, ticket: Ticket) -> str:
    """Apply and commit with derived metadata, so a re-run makes the very same commit."""
    git("apply", "--whitespace=nowarn", str(patch.resolve()), cwd=clone)
    git("add", "-A", cwd=clone)
    created = (
        ticket.created_at if ticket.created_at.tzinfo else ticket.created_at.replace(tzinfo=UTC)
    )
    stamp = created.isoformat()
    git(
        "commit",
        "--quiet",
        "-m",
        f"fix({ticket.rule}): {ticket.path}\n\nTriloop ticket {ticket.id}",
        cwd=clone,
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
    )
    return git("rev-parse", "HEAD", cwd=clone)


def _body(ticket: Ticket, files: list[str], request: HarnessRequest, summary: str) -> str:
    lines = [
        f"Fixes Triloop ticket **{ticket.id}**: {ticket.title}",
        "",
        f"- harness: `{request.harness}`",
        f"- base: `{request.base_sha}`",
        f"- files: {', '.join(f'`{f}`' for f in files)}",
        "",
        summary,
    ]
    return "\n".join(lines)


def count_ready(app: App) -> int:
    """How many tickets wait for a harness (the execution sensor's question)."""
    with app.uow() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.state == TicketState.READY.value)
            )
            or 0
        )
