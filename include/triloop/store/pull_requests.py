"""Pull request rows: the one lookup every loop uses, and the record of a PR just opened."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.adapters.protocols import PullRequestInfo
from triloop.domain.contracts import PullRequestRef
from triloop.errors import PermanentError
from triloop.store.ledger import Actor, record
from triloop.store.models import PullRequest


def get(session: Session, repo_id: str, number: int) -> PullRequest:
    """The mirror row of PR ``number`` in ``repo_id``; PermanentError naming both if missing."""
    pr = session.scalar(
        select(PullRequest).where(PullRequest.repo_id == repo_id, PullRequest.number == number)
    )
    if pr is None:
        raise PermanentError(f"pull request #{number} does not exist in repo {repo_id!r}")
    return pr


def record_opened(
    session: Session, actor: Actor, repo_id: str, ticket_id: str, branch: str, info: PullRequestInfo
) -> PullRequestRef:
    """The reference to a PR just opened on the forge, with its ``forge.open_pr`` ledger row."""
    ref = PullRequestRef(
        repo_id=repo_id,
        number=info.number,
        ticket_id=ticket_id,
        branch=branch,
        head_sha=info.head_sha,
    )
    record(
        session,
        actor,
        "forge.open_pr",
        repo_id=repo_id,
        ticket_id=ticket_id,
        idempotency_key=f"pr:{repo_id}:{branch}",
        payload=ref.model_dump(mode="json"),
    )
    return ref
