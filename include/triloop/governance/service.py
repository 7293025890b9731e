"""Governance: pick PRs to review, prepare what lands, decide by policy, merge or ask a human."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.adapters.git import GitError, git
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import Decision, ReviewRequest
from triloop.domain.states import REVERT_RULE, PullRequestState, TicketState
from triloop.domain.unsafe_chars import escape_name
from triloop.errors import PermanentError
from triloop.forges import clone_source, forge_for
from triloop.governance import diffstat, isolation, reproduction, reviewer
from triloop.governance.bad_input import BranchDeleted as BranchDeleted
from triloop.governance.bad_input import apply_crashes, branch_deleted, send_back
from triloop.governance.checks import evaluate, evidence_markdown
from triloop.governance.deptrust import trust_checks
from triloop.governance.environment import environment_checks, stage_wheelhouses
from triloop.governance.merging import merge as merge
from triloop.governance.provenance import judged_as
from triloop.governance.risk import classify, decide_outcome, retry_when_blocked
from triloop.governance.test_selection import write_check_request
from triloop.store import effects, pull_requests
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import CheckRun, DecisionRow, PullRequest, Repo
from triloop.workspace import Workspace, make_workspace

log = logging.getLogger(__name__)
MERGE_DATE = "2000-01-01T00:00:00+00:00"


class NotMergeable(PermanentError):
    """The PR no longer merges into its base; it went back to the execution loop."""


def select_reviews(app: App, actor: Actor) -> list[dict[str, object]]:
    """Take every open PR awaiting review for this run.

    A run selects once: a cleared and re-run task gets the run's recorded picks back, never
    PRs that came back for a recheck since (no task of this run would ever review them).
    """
    owner = actor.run_owner
    key = f"reviews:{owner}"
    with app.uow() as session:
        earlier = effects.recorded(session, key)
        if earlier is not None:
            return list(earlier["picked"])
        rows = session.scalars(
            select(PullRequest)
            .where(PullRequest.state == PullRequestState.OPEN.value)
            .order_by(PullRequest.repo_id, PullRequest.number)
        ).all()
        picked = []
        for pr in rows:
            ticket = ticket_store.get(session, pr.ticket_id)
            if ticket.state == TicketState.PR_OPEN.value:
                ticket_store.transition(
                    session, ticket, "start_review", actor, payload={"pull_request": pr.number}
                )
                pr.review_owner = owner
            if pr.review_owner == owner and ticket.state == TicketState.IN_REVIEW.value:
                picked.append({"repo_id": pr.repo_id, "number": pr.number})
        effects.once(session, key, "reviews", lambda: {"picked": picked})
        return picked


def prepare_review(app: App, repo_id: str, number: int, actor: Actor) -> ReviewRequest:
    """The checkouts and output directories every check sandbox of this PR mounts.

    Each check gets its own directory (see :mod:`triloop.governance.isolation`): nothing the
    repository's tests write is read as an analyzer's result.
    """
    with app.uow() as session:
        pr = pull_requests.get(session, repo_id, number)
        repo = repo_ref(session.get_one(Repo, repo_id))
        ticket = ticket_store.get(session, pr.ticket_id)
        ticket_id, branch, pr_id = pr.ticket_id, pr.branch, pr.id
        autofix = pr.harness == "autofix" and ticket.rule != REVERT_RULE
        fix = {"rule": ticket.rule, "paths": sorted({f["path"] for f in ticket.findings})}
        gone = forge_for(app, session, repo_id).branch_sha(repo, branch) is None
    if gone:  # deleted on the forge: a clear error on this PR, which is closed
        raise branch_deleted(app, pr_id, actor)
    source = clone_source(app, repo)  # the forge's: GitHub's clone URL, or the local bare repo
    parts = ("review", actor.run_owner, f"{repo_id}-{number}")

    def checkout(name: str) -> tuple[Workspace, str]:
        return make_workspace(
            app.settings.workspaces_dir,
            *parts,
            name,
            remote=source,
            ref=repo.default_branch,
            writable_src=False,
        )

    base, base_sha = checkout("base")
    merged, _ = checkout("merged")
    try:  # the fetch prunes: a branch deleted since the check above is gone here too
        head_sha = git("rev-parse", "--verify", f"origin/{branch}^{{commit}}", cwd=merged.src)
    except GitError as exc:
        raise branch_deleted(app, pr_id, actor) from exc
    env = {"GIT_AUTHOR_DATE": MERGE_DATE, "GIT_COMMITTER_DATE": MERGE_DATE}
    try:
        git("merge", "--no-ff", "--no-edit", head_sha, cwd=merged.src, env=env)
    except GitError as exc:
        _send_back(app, repo_id, number, actor, f"does not merge into {base_sha[:12]}: {exc}")
        raise NotMergeable(f"PR #{number} in {repo_id} does not merge cleanly") from exc
    guard, _ = checkout("guard")  # the same merge, then the base's tests put back
    git("merge", "--no-ff", "--no-edit", head_sha, cwd=guard.src, env=env)
    isolation.restore_base_tests(guard.src, base_sha, env)
    outs = {
        name: isolation.output_dir(root / "tests-out")
        for name, root in (("base", base.root), ("merged", merged.root), ("guard", guard.root))
    }
    for out in outs.values():
        write_check_request(out, app.policy.test_suites, "pre-merge")  # which tests run
    lint = app.policy.code_scans.lint.default_select
    note = isolation.write_analysis_config(base.src, base.out, merged.out, default_select=lint)
    trees = (base.src, base.out, base_sha), (merged.src, merged.out, head_sha)
    stage_wheelhouses(app, repo_id, *trees)  # the dependencies the offline scans install
    isolation.link_wheelhouse(base.out, outs["base"])
    isolation.link_wheelhouse(merged.out, outs["merged"], outs["guard"])
    redo = (
        reproduction.prepare(checkout("reproduce")[0], head_sha, base_sha, ticket_id, fix)
        if autofix
        else None
    )
    return ReviewRequest(
        repo_id=repo_id,
        number=number,
        ticket_id=ticket_id,
        head_sha=head_sha,
        base_sha=base_sha,
        base_workspace=str(base.src),
        merged_workspace=str(merged.src),
        base_out=str(base.out),
        merged_out=str(merged.out),
        tests_out=str(outs["merged"]),
        review_out=reviewer.review_out(app, merged.root),  # '' unless an LLM reviewer is set
        base_tests_out=str(outs["base"]),
        guard_workspace=str(guard.src),
        guard_out=str(outs["guard"]),
        reproduce_workspace=str(redo.src) if redo else "",
        reproduce_out=str(redo.out) if redo else "",
        analysis_note=note,
    )


STATUS_CONTEXT = "triloop/checks"
"""The commit status governance sets on a PR head: the check summary."""


def decide(
    app: App,
    review: ReviewRequest,
    actor: Actor,
    *,
    crashed: Mapping[str, str] | None = None,
    causes: Mapping[str, str] | None = None,
) -> Decision:
    """Store the evidence and decide; idempotent per (run, PR, head).

    ``crashed``: the check sandbox tasks that failed, and their logs; ``causes``: why, where the
    sandbox said (see bad_input). Checks that errored block; when only they block, the ticket
    goes back to ready (see risk).
    """
    key = f"decision:{actor.run_owner}:{review.repo_id}#{review.number}@{review.head_sha}"
    with app.uow() as session:
        earlier = effects.recorded(session, key)
        if earlier is not None:
            return Decision.model_validate(earlier)
        pr = pull_requests.get(session, review.repo_id, review.number)
        ticket = ticket_store.get(session, review.ticket_id)
        checks = evaluate(review, ticket.rule, ticket.path) + trust_checks(app, review)  # deptrust
        environment = environment_checks(app, review)  # vulnerabilities, licenses, SBOM
        checks += environment.checks
        checks += reviewer.review_checks(app, review, pr.title, ticket.rule)  # only blocks
        sha = f"{review.base_sha[:12]}+{review.head_sha[:12]}"
        checks = apply_crashes(checks, crashed or {}, sha, causes or {})
        rules = app.policy.risk
        changed = diffstat.changes(Path(review.merged_workspace), review.base_sha, rules)
        harness, flagged, notes = judged_as(
            review, pr.harness, ticket.rule, ticket.findings, changed, rules
        )
        assessment = classify(
            changed,
            harness,
            ticket.confidence or 0.0,
            rules,
            app.policy.patch.protected_paths,
            flagged=flagged,
        )
        risk, reasons = assessment.tier, [*assessment.reasons, *notes]
        failed = reviewer.gate_failures(checks)  # not green, or no deterministic check ran
        level = app.policy.autonomy_for(review.repo_id)
        errored = [c.check_id for c in checks if c.status == "error"]
        confidence = ticket.confidence or 0.0
        outcome, why = decide_outcome(level, risk, failed, confidence, rules, errored)
        decision = Decision(
            repo_id=review.repo_id,
            number=review.number,
            outcome=outcome,
            risk=risk,
            # one line each, names as escapes: a path may hold a newline or a bidi control
            reasons=[escape_name(r) for r in (why, *reasons)],
            head_sha=review.head_sha,
            base_sha=review.base_sha,
            artifacts=environment.artifacts,
        )
        for c in checks:
            session.add(
                CheckRun(
                    pull_request_id=pr.id,
                    head_sha=review.head_sha,
                    base_sha=review.base_sha,
                    run_id=actor.run_owner,
                    **c.model_dump(exclude={"schema_version"}),
                )
            )
        session.add(
            DecisionRow(
                pull_request_id=pr.id,
                outcome=outcome,
                risk=risk,
                reasons=decision.reasons,
                head_sha=review.head_sha,
                base_sha=review.base_sha,
                actor=actor.name,
                artifacts=[a.model_dump(mode="json") for a in decision.artifacts],
            )
        )
        record(
            session,
            actor,
            f"governance.{outcome}",
            repo_id=review.repo_id,
            ticket_id=ticket.id,
            pull_request_id=pr.id,
            idempotency_key=key,
            payload={"checks": {c.check_id: c.status for c in checks}, "risk": risk},
        )
        repo = repo_ref(session.get_one(Repo, review.repo_id))
        forge = forge_for(app, session, review.repo_id)  # the policy's: local or GitHub
        forge.comment(
            repo, review.number, evidence_markdown(checks, decision.reasons), key=f"comment:{key}"
        )
        passed = len(checks) - len(failed)
        forge.set_status(
            repo,
            review.head_sha,
            context=STATUS_CONTEXT,
            state="failure" if failed else "success",
            description=f"{passed}/{len(checks)} checks passed; {outcome} ({risk} risk)",
        )
        if outcome == "blocked" and retry_when_blocked(failed, errored):
            send_back(app, session, pr, actor, why)  # a crash is no verdict on the change
        elif outcome == "blocked":
            _close(session, pr, actor, why)
            forge.close_pull_request(repo, review.number, comment=f"Blocked by governance: {why}")
        effects.once(session, key, "decision", lambda: decision.model_dump(mode="json"))
    return decision


def human_verdict(
    app: App, decision: Decision, chosen: str, actor: Actor, *, feedback: str = "", by: str = ""
) -> dict[str, str | int] | None:
    """Apply a person's verdict once (see :mod:`triloop.governance.verdicts`); the merge, if any."""
    from triloop.governance.verdicts import apply_verdict

    result = apply_verdict(app, decision, chosen, actor, feedback=feedback, by=by)
    merged: dict[str, str | int] | None = result.get("merged")
    return merged


def _close(session: Session, pr: PullRequest, actor: Actor, why: str) -> None:
    ticket = ticket_store.get(session, pr.ticket_id)
    ticket_store.transition(session, ticket, "reject", actor, error=why)
    ticket_store.transition(session, ticket, "close", actor)


def _send_back(app: App, repo_id: str, number: int, actor: Actor, why: str) -> None:
    """Close a PR that cannot merge and send its ticket back to ready, if this run reviews it.

    A PR another run reviews now (a cleared task of an older run), or one already closed or
    merged, is left as it is: closing it here would strand its ticket.
    """
    with app.uow() as session:
        pr = pull_requests.get(session, repo_id, number)
        ticket = ticket_store.get(session, pr.ticket_id)
        ours = pr.review_owner == actor.run_owner
        if pr.state != PullRequestState.OPEN.value or not ours:
            return
        if ticket.state == TicketState.IN_REVIEW.value:
            ticket_store.transition(session, ticket, "request_changes", actor, error=why)
            ticket_store.transition(session, ticket, "requeue", actor)
        repo = repo_ref(session.get_one(Repo, repo_id))
        note = "Closed by governance: it does not merge into its base; its ticket goes back."
        forge_for(app, session, repo_id).close_pull_request(repo, number, comment=note)


def evidence_for(app: App, decision: Decision) -> str:
    """Markdown evidence a reviewer sees in the approval form: checks, rules, commands."""
    from triloop.domain.contracts import CheckResult
    from triloop.governance.review_body import review_markdown

    with app.uow() as session:
        pr = pull_requests.get(session, decision.repo_id, decision.number)
        rows = session.scalars(
            select(CheckRun)
            .where(CheckRun.pull_request_id == pr.id, CheckRun.head_sha == decision.head_sha)
            .order_by(CheckRun.id.desc())
        ).all()
        latest: dict[str, CheckResult] = {}
        for row in rows:
            latest.setdefault(
                row.check_id,
                CheckResult(
                    check_id=row.check_id,
                    status=row.status,
                    command=row.command,
                    excerpt=row.excerpt,
                    rule_ids=list(row.rule_ids),
                    duration_s=row.duration_s,
                ),
            )
        return review_markdown(pr.title, pr.branch, decision, list(latest.values()))
