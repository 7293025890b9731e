"""The ports: one Protocol each. Local implementations ship now; GitHub and agents plug in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from triloop.domain.contracts import HarnessRequest, HarnessResult, RepoRef
from triloop.domain.policy import HarnessPolicy


@dataclass(frozen=True)
class PullRequestInfo:
    repo_id: str
    number: int
    branch: str
    base_branch: str
    head_sha: str
    state: str
    merge_sha: str | None = None


class ForgeError(RuntimeError):
    """The forge refused or failed an operation; ``transient`` tells retry policies apart."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class BaseMoved(ForgeError):
    """The base branch is no longer the commit the checks ran on: the PR needs a recheck.

    Every forge's ``merge`` raises it instead of merging; governance sends the pull request
    back to ``pr_open`` and its next run checks the PR again on the new base.
    """


@dataclass(frozen=True)
class CloneSource:
    """Where a workspace fetches a repository from, and the environment of that git process.

    ``env`` may hold credentials (git's ``http.extraHeader`` through ``GIT_CONFIG_*``): it is
    given only to git on the host, never written to a workspace or passed to a sandbox, and
    kept out of ``repr`` so it never reaches a log.
    """

    url: str
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


class Forge(Protocol):
    """Where repositories live: branches, pull requests, comments, merges. All idempotent.

    ``merge`` lands exactly the (head, base) pair the checks ran on: a moved base raises
    :class:`BaseMoved`, a moved head a :class:`ForgeError` (refused, never re-checked).
    ``clone_source`` says where workspaces fetch the repository from. ``close_pull_request``
    closes a pull request unmerged, once per PR (effect key :func:`close_key`), Triloop's row of
    it included; an already closed one is fine, a merged or unknown one a :class:`ForgeError`.
    """

    def clone_source(self, repo: RepoRef) -> CloneSource: ...

    def branch_sha(self, repo: RepoRef, branch: str) -> str | None: ...

    def push_branch(self, repo: RepoRef, local_clone: Path, sha: str, branch: str) -> None: ...

    def open_pull_request(
        self,
        repo: RepoRef,
        *,
        ticket_id: str,
        branch: str,
        title: str,
        body: str,
        harness: str,
    ) -> PullRequestInfo: ...

    def get_pull_request(self, repo: RepoRef, number: int) -> PullRequestInfo: ...

    def comment(self, repo: RepoRef, number: int, body: str, *, key: str) -> None: ...

    def set_status(
        self, repo: RepoRef, sha: str, *, context: str, state: str, description: str
    ) -> None: ...

    def statuses(self, repo: RepoRef, sha: str) -> dict[str, str]: ...

    def merge(
        self, repo: RepoRef, number: int, *, expected_head_sha: str, expected_base_sha: str
    ) -> PullRequestInfo: ...

    def close_pull_request(
        self, repo: RepoRef, number: int, *, comment: str | None = None
    ) -> PullRequestInfo: ...


def close_key(repo: RepoRef, number: int) -> str:
    """The effect key of closing pull request ``number``; its comment's is ``comment:`` + it."""
    return f"close:{repo.repo_id}#{number}"


@dataclass(frozen=True)
class TrackerIssue:
    """A ticket as a tracker shows it to people."""

    ticket_id: str
    ref: str
    title: str
    body: str
    state: str  # "open" or "closed"
    close_reason: str | None = None
    resolution: str | None = None  # when closed: "completed" or "not_planned"


RESOLUTIONS = ("completed", "not_planned")


class TrackerError(RuntimeError):
    """The tracker refused or failed an operation.

    ``transient`` tells retry policies apart (a 5xx or a rate limit: retry; a 404, 422 or bad
    credentials: fail now); ``status`` is the tracker's HTTP status where it gave one.
    """

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class Tracker(Protocol):
    """Where tickets are shown to people (the factory DB itself, or an issue tracker).

    Idempotent by ticket id: publishing a ticket twice shows it once, closing twice is one close
    (the first reason and resolution stay). ``resolution`` is one of :data:`RESOLUTIONS`.
    """

    def publish(self, repo: RepoRef, ticket_id: str, *, title: str, body: str) -> TrackerIssue: ...

    def get(self, repo: RepoRef, ticket_id: str) -> TrackerIssue | None: ...

    def close(
        self, repo: RepoRef, ticket_id: str, *, reason: str, resolution: str = "completed"
    ) -> TrackerIssue: ...


class Harness(Protocol):
    """A way of producing a patch for a ticket inside the sandbox.

    The sandbox reads ``request_document`` from /out/request.json and leaves /out/result.json
    (and /out/patch.diff); neither may carry a host path. ``parse_result`` raises
    ``HarnessOutputError`` for a result that does not match the HarnessResult contract;
    ``read_output`` reads the whole output directory (result.json, and for an agent CLI its
    own output for tokens, cost and summary) into the final result, budget applied.
    ``configured`` returns the harness set up from its policy entry (model, key variable).
    """

    name: str

    def configured(self, policy: HarnessPolicy | None) -> Harness: ...

    def command(self, request: HarnessRequest) -> list[str]: ...

    def request_document(self, request: HarnessRequest) -> dict[str, object]: ...

    def parse_result(self, raw: str) -> HarnessResult: ...

    def read_output(self, request: HarnessRequest, out: Path) -> HarnessResult: ...
