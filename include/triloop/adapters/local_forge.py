"""The embedded forge: bare git repositories on disk, pull requests as rows in Triloop's DB.

Merges are real ``git merge --no-ff`` commits pushed to the default branch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triloop.adapters.git import GitError, git
from triloop.adapters.protocols import (
    BaseMoved,
    CloneSource,
    ForgeError,
    PullRequestInfo,
    close_key,
)
from triloop.domain.contracts import RepoRef
from triloop.domain.states import PullRequestState, next_pr_state
from triloop.store import effects
from triloop.store.models import Effect, PullRequest, utcnow

STATUS_STATES = frozenset({"pending", "success", "failure", "error"})
"""Commit status states, as GitHub names them."""


def _info(row: PullRequest) -> PullRequestInfo:
    return PullRequestInfo(
        repo_id=row.repo_id,
        number=row.number,
        branch=row.branch,
        base_branch=row.base_branch,
        head_sha=row.head_sha,
        state=row.state,
        merge_sha=row.merge_sha,
    )


class LocalForge:
    """Implements :class:`~triloop.adapters.protocols.Forge` on a session's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def clone_source(self, repo: RepoRef) -> CloneSource:
        """The onboarded bare repository; no credentials."""
        return CloneSource(repo.remote)

    def branch_sha(self, repo: RepoRef, branch: str) -> str | None:
        out = git("ls-remote", "--heads", repo.remote, f"refs/heads/{branch}")
        return out.split()[0] if out else None

    def push_branch(self, repo: RepoRef, local_clone: Path, sha: str, branch: str) -> None:
        key = f"push:{repo.repo_id}:{branch}:{sha}"
        if self.branch_sha(repo, branch) != sha:
            self._push(repo, local_clone, sha, branch)
        effects.once(self.session, key, "push", lambda: {"branch": branch, "sha": sha})

    def _push(self, repo: RepoRef, local_clone: Path, sha: str, branch: str) -> None:
        try:
            git(
                "push",
                "--quiet",
                "--force",
                repo.remote,
                f"{sha}:refs/heads/{branch}",
                cwd=local_clone,
            )
        except GitError as exc:
            raise ForgeError(f"push of {branch} to {repo.remote} failed: {exc}") from exc

    def _row(self, repo_id: str, number: int) -> PullRequest:
        row = self.session.scalar(
            select(PullRequest).where(PullRequest.repo_id == repo_id, PullRequest.number == number)
        )
        if row is None:
            raise ForgeError(f"pull request #{number} does not exist in repo {repo_id!r}")
        return row

    def open_pull_request(
        self, repo: RepoRef, *, ticket_id: str, branch: str, title: str, body: str, harness: str
    ) -> PullRequestInfo:
        head = self.branch_sha(repo, branch)
        if head is None:
            raise ForgeError(f"branch {branch!r} does not exist in {repo.remote}")
        existing = self.session.scalar(
            select(PullRequest).where(
                PullRequest.repo_id == repo.repo_id, PullRequest.branch == branch
            )
        )
        if existing is not None:
            if existing.state == PullRequestState.OPEN.value:
                existing.head_sha = head
            return _info(existing)
        number = (
            self.session.scalar(
                select(func.max(PullRequest.number)).where(PullRequest.repo_id == repo.repo_id)
            )
            or 0
        ) + 1
        row = PullRequest(
            repo_id=repo.repo_id,
            number=number,
            ticket_id=ticket_id,
            branch=branch,
            base_branch=repo.default_branch,
            head_sha=head,
            title=title,
            body=body,
            harness=harness,
            state=PullRequestState.OPEN.value,
        )
        self.session.add(row)
        self.session.flush()
        key = f"pr:{repo.repo_id}:{branch}"
        effects.once(self.session, key, "pull_request", lambda: {"number": number, "head": head})
        return _info(row)

    def get_pull_request(self, repo: RepoRef, number: int) -> PullRequestInfo:
        return _info(self._row(repo.repo_id, number))

    def comment(self, repo: RepoRef, number: int, body: str, *, key: str) -> None:
        row = self._row(repo.repo_id, number)
        effects.once(self.session, key, "comment", lambda: {"pr": row.id, "body": body})

    def merge(
        self, repo: RepoRef, number: int, *, expected_head_sha: str, expected_base_sha: str
    ) -> PullRequestInfo:
        """Merge exactly the pair the checks ran on, or raise :class:`BaseMoved`.

        The merge commit is made on ``expected_base_sha`` and pushed without force, so git's
        ref update refuses it if anything else landed first: two merges racing cannot both win.
        """
        row = self._row(repo.repo_id, number)
        if row.state == PullRequestState.MERGED.value:
            return _info(row)
        if row.state != PullRequestState.OPEN.value:
            raise ForgeError(f"pull request #{number} is {row.state}, not open")
        head = self.branch_sha(repo, row.branch)
        if head != expected_head_sha:
            raise ForgeError(
                f"pull request #{number} head moved to {head}, checks ran on {expected_head_sha}"
            )
        with tempfile.TemporaryDirectory(prefix="triloop-merge-") as tmp:
            clone = Path(tmp) / "repo"
            git("clone", "--quiet", "--branch", row.base_branch, repo.remote, str(clone))
            if _is_ancestor(expected_head_sha, "HEAD", clone):  # merged before a crash
                row.merge_sha = git("rev-parse", "HEAD", cwd=clone)
            else:
                row.merge_sha = self._merge_on(clone, row, expected_head_sha, expected_base_sha)
        row.state = next_pr_state(row.state, "merge").value
        row.merged_at = utcnow()
        merged = {"merge_sha": row.merge_sha, "head": expected_head_sha, "base": expected_base_sha}
        effects.once(self.session, f"merge:{repo.repo_id}#{number}", "merge", lambda: merged)
        return _info(row)

    def close_pull_request(
        self, repo: RepoRef, number: int, *, comment: str | None = None
    ) -> PullRequestInfo:
        """Close the row unmerged (a closed one stays as it is), ``comment`` recorded first."""
        row = self._row(repo.repo_id, number)
        if row.state == PullRequestState.MERGED.value:
            raise ForgeError(f"pull request #{number} is merged, not open")
        key = close_key(repo, number)
        if comment and effects.recorded(self.session, key) is None:
            self.comment(repo, number, comment, key=f"comment:{key}")
        if row.state == PullRequestState.OPEN.value:
            row.state = next_pr_state(row.state, "close").value
        effects.once(self.session, key, "close", lambda: {"number": number})
        return _info(row)

    def set_status(
        self, repo: RepoRef, sha: str, *, context: str, state: str, description: str
    ) -> None:
        """Record a commit status; the same (sha, context, state) twice is one status."""
        if state not in STATUS_STATES:
            raise ForgeError(f"status state {state!r} is not one of {sorted(STATUS_STATES)}")
        key = f"status:{repo.repo_id}:{sha}:{context}:{state}"
        effects.once(
            self.session,
            key,
            "status",
            lambda: {"sha": sha, "context": context, "state": state, "description": description},
        )

    def statuses(self, repo: RepoRef, sha: str) -> dict[str, str]:
        """The latest state of each status context on ``sha``."""
        rows = self.session.scalars(
            select(Effect)
            .where(Effect.kind == "status", Effect.key.startswith(f"status:{repo.repo_id}:{sha}:"))
            .order_by(Effect.created_at)
        ).all()
        return {row.result["context"]: row.result["state"] for row in rows}

    def _merge_on(self, clone: Path, row: PullRequest, head: str, base: str) -> str:
        moved = BaseMoved(
            f"{row.base_branch} moved past {base[:12]}: PR #{row.number} needs a recheck"
        )
        if git("rev-parse", "HEAD", cwd=clone) != base:
            raise moved
        git("fetch", "--quiet", "origin", row.branch, cwd=clone)
        message = f"Merge pull request #{row.number} from {row.branch}\n\n{row.title}"
        try:
            git("merge", "--no-ff", "--no-edit", "-m", message, head, cwd=clone)
        except GitError as exc:
            raise ForgeError(f"pull request #{row.number} does not merge cleanly: {exc}") from exc
        try:
            git("push", "--quiet", "origin", f"HEAD:refs/heads/{row.base_branch}", cwd=clone)
        except GitError as exc:
            raise moved from exc
        return git("rev-parse", "HEAD", cwd=clone)


def _is_ancestor(commit: str, of: str, clone: Path) -> bool:
    try:
        git("merge-base", "--is-ancestor", commit, of, cwd=clone)
    except GitError:
        return False
    return True
