"""GitHub Issues as a tracker, through a PyGithub client (from the providers-github hook).

A ticket's issue carries the label ``triloop`` and, at the end of its body, the hidden marker
``<!-- triloop:ticket=T-... -->``: that marker, not a number kept somewhere, is what finds it
again. So publishing is idempotent even when GitHub created the issue and the answer was lost
(the next publish lists the labelled issues updated since the ticket was created and finds the
marker). The issue number found is also kept as an effect (``github-issue:{owner/name}:{ticket}``)
to spare that listing later. A close posts one comment with the reason (marked
``<!-- triloop:close -->``) and closes with ``state_reason`` completed or not_planned.

The client is rebuilt from the given one's settings with a retry that never repeats a POST
(PyGithub's default retries POSTs after a lost answer, which would create a second issue) and
gives up on a rate limit rather than sleeping until it resets. Errors become
:class:`TrackerError` with the status and GitHub's message; 5xx, 429, rate limits and network
errors are transient, the rest permanent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import Any

import requests
from github import Github, GithubException, GithubRetry, RateLimitExceededException
from github.GithubObject import NotSet
from github.Issue import Issue
from github.Repository import Repository
from sqlalchemy.orm import Session
from urllib3.util.retry import Retry

from triloop.adapters.protocols import RESOLUTIONS, TrackerError, TrackerIssue
from triloop.domain.contracts import RepoRef
from triloop.store import effects
from triloop.store.models import Ticket

log = logging.getLogger(__name__)
LABEL = "triloop"
CLOSE_MARKER = "<!-- triloop:close -->"
_CLOSE = re.compile(r"\ATriloop closed this issue: (?P<reason>.*)\n\n" + re.escape(CLOSE_MARKER))
CLOCK_SKEW = timedelta(hours=1)  # between this host's clock and GitHub's, at most


def marker(ticket_id: str) -> str:
    return f"<!-- triloop:ticket={ticket_id} -->"


def safe_retry() -> Retry:
    """Retry reads (and 5xx on them) briefly; never a POST or PATCH; fail on a rate limit."""
    return GithubRetry(
        total=3,
        backoff_factor=0.5,
        max_rate_limit_wait=60,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
    )


class GitHubIssuesTracker:
    """Implements :class:`~triloop.adapters.protocols.Tracker` on one GitHub repository.

    ``client`` returns a PyGithub client (in production ``GithubHook(conn_id).get_conn()``),
    called on first use; ``session`` is Triloop's transaction (tickets and effects).
    ``pace=False`` drops PyGithub's pause between requests (for tests against a local server).
    """

    def __init__(
        self,
        session: Session,
        client: Callable[[], Github],
        repository: str,
        *,
        label: str = LABEL,
        pace: bool = True,
    ) -> None:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
            raise TrackerError(f"GitHub repository {repository!r} must be owner/name")
        self.session = session
        self.repository = repository
        self.label = label
        self._client_factory = client
        self._pace = pace
        self._label_ready = False

    @cached_property
    def _repo(self) -> Repository:
        given = self._client_factory()
        settings: dict[str, Any] = {**given.requester.kwargs, "retry": safe_retry()}
        if not self._pace:
            settings.update(seconds_between_requests=None, seconds_between_writes=None)
        with _github_errors(f"get repository {self.repository}"):
            return Github(**settings).get_repo(self.repository)

    def publish(self, repo: RepoRef, ticket_id: str, *, title: str, body: str) -> TrackerIssue:
        ticket = self.session.get(Ticket, ticket_id)
        if ticket is None or ticket.repo_id != repo.repo_id:
            raise TrackerError(f"ticket {ticket_id!r} does not exist in repo {repo.repo_id!r}")
        issue = self._find(ticket_id)
        if issue is None:
            self._ensure_label()
            with _github_errors(f"create the issue of {ticket_id} in {self.repository}"):
                issue = self._repo.create_issue(
                    title=title, body=f"{body}\n\n{marker(ticket_id)}", labels=[self.label]
                )
            log.info("ticket %s published as %s#%s", ticket_id, self.repository, issue.number)
        found = issue
        effects.once(
            self.session, self._key(ticket_id), "github_issue", lambda: {"number": found.number}
        )
        return self._view(ticket_id, issue)

    def get(self, repo: RepoRef, ticket_id: str) -> TrackerIssue | None:
        issue = self._find(ticket_id)
        return None if issue is None else self._view(ticket_id, issue)

    def close(
        self, repo: RepoRef, ticket_id: str, *, reason: str, resolution: str = "completed"
    ) -> TrackerIssue:
        if resolution not in RESOLUTIONS:
            raise TrackerError(f"resolution {resolution!r} is not one of {list(RESOLUTIONS)}")
        issue = self._find(ticket_id)
        if issue is None:
            raise TrackerError(f"ticket {ticket_id!r} was never published in {repo.repo_id!r}")
        if issue.state != "closed":
            with _github_errors(f"close {self.repository}#{issue.number}"):
                if self._close_reason(issue) is None:
                    issue.create_comment(f"Triloop closed this issue: {reason}\n\n{CLOSE_MARKER}")
                issue.edit(state="closed", state_reason=resolution)
            log.info("ticket %s: %s#%s closed", ticket_id, self.repository, issue.number)
        return self._view(ticket_id, issue)

    # -- lookups ---------------------------------------------------------------------------
    def _key(self, ticket_id: str) -> str:
        return f"github-issue:{self.repository}:{ticket_id}"

    def _find(self, ticket_id: str) -> Issue | None:
        known = effects.recorded(self.session, self._key(ticket_id))
        with _github_errors(f"find the issue of {ticket_id} in {self.repository}"):
            if known is not None:
                return self._repo.get_issue(int(known["number"]))
            ticket = self.session.get(Ticket, ticket_id)
            since = ticket.created_at - CLOCK_SKEW if ticket is not None else NotSet
            tag = marker(ticket_id)
            issues = self._repo.get_issues(
                state="all", labels=[self.label], sort="created", direction="asc", since=since
            )
            for issue in issues:  # oldest first: a duplicate from a race never wins
                if issue.pull_request is None and (issue.body or "").endswith(tag):
                    return issue
        return None

    def _ensure_label(self) -> None:
        if self._label_ready:
            return
        with _github_errors(f"create the label {self.label!r} in {self.repository}"):
            try:
                self._repo.get_label(self.label)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                self._repo.create_label(self.label, "5319e7", "Ticket raised by Triloop")
        self._label_ready = True

    def _close_reason(self, issue: Issue) -> str | None:
        for comment in issue.get_comments():
            found = _CLOSE.match(comment.body or "")
            if found:
                return found["reason"]
        return None

    def _view(self, ticket_id: str, issue: Issue) -> TrackerIssue:
        closed = issue.state == "closed"
        with _github_errors(f"read {self.repository}#{issue.number}"):
            reason = self._close_reason(issue) if closed else None
        return TrackerIssue(
            ticket_id=ticket_id,
            ref=f"{self.repository}#{issue.number}",
            title=issue.title,
            body=(issue.body or "").removesuffix(f"\n\n{marker(ticket_id)}"),
            state=issue.state,
            close_reason=reason,
            resolution=issue.state_reason if closed else None,
        )


@contextmanager
def _github_errors(action: str) -> Iterator[None]:
    """GitHub's and the network's errors as a TrackerError naming ``action``."""
    try:
        yield
    except GithubException as exc:
        data = exc.data
        message = exc.message or (data.get("message") if isinstance(data, dict) else data)
        raise TrackerError(
            f"GitHub could not {action}: {exc.status} {message or 'no message'}",
            transient=_transient(exc),
            status=exc.status,
        ) from exc
    except (requests.RequestException, OSError) as exc:
        raise TrackerError(f"GitHub could not {action}: {exc}", transient=True) from exc


def _transient(exc: GithubException) -> bool:
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    limited = headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
    return (
        exc.status >= 500
        or exc.status == 429
        or isinstance(exc, RateLimitExceededException)
        or (exc.status == 403 and limited)
    )
