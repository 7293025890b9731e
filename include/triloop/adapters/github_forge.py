"""GitHub as the forge, through a PyGithub client (from the providers-github hook).

Branches are pushed with git over HTTPS (:mod:`triloop.adapters.github_git`); pull requests,
commit statuses, comments and merges go through the REST API. Every side effect is recorded
under the same keys as the local forge's (``push:``, ``pr:``, ``merge:``, ``close:``,
``status:``, and the caller's comment key), and each is also safe to repeat when GitHub acted
but its answer was lost: a pull request is found again by its head branch, a comment by a hidden
marker with its key, a merge or close by the pull request being merged or closed already.
Triloop's database keeps a mirror row of each pull request (governance reads it); GitHub stays
the source of truth.

Workspaces fetch from ``clone_url`` too (:meth:`GitHubForge.clone_source`), the token again only
in that git process's environment.

A merge lands exactly the checked pair: the pull request's head must be ``expected_head_sha``
(also sent as the merge's ``sha``, so GitHub refuses with 409 if it moves meanwhile; a moved head
is refused, never re-checked) and the base branch's head ``expected_base_sha``, else
:class:`BaseMoved` (governance re-checks the PR on the new base). GitHub's merge takes no base
guard, so a push to the base between that read and the merge is not caught here; the post-merge
verification runs the tests on what landed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from github import Github, GithubException
from github.PullRequest import PullRequest as GhPull
from github.Repository import Repository
from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.adapters import github_git
from triloop.adapters.github_common import (
    GitHubForgeError,
    errors,
    message,
    pull_info,
    rebuilt,
)
from triloop.adapters.local_forge import STATUS_STATES
from triloop.adapters.protocols import BaseMoved, CloneSource, PullRequestInfo, close_key
from triloop.domain.contracts import RepoRef
from triloop.store import effects
from triloop.store.models import PullRequest, utcnow

log = logging.getLogger(__name__)
DESCRIPTION_MAX = 140  # GitHub's limit on a commit status description


def comment_marker(key: str) -> str:
    return f"<!-- triloop:comment={key} -->"


class GitHubForge:
    """Implements :class:`~triloop.adapters.protocols.Forge` on one GitHub repository.

    ``client`` returns a PyGithub client (in production ``GithubHook(conn_id).get_conn()``),
    called on first use; ``clone_url`` is where branches are pushed (default
    ``https://github.com/{repository}.git``); ``pace=False`` drops PyGithub's pause between
    requests (for tests against a local server).
    """

    def __init__(
        self,
        session: Session,
        client: Callable[[], Github],
        repository: str,
        *,
        clone_url: str | None = None,
        pace: bool = True,
    ) -> None:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
            raise GitHubForgeError(f"GitHub repository {repository!r} must be owner/name")
        self.session = session
        self.repository = repository
        self.clone_url = clone_url or f"https://github.com/{repository}.git"
        self._client_factory = client
        self._pace = pace

    @cached_property
    def _client(self) -> Github:
        return rebuilt(self._client_factory(), pace=self._pace)

    @cached_property
    def _repo(self) -> Repository:
        with errors(f"get repository {self.repository}"):
            return self._client.get_repo(self.repository)

    def _token(self) -> str | None:
        auth = self._client.requester.auth
        return auth.token if auth is not None else None

    # -- branches --------------------------------------------------------------------------
    def clone_source(self, repo: RepoRef) -> CloneSource:
        """``clone_url``, with the token as git's Authorization header in the environment only."""
        return CloneSource(self.clone_url, github_git.auth_env(self.clone_url, self._token()))

    def branch_sha(self, repo: RepoRef, branch: str) -> str | None:
        with errors(f"read branch {branch} of {self.repository}"):
            try:
                return str(self._repo.get_git_ref(f"heads/{branch}").object.sha)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise

    def push_branch(self, repo: RepoRef, local_clone: Path, sha: str, branch: str) -> None:
        if self.branch_sha(repo, branch) != sha:
            github_git.push(self.clone_url, local_clone, sha, branch, self._token)
        key = f"push:{repo.repo_id}:{branch}:{sha}"
        effects.once(self.session, key, "push", lambda: {"branch": branch, "sha": sha})

    # -- pull requests ---------------------------------------------------------------------
    def open_pull_request(
        self, repo: RepoRef, *, ticket_id: str, branch: str, title: str, body: str, harness: str
    ) -> PullRequestInfo:
        if self.branch_sha(repo, branch) is None:
            raise GitHubForgeError(f"branch {branch!r} does not exist in {self.repository}")
        pull = self._find(branch)
        if pull is None:
            with errors(f"open a pull request from {branch} in {self.repository}"):
                pull = self._repo.create_pull(
                    base=repo.default_branch, head=branch, title=title, body=body
                )
            log.info("ticket %s: opened %s#%s", ticket_id, self.repository, pull.number)
        info = pull_info(repo, pull)
        self._mirror(info, ticket_id=ticket_id, title=title, body=body, harness=harness)
        effects.once(
            self.session,
            f"pr:{repo.repo_id}:{branch}",
            "pull_request",
            lambda: {"number": info.number, "head": info.head_sha},
        )
        return info

    def get_pull_request(self, repo: RepoRef, number: int) -> PullRequestInfo:
        info = pull_info(repo, self._pull(number))
        self._mirror(info)
        return info

    def merge(
        self, repo: RepoRef, number: int, *, expected_head_sha: str, expected_base_sha: str
    ) -> PullRequestInfo:
        """Merge exactly the pair the checks ran on, or raise (:class:`BaseMoved` for the base)."""
        key = f"merge:{repo.repo_id}#{number}"
        info = self.get_pull_request(repo, number)
        if info.state == "open" and effects.recorded(self.session, key) is None:
            self._merge(repo, info, expected_head_sha, expected_base_sha)
            info = self.get_pull_request(repo, number)
        if info.state != "merged":
            raise GitHubForgeError(f"pull request #{number} is {info.state}, not open")
        merged = {"merge_sha": info.merge_sha, "head": info.head_sha, "base": expected_base_sha}
        effects.once(self.session, key, "merge", lambda: merged)
        return info

    def _merge(self, repo: RepoRef, info: PullRequestInfo, head: str, base: str) -> None:
        number = info.number
        if info.head_sha != head:
            raise GitHubForgeError(
                f"pull request #{number} head moved to {info.head_sha}, checks ran on {head}"
            )
        if self.branch_sha(repo, info.base_branch) != base:
            raise BaseMoved(
                f"{info.base_branch} moved past {base[:12]}: PR #{number} needs a recheck"
            )
        with errors(f"merge {self.repository}#{number}"):
            try:
                self._pull(number).merge(
                    sha=head,
                    merge_method="merge",
                    commit_title=f"Merge pull request #{number} from {info.branch}",
                )
            except GithubException as exc:
                if exc.status == 409:
                    raise GitHubForgeError(
                        f"pull request #{number} head moved during the merge, checks ran on"
                        f" {head}: {message(exc)}"
                    ) from exc
                if exc.status == 405:
                    raise GitHubForgeError(
                        f"pull request #{number} is not mergeable: {message(exc)}"
                    ) from exc
                raise
        log.info("merged %s#%s at head %s", self.repository, number, head[:12])

    def close_pull_request(
        self, repo: RepoRef, number: int, *, comment: str | None = None
    ) -> PullRequestInfo:
        """Close the pull request on GitHub unmerged (``comment`` first); closed already is fine."""
        key = close_key(repo, number)
        pull = self._pull(number)
        info = pull_info(repo, pull)
        if info.state == "merged":
            raise GitHubForgeError(f"pull request {self.repository}#{number} is merged, not open")
        if effects.recorded(self.session, key) is None:  # the comment also when closed by hand
            if comment:
                self.comment(repo, number, comment, key=f"comment:{key}")
            if info.state == "open":
                with errors(f"close pull request {self.repository}#{number}"):
                    pull.edit(state="closed")
                info = pull_info(repo, pull)
                log.info("closed %s#%s unmerged", self.repository, number)
        self._mirror(info)
        effects.once(self.session, key, "close", lambda: {"number": number})
        return info

    # -- comments and statuses -------------------------------------------------------------
    def comment(self, repo: RepoRef, number: int, body: str, *, key: str) -> None:
        def post() -> dict[str, Any]:
            tag = comment_marker(key)
            with errors(f"comment on {self.repository}#{number}"):
                issue = self._repo.get_issue(number)
                for earlier in issue.get_comments():
                    if (earlier.body or "").endswith(tag):
                        return {"pr": number, "id": earlier.id}
                return {"pr": number, "id": issue.create_comment(f"{body}\n\n{tag}").id}

        effects.once(self.session, key, "comment", post)

    def set_status(
        self, repo: RepoRef, sha: str, *, context: str, state: str, description: str
    ) -> None:
        """Set a commit status (the check summary as its description); once per state."""
        if state not in STATUS_STATES:
            raise GitHubForgeError(f"status state {state!r} is not one of {sorted(STATUS_STATES)}")
        text = (
            description[: DESCRIPTION_MAX - 1] + "…"
            if len(description) > DESCRIPTION_MAX
            else description
        )

        def post() -> dict[str, Any]:
            with errors(f"set status {context} on {sha[:12]} in {self.repository}"):
                if self.statuses(repo, sha).get(context) != state:
                    self._repo.get_commit(sha).create_status(
                        state, description=text, context=context
                    )
            return {"sha": sha, "context": context, "state": state, "description": text}

        key = f"status:{repo.repo_id}:{sha}:{context}:{state}"
        effects.once(self.session, key, "status", post)

    def statuses(self, repo: RepoRef, sha: str) -> dict[str, str]:
        """The latest state of each status context on ``sha`` (none for an unknown commit)."""
        with errors(f"read the statuses of {sha[:12]} in {self.repository}"):
            try:
                combined = self._repo.get_commit(sha).get_combined_status()
            except GithubException as exc:
                if exc.status in (404, 422):
                    return {}
                raise
            return {status.context: status.state for status in combined.statuses}

    # -- lookups ---------------------------------------------------------------------------
    def _pull(self, number: int) -> GhPull:
        with errors(f"read pull request {self.repository}#{number}"):
            pull = self._repo.get_pull(number)
            pull.head  # noqa: B018 - fetch now, inside the error mapping
            return pull

    def _find(self, branch: str) -> GhPull | None:
        """The pull request from ``branch``: the open one, else the newest."""
        owner = self.repository.split("/")[0]
        with errors(f"list pull requests from {branch} in {self.repository}"):
            pulls = list(self._repo.get_pulls(state="all", head=f"{owner}:{branch}"))
        return next((p for p in pulls if p.state == "open"), pulls[0] if pulls else None)

    def _mirror(self, info: PullRequestInfo, **new: str) -> None:
        """Keep Triloop's row of the pull request in step (create it when opening)."""
        row = self.session.scalar(
            select(PullRequest).where(
                PullRequest.repo_id == info.repo_id, PullRequest.number == info.number
            )
        )
        if row is None and not new:
            return
        if row is None:
            row = PullRequest(repo_id=info.repo_id, number=info.number, branch=info.branch, **new)
            self.session.add(row)
        row.base_branch, row.head_sha, row.merge_sha = (
            info.base_branch,
            info.head_sha,
            info.merge_sha,
        )
        if row.state != info.state:
            row.state = info.state
            row.merged_at = utcnow() if info.state == "merged" else row.merged_at
        self.session.flush()
