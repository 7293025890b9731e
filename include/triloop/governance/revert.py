"""The revert PR for a merge whose tests failed after it landed, opened through the forge.

The revert is a ticket of its own (rule ``triloop.revert``, harness ``revert``) born in
``pr_open``: governance reviews it like any other PR (checks in the sandbox, a risk tier from
its diff; ``revert`` is not the deterministic autofix harness, so the tier is never low and
it auto-merges only where the repo's autonomy level allows medium risk, else a human decides).

Everything is derived from the merged PR and its ticket: the ticket key and id, the branch
``triloop/revert-<ticket>``, the commit (``git revert -m 1 <merge>`` on the default branch with
the control plane's identity and the merge's time), the PR title and body.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from triloop.adapters.git import GitError, git
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import PullRequestRef
from triloop.domain.fingerprint import derived_key, ticket_id_for
from triloop.domain.states import REVERT_RULE
from triloop.errors import PermanentError
from triloop.forges import forge_for
from triloop.store import pull_requests
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor, record
from triloop.store.models import PullRequest, Repo, Ticket
from triloop.workspace import make_workspace

log = logging.getLogger(__name__)
REVERT_HARNESS = "revert"
FALLBACK_DATE = "2000-01-01T00:00:00+00:00"


class RevertConflict(PermanentError):
    """The merge does not revert cleanly on today's default branch: a human must untangle it."""


def revert_branch(ticket_id: str) -> str:
    return f"triloop/revert-{ticket_id.lower()}"


def open_revert(
    session: Session, app: App, pr: PullRequest, ticket: Ticket, failing: list[str], actor: Actor
) -> PullRequestRef:
    """Push the revert commit and open its PR for a new ``triloop.revert`` ticket in pr_open.

    Raises :class:`RevertConflict`, having written nothing, when the merge does not revert
    cleanly on today's default branch.
    """
    repo = repo_ref(session.get_one(Repo, pr.repo_id))
    merge_sha = str(pr.merge_sha)
    key = derived_key("revert", pr.repo_id, ticket.id, merge_sha)
    branch = revert_branch(ticket.id)
    forge = forge_for(app, session, repo.repo_id)
    ws, _ = make_workspace(
        app.settings.workspaces_dir,
        "revert",
        ticket.id,
        merge_sha[:12],
        remote=forge.clone_source(repo),
        ref=repo.default_branch,
        writable_src=False,
    )
    try:
        git("reset", "--quiet", "--hard", cwd=ws.src)  # a conflicted revert of a crashed try
        git("revert", "--no-commit", "-m", "1", merge_sha, cwd=ws.src)
    except GitError as exc:
        raise RevertConflict(f"merge {merge_sha} does not revert cleanly: {exc}") from exc
    stamp = _stamp(pr.merged_at)
    message = f'Revert "{pr.title}"\n\n{_why(pr, merge_sha, failing)}'
    git(
        "commit",
        "--quiet",
        "-m",
        f"{message}\n\nTriloop ticket {ticket_id_for(key)}",
        cwd=ws.src,
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
    )
    sha = git("rev-parse", "HEAD", cwd=ws.src)
    revert_ticket = _revert_ticket(session, key, pr, ticket, actor)
    forge.push_branch(repo, ws.src, sha, branch)
    record(
        session,
        actor,
        "forge.push",
        repo_id=repo.repo_id,
        ticket_id=revert_ticket.id,
        idempotency_key=f"push:{branch}:{sha}",
        payload={"branch": branch, "sha": sha, "reverts": merge_sha},
    )
    info = forge.open_pull_request(
        repo,
        ticket_id=revert_ticket.id,
        branch=branch,
        harness=REVERT_HARNESS,
        title=f"[triloop] Revert #{pr.number}: tests fail on {repo.default_branch}"[:200],
        body=_body(pr, ticket, merge_sha, failing),
    )
    ticket_store.transition(
        session,
        revert_ticket,
        "open_revert",
        actor,
        context={"rule": revert_ticket.rule},
        payload={"pull_request": info.number, "head_sha": info.head_sha, "reverts": pr.number},
    )
    ref = pull_requests.record_opened(session, actor, repo.repo_id, revert_ticket.id, branch, info)
    forge.comment(
        repo,
        pr.number,
        f"Post-merge tests failed at `{merge_sha}`; revert opened as #{info.number}.\n\n"
        + "\n".join(f"- `{t}`" for t in failing),
        key=f"comment:postmerge:{repo.repo_id}#{pr.number}@{merge_sha}",
    )
    log.info("revert PR #%s opened for PR #%s in %s", info.number, pr.number, repo.repo_id)
    return ref


def _revert_ticket(
    session: Session, key: str, pr: PullRequest, ticket: Ticket, actor: Actor
) -> Ticket:
    row = Ticket(
        id=ticket_id_for(key),
        key=key,
        repo_id=pr.repo_id,
        tool="triloop",
        rule=REVERT_RULE,
        path=ticket.path,
        title=f"Revert #{pr.number} ({ticket.id}): its tests fail after merge",
        severity=ticket.severity,
        harness=REVERT_HARNESS,
        state="new",
        priority=ticket.priority,
        confidence=ticket.confidence,
        findings=[],
    )
    session.add(row)
    record(
        session,
        actor,
        "ticket.create",
        repo_id=pr.repo_id,
        ticket_id=row.id,
        to_state="new",
        idempotency_key=f"ticket:{key}",
        payload={"rule": REVERT_RULE, "reverts": {"ticket": ticket.id, "pull_request": pr.number}},
    )
    session.flush()
    return row


def _why(pr: PullRequest, merge_sha: str, failing: list[str]) -> str:
    return (
        f"This reverts merge {merge_sha} of pull request #{pr.number}: its tests failed on the"
        f" default branch after it landed ({', '.join(failing)})."
    )


def _body(pr: PullRequest, ticket: Ticket, merge_sha: str, failing: list[str]) -> str:
    lines = [
        f"Reverts #{pr.number} (Triloop ticket **{ticket.id}**, merge `{merge_sha}`).",
        "",
        "Post-merge verification ran the tests on the default branch at the merge commit;",
        "these failed:",
        "",
        *(f"- `{test}`" for test in failing),
        "",
        "Governance reviews this revert like any other pull request.",
    ]
    return "\n".join(lines)


def _stamp(merged_at: datetime | None) -> str:
    """The revert commit's date: the merge's, so a re-run makes the very same commit."""
    if merged_at is None:
        return FALLBACK_DATE
    return (merged_at if merged_at.tzinfo else merged_at.replace(tzinfo=UTC)).isoformat()
