"""Pull request rows: the one lookup every loop uses, with the error a missing row deserves."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.errors import PermanentError
from triloop.store.models import PullRequest


def get(session: Session, repo_id: str, number: int) -> PullRequest:
    """The mirror row of PR ``number`` in ``repo_id``; PermanentError naming both if missing."""
    pr = session.scalar(
        select(PullRequest).where(PullRequest.repo_id == repo_id, PullRequest.number == number)
    )
    if pr is None:
        raise PermanentError(f"pull request #{number} does not exist in repo {repo_id!r}")
    return pr
