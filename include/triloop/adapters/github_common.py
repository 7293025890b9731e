"""What the GitHub forge shares: its client, its error mapping, a pull request as the forge sees it.

The client is rebuilt from the given one's settings (the providers-github hook's, with its token
or GitHub App installation auth) with a retry that never repeats a POST or PUT
(:func:`~triloop.adapters.github_tracker.safe_retry`). Errors are classified as the GitHub
tracker's are: 5xx, 429, rate limits and network errors transient, the rest permanent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from github import Github, GithubException
from github.PullRequest import PullRequest as GhPull

from triloop.adapters.github_tracker import _transient, safe_retry
from triloop.adapters.protocols import ForgeError, PullRequestInfo
from triloop.domain.contracts import RepoRef


class GitHubForgeError(ForgeError):
    """A GitHub forge error; ``status`` is GitHub's HTTP status where it gave one."""

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message, transient=transient)
        self.status = status


def rebuilt(given: Github, *, pace: bool) -> Github:
    """``given``'s settings and auth, a safe retry; no pause between requests unless ``pace``."""
    settings: dict[str, Any] = {**given.requester.kwargs, "retry": safe_retry()}
    if not pace:
        settings.update(seconds_between_requests=None, seconds_between_writes=None)
    return Github(**settings)


def pull_info(repo: RepoRef, pull: GhPull) -> PullRequestInfo:
    state = "merged" if pull.merged else pull.state
    return PullRequestInfo(
        repo_id=repo.repo_id,
        number=pull.number,
        branch=pull.head.ref,
        base_branch=pull.base.ref,
        head_sha=pull.head.sha,
        state=state,
        merge_sha=pull.merge_commit_sha if state == "merged" else None,
    )


def message(exc: GithubException) -> str:
    data = exc.data
    return str(exc.message or (data.get("message") if isinstance(data, dict) else data))


@contextmanager
def errors(action: str) -> Iterator[None]:
    """GitHub's and the network's errors as a ForgeError naming ``action``."""
    try:
        yield
    except GithubException as exc:
        raise GitHubForgeError(
            f"GitHub could not {action}: {exc.status} {message(exc) or 'no message'}",
            transient=_transient(exc),
            status=exc.status,
        ) from exc
    except (requests.RequestException, OSError) as exc:
        raise GitHubForgeError(f"GitHub could not {action}: {exc}", transient=True) from exc
