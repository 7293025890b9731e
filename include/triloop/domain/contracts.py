"""Versioned payloads that cross a task or DAG boundary.

Each task takes and returns one of these (as JSON through XCom); large artifacts stay on disk
and travel by path and sha256. New fields get defaults so that old payloads still load.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
READABLE_VERSIONS = frozenset({1})
"""Schema versions this Triloop reads; a payload of any other version is refused, not guessed."""


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int = Field(default=SCHEMA_VERSION, description="Payload schema version")

    @field_validator("schema_version")
    @classmethod
    def _readable_version(cls, version: int) -> int:
        if version not in READABLE_VERSIONS:
            readable = ", ".join(str(v) for v in sorted(READABLE_VERSIONS))
            raise ValueError(
                f"schema_version {version} is not one this Triloop reads ({readable}): "
                "a newer or foreign producer wrote it"
            )
        return version


Severity = Literal["info", "low", "medium", "high", "critical"]


ScannerName = Literal[
    "ruff",
    "semgrep",
    "pytest",
    "coverage",
    "osv",
    "licenses",
    "errorlog",
    "outdated",
    "environment",
]


class Finding(Contract):
    """One problem a scanner reported, normalised across tools."""

    tool: ScannerName = Field(description="Scanner that reported it")
    rule: str = Field(description="Rule id, e.g. F401 or triloop.python.eval-use")
    path: str = Field(description="Path relative to the repository root")
    line: int = Field(ge=0, description="1-based line of the finding")
    message: str = Field(description="The scanner's message")
    severity: Severity = Field(default="low", description="Normalised severity")
    fixable: bool = Field(default=False, description="The scanner can fix it without judgement")
    symbol: str = Field(default="", description="Enclosing function or class, if known")
    code: str = Field(default="", description="The offending source line, stripped")
    fingerprint: str = Field(default="", description="Stable id across line shifts")
    group_key: str = Field(
        default="",
        description="Root cause shared by findings fixed together (a stack signature, an"
        " advisory's package); empty: grouped by rule and path",
    )
    data: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Scanner figures (installed and fixed version, license, rate per hour, ...)",
    )


class TicketView(Contract):
    """A ticket as it leaves the factory: ``triloop show --json``, trackers, analysts' tools."""

    ticket_id: str
    repo_id: str
    state: str = Field(description="Lifecycle state (triloop.domain.states.TicketState)")
    title: str
    tool: str
    rule: str
    path: str
    severity: Severity
    harness: str | None = Field(default=None, description="Harness that may fix it, if any")
    priority: float = Field(default=0.0, description="Claim order: the expected value")
    confidence: float = Field(default=0.0, ge=0, le=1, description="Value function: confidence")
    impact: float = Field(default=0.0, ge=0, description="Value function: weighted impact")
    blast_files: int = Field(default=0, ge=0, description="Files the ticket's findings are in")
    blast_modules: int = Field(default=0, ge=0, description="Package directories they are in")
    effort: float = Field(default=0.0, ge=0, description="Value function: effort estimate")
    expected_value: float = Field(
        default=0.0, ge=0, description="confidence * impact / effort (triloop.domain.value)"
    )
    grouping: str = Field(
        default="rule_path", description="Grouping strategy: rule_path, module or group_key"
    )
    attempts: int = Field(
        default=0, ge=0, description="Attempts ever made (numbers are not reused after a requeue)"
    )
    lease_owner: str | None = None
    lease_expires_at: str | None = Field(default=None, description="ISO-8601 UTC expiry")
    last_error: str | None = None
    findings: list[Finding] = Field(default_factory=list)


class RepoRef(Contract):
    """An onboarded repository as the loops see it."""

    repo_id: str
    name: str
    remote: str = Field(description="Git URL of the forge repository")
    default_branch: str = "main"


class ScanRequest(Contract):
    """A prepared scan: a checkout at ``head_sha`` and where the sandbox writes its output."""

    repo_id: str
    head_sha: str
    workspace: str = Field(description="Host path of the checkout, mounted at /workspace")
    output_dir: str = Field(description="Host path mounted at /out")


class Claim(Contract):
    """A ticket held under a lease by one DAG run."""

    ticket_id: str
    repo_id: str
    owner: str = Field(description="dag_id/run_id that holds the lease")
    lease_expires_at: str = Field(description="ISO-8601 UTC expiry")
    attempt: int = Field(ge=1)


class Budget(Contract):
    """What one harness run may spend; the first limit reached stops it (status over_budget)."""

    max_tokens: int = Field(default=200_000, ge=1, description="Model tokens (input + output)")
    max_cost_usd: float = Field(default=2.0, gt=0, description="Model cost in US dollars")
    max_runtime_s: int = Field(default=900, ge=10, description="Wall-clock seconds in the sandbox")


class HarnessRequest(Contract):
    """What a harness is asked to do, written to /out/request.json for the sandbox."""

    harness: str = Field(description="Harness name, e.g. autofix")
    ticket_id: str
    rule: str
    paths: list[str]
    title: str = Field(
        default="", description="The ticket's title: untrusted text, shown to agents only as data"
    )
    details: str = Field(
        default="",
        description="The ticket's findings and feedback as text: untrusted, shown only as data",
    )
    budget: Budget = Field(default_factory=Budget, description="Per-ticket limits for this run")
    attempt: int = Field(default=0, ge=0, description="The claim's attempt (0: not recorded)")
    repo_id: str = ""
    base_sha: str = ""
    workspace: str = ""
    output_dir: str = ""
    mode: Literal["fix", "review"] = Field(
        default="fix",
        description="fix: change the working tree for a ticket; review: read a pull request's"
        " diff (workspace read-only, no patch) and write findings to /out/review.json",
    )


class HarnessResult(Contract):
    """What the harness reported in /out/result.json."""

    harness: str
    ticket_id: str
    status: Literal["changed", "no_change", "failed", "over_budget"]
    summary: str = ""
    over_budget: str = Field(
        default="",
        description="The limit that stopped the harness (tokens, cost_usd, runtime_s), else empty",
    )
    files_changed: list[str] = Field(default_factory=list)
    exit_code: int = 0
    duration_s: float = Field(default=0.0, ge=0, description="Wall-clock seconds in the sandbox")
    tokens: int = Field(default=0, ge=0, description="Model tokens used (0 for autofix)")
    cost_usd: float = Field(default=0.0, ge=0, description="Model cost in US dollars")


class PatchArtifact(Contract):
    """A validated patch on disk, referenced by path and digest."""

    ticket_id: str
    path: str
    sha256: str
    files: list[str]
    base_sha: str


class PullRequestRef(Contract):
    """A pull request the factory opened, as the loops refer to it."""

    repo_id: str
    number: int
    ticket_id: str
    branch: str
    head_sha: str


class CheckResult(Contract):
    """Evidence from one deterministic check."""

    check_id: str
    status: Literal["passed", "failed", "error"]
    command: str = Field(description="Command a reviewer can run to reproduce it")
    excerpt: str = ""
    rule_ids: list[str] = Field(default_factory=list)
    duration_s: float = 0.0


class ArtifactRef(Contract):
    """A file stored with a decision in the artifact directory, referenced by path and digest."""

    kind: str = Field(description="What the file is, e.g. sbom-cyclonedx-json")
    path: str = Field(description="Host path of the file under the artifact directory")
    sha256: str = Field(description="Hex sha256 of the file's bytes")


class Decision(Contract):
    """Governance's verdict on one pull request."""

    repo_id: str
    number: int
    outcome: Literal["auto_merge", "needs_human", "blocked"]
    risk: Literal["low", "medium", "high"]
    reasons: list[str] = Field(default_factory=list)
    head_sha: str = ""
    base_sha: str = ""
    artifacts: list[ArtifactRef] = Field(
        default_factory=list,
        description="Files stored with the decision (the merged environment's SBOM)",
    )

    @classmethod
    def from_task_output(cls, data: dict[str, Any]) -> Decision:
        """The decision inside a task's output, which adds display fields (title, evidence)."""
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})


class TicketsEventExtra(Contract):
    """``extra`` of a ``triloop://tickets`` asset event."""

    ticket_ids: list[str] = Field(default_factory=list, description="Tickets created by the run")


class PullRequestsEventExtra(Contract):
    """``extra`` of a ``triloop://pull_requests`` asset event."""

    pull_requests: list[PullRequestRef] = Field(default_factory=list)


class MergesEventExtra(Contract):
    """``extra`` of a ``triloop://merges`` asset event."""

    merges: list[dict[str, str | int]] = Field(default_factory=list)


class ReviewRequest(Contract):
    """One pull request prepared for governance's sandboxed checks."""

    repo_id: str
    number: int
    ticket_id: str
    head_sha: str = Field(description="PR head the checks are about")
    base_sha: str = Field(description="Default-branch commit it will merge into")
    base_workspace: str = Field(description="Checkout of base_sha")
    merged_workspace: str = Field(description="Checkout of base merged with head: what lands")
    base_out: str
    merged_out: str
    tests_out: str
    review_out: str = Field(
        default="", description="Host path mounted at /out for the LLM reviewer; empty: none"
    )
    base_tests_out: str = Field(
        default="", description="Output of the base's tests on the base: the reference counts"
    )
    guard_workspace: str = Field(
        default="",
        description="The merged checkout with the base's tests and test configuration restored",
    )
    guard_out: str = Field(
        default="", description="Output of the base's tests on the merged code (the guard)"
    )
    reproduce_workspace: str = Field(
        default="",
        description="Writable checkout of the PR's merge base where governance reruns the"
        " autofix; empty: not an autofix PR",
    )
    reproduce_out: str = Field(default="", description="Output of the autofix rerun")
    analysis_note: str = Field(
        default="", description="The configuration the analyzers ran with, for the evidence"
    )


class VerificationRequest(Contract):
    """One merged pull request prepared for post-merge verification (the tests, in the sandbox)."""

    repo_id: str
    number: int = Field(description="The merged pull request")
    ticket_id: str
    merge_sha: str = Field(description="Its merge commit on the default branch: what is tested")
    workspace: str = Field(description="Checkout of merge_sha")
    tests_out: str = Field(description="Where the sandbox's `check` writes checks.json")


class Verification(Contract):
    """What post-merge verification concluded for one merge."""

    repo_id: str
    number: int
    ticket_id: str
    merge_sha: str
    outcome: Literal["verified", "reverted", "escalated"] = Field(
        description="verified: tests green; reverted: a revert PR is open; escalated: a human"
        " decides (a revert that still fails, or a revert that does not apply)"
    )
    failing_tests: list[str] = Field(default_factory=list, description="Failing test ids")
    revert: PullRequestRef | None = Field(default=None, description="The revert PR, if opened")
