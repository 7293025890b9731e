"""The policy file: autonomy levels, attempts, leases and what the autofix harness may touch."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from triloop.domain.code_scan_policy import CodeScanPolicy
from triloop.domain.dependency_trust_policy import DependencyTrustPolicy
from triloop.domain.forge_policy import ForgePolicy
from triloop.domain.grouping import GroupingRules
from triloop.domain.reviewer_policy import ReviewerPolicy
from triloop.domain.risk_rules import RiskRules
from triloop.domain.sandbox_resources import SandboxResources
from triloop.domain.test_suite_policy import TestSuitePolicy
from triloop.domain.value import ValueRules


class PolicyError(ValueError):
    """The policy file is missing or invalid; the message names the file and the field."""


DEFAULT_PROTECTED_PATHS = (
    ".github/workflows/**",
    ".github/actions/**",
    "**/CODEOWNERS",
    ".gitlab-ci.yml",
    ".circleci/**",
    "**/Jenkinsfile",
    "**/Dockerfile*",
    "**/triloop*.yaml",
    "include/policy/**",
)


class PatchRules(BaseModel):
    """What a harness patch may contain before anything is committed or pushed."""

    model_config = ConfigDict(extra="forbid")
    max_files: int = Field(default=20, ge=1, description="Files one patch may change")
    max_lines: int = Field(
        default=500, ge=1, description="Changed lines (added plus removed) one patch may have"
    )
    allow_executable: bool = Field(
        default=False, description="Whether a patch may create or mark files executable (100755)"
    )
    protected_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PROTECTED_PATHS),
        description="Globs (** spans directories) whose changes always need a human to merge",
    )


def protected_match(path: str, globs: Sequence[str]) -> str | None:
    """The first glob in ``globs`` that ``path`` (repo-relative, POSIX) matches, if any."""
    return next((g for g in globs if _glob_regex(g).fullmatch(path)), None)


@lru_cache(maxsize=256)
def _glob_regex(glob: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


class Budgets(BaseModel):
    """Spending limits. Per ticket they stop one harness run; daily ones stop claiming."""

    model_config = ConfigDict(extra="forbid")
    ticket_max_tokens: int = Field(default=200_000, ge=1, description="Tokens one run may use")
    ticket_max_cost_usd: float = Field(default=2.0, gt=0, description="Dollars one run may spend")
    ticket_max_runtime_s: int = Field(default=900, ge=10, description="Seconds one run may take")
    repo_daily_cost_usd: float = Field(
        default=20.0, gt=0, description="Dollars all runs on one repository may spend per UTC day"
    )
    global_daily_cost_usd: float = Field(
        default=100.0, gt=0, description="Dollars all runs may spend per UTC day"
    )


class CircuitBreakerRules(BaseModel):
    """When repeated harness failures pause execution, and when it tries again."""

    model_config = ConfigDict(extra="forbid")
    consecutive_failures: int = Field(
        default=3, ge=1, description="Failed harness runs in a row that open the breaker"
    )
    failure_rate: float = Field(
        default=0.5, gt=0, le=1, description="Failure share over the window that opens it"
    )
    window_runs: int = Field(default=20, ge=1, description="Latest harness runs the rate covers")
    min_runs: int = Field(default=6, ge=1, description="Runs in the window before the rate counts")
    cooldown_s: int = Field(
        default=900, ge=1, description="Seconds open before one trial run is let through"
    )


class HarnessPolicy(BaseModel):
    """How one harness runs: its image, the only hosts it may reach, its API key."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(
        default=None, description="Sandbox image for this harness (default: TRILOOP_SANDBOX_IMAGE)"
    )
    egress: list[str] = Field(
        default_factory=list,
        description="host:port pairs reachable through the egress proxy; empty means no network",
    )
    api_key_conn_id: str | None = Field(
        default=None,
        description="Airflow connection whose password is the model API key (never a forge token)",
    )
    api_key_env: str | None = Field(
        default=None, description="Variable the key is handed in as (private_environment)"
    )
    model: str | None = Field(default=None, description="Model name passed to the agent CLI")
    api_base: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible model API (its host:port must be in egress)",
    )

    @field_validator("egress")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for item in value:
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"egress entry {item!r} must be host:port")
        return value

    @model_validator(mode="after")
    def _api_base_allowed(self) -> HarnessPolicy:
        if self.api_base:
            url = urlsplit(self.api_base)
            default = 443 if url.scheme == "https" else 80
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(f"api_base {self.api_base!r} must be an http(s) URL")
            if f"{url.hostname}:{url.port or default}" not in self.egress:
                raise ValueError(f"api_base {self.api_base!r}: its host:port is not in egress")
        return self


class HostScannerPolicy(BaseModel):
    """Scanners that read data on the host (no repository code runs): advisories and an index.

    Each is off until its source is set. Error logs are per repository (repos.ID.error_logs).
    """

    model_config = ConfigDict(extra="forbid")
    osv_database: str | None = Field(
        default=None,
        description="Absolute path of a directory or .zip of OSV JSON advisories (e.g. osv.dev's"
        " PyPI all.zip); None: the osv scanner is off",
    )
    package_index: str | None = Field(
        default=None,
        description="PEP 503 simple index base URL (https://, http:// or file://); None: the"
        " outdated scanner is off",
    )
    index_timeout_s: float = Field(default=10.0, gt=0, description="Seconds per index page")
    outdated_gaps: list[Literal["major", "minor", "patch"]] = Field(
        default=["major", "minor", "patch"],  # pydantic copies a mutable default per instance
        description="Which gaps between a pin and the newest release the outdated scanner reports",
    )
    python_version: str | None = Field(
        default=None,
        description="Target Python (e.g. 3.11): releases whose data-requires-python excludes it"
        " do not count as newer; None: every release counts",
    )
    errorlog_window_hours: float = Field(
        default=24.0, gt=0, description="Hours (ending at the log's newest event) a rate covers"
    )

    @field_validator("osv_database")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_absolute():
            raise ValueError(f"osv_database {value!r} must be an absolute path")
        return value

    @field_validator("package_index")
    @classmethod
    def _index_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https", "file"):
            raise ValueError(f"package_index {value!r} must be an http(s):// or file:// URL")
        return value


class WontFix(BaseModel):
    """One entry of the won't-fix list: findings it matches never become tickets."""

    model_config = ConfigDict(extra="forbid")
    rule: str = Field(default="*", description="Rule id or fnmatch glob (F401, triloop.python.*)")
    path: str = Field(default="**", description="Path glob (** spans directories)")
    repo: str | None = Field(default=None, description="Repository id; None: every repository")
    reason: str = Field(
        min_length=1, description="Why it is not worth fixing (shown in the ledger)"
    )


class FloodControl(BaseModel):
    """The Great Expectations suite each scan's batch of findings must pass to make tickets."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="Validate every batch before grouping")
    history_scans: int = Field(default=10, ge=1, description="Latest scans the median covers")
    min_history: int = Field(
        default=3, ge=1, description="Scans a repo needs before its row-count bound applies"
    )
    row_factor: float = Field(
        default=10.0, gt=1, description="A batch may hold up to this times the median count"
    )
    row_floor: int = Field(
        default=500, ge=1, description="... but never less than this many findings"
    )


class SuppressionRules(BaseModel):
    """Staying quiet: cooldowns, the won't-fix list, caps and reopening on escalation."""

    model_config = ConfigDict(extra="forbid")
    cooldown_hours: float = Field(
        default=24.0,
        ge=0,
        description="After a ticket is rejected, dead-lettered or closed, its key stays quiet"
        " this long (not even an escalation reopens it)",
    )
    reopen_factor: float = Field(
        default=10.0,
        gt=1,
        description="A closed ticket reopens when its rate_per_hour reaches this times the"
        " rate recorded when it closed",
    )
    max_open_per_repo: int | None = Field(
        default=None, ge=1, description="Open tickets per repository; None: no cap"
    )
    max_new_per_hour: int | None = Field(
        default=None, ge=1, description="New tickets per repository per hour; None: no cap"
    )
    wont_fix: list[WontFix] = Field(default_factory=list, description="The won't-fix list")
    flood_control: FloodControl = Field(default_factory=FloodControl)


class TrackerPolicy(BaseModel):
    """Where a repository's tickets are shown to people: Triloop's database or GitHub Issues."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(default="local", description="local (the Triloop DB) or github (Issues)")
    conn_id: str = Field(
        default="github_default", description="Airflow GitHub connection (token or GitHub App)"
    )
    repo: str | None = Field(default=None, description="owner/name of the GitHub repository")
    label: str = Field(default="triloop", description="Label on every issue Triloop opens")

    @model_validator(mode="after")
    def _github_needs_repo(self) -> TrackerPolicy:
        if self.kind not in ("local", "github"):
            raise ValueError(f"tracker kind {self.kind!r} is not one of ['local', 'github']")
        if self.kind == "github" and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repo or ""):
            raise ValueError(f"a github tracker needs repo: owner/name, not {self.repo!r}")
        return self


class RepoPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    autonomy_level: int = Field(default=1, ge=0, le=3, description="0 observe .. 3 merge medium")
    tracker: TrackerPolicy = Field(
        default_factory=TrackerPolicy, description="Where this repo's tickets are shown"
    )
    forge: ForgePolicy = Field(
        default_factory=ForgePolicy, description="Where this repo's branches and PRs live"
    )
    error_logs: str | None = Field(
        default=None,
        description="Absolute path of this repo's JSON-lines error log or Sentry-style event"
        " export; None: the errorlog scanner is off for it",
    )

    @field_validator("error_logs")
    @classmethod
    def _absolute_log(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_absolute():
            raise ValueError(f"error_logs {value!r} must be an absolute path")
        return value


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = 1
    default_autonomy_level: int = Field(default=1, ge=0, le=3)
    max_attempts: int = Field(default=3, ge=1, description="Harness attempts before dead letter")
    lease_seconds: int = Field(default=900, ge=30, description="How long a claim holds a ticket")
    claim_batch: int = Field(default=2, ge=1, le=32, description="Tickets one execution run takes")
    autofix_rules: list[str] = Field(
        default_factory=list, description="Ruff rules the deterministic autofix harness may fix"
    )
    agent_harness: str | None = Field(
        default=None,
        description="Agent harness (e.g. claude-code) for tickets autofix cannot fix; "
        "None: only autofix-able tickets are worked",
    )
    sandbox_wall_clock_s: int = Field(default=900, ge=10)
    sandbox_resources: SandboxResources = Field(
        default_factory=SandboxResources,
        description="Disk budget of each writable mount, container and task log caps, patch size",
    )
    patch: PatchRules = Field(
        default_factory=PatchRules, description="Limits and protected paths for harness patches"
    )
    budgets: Budgets = Field(default_factory=Budgets, description="Token, cost, runtime limits")
    circuit_breaker: CircuitBreakerRules = Field(default_factory=CircuitBreakerRules)
    harnesses: dict[str, HarnessPolicy] = Field(
        default_factory=dict, description="Per-harness image, egress allowlist and API key"
    )
    host_scanners: HostScannerPolicy = Field(
        default_factory=HostScannerPolicy,
        description="Sources of the host-side scanners (OSV advisories, a package index)",
    )
    suppression: SuppressionRules = Field(
        default_factory=SuppressionRules,
        description="Cooldowns, won't-fix list, ticket caps, reopening, flood control",
    )
    code_scans: CodeScanPolicy = Field(
        default_factory=CodeScanPolicy,
        description="Tests, coverage and licenses scanners (run in the sandbox)",
    )
    dependency_trust: DependencyTrustPolicy = Field(
        default_factory=DependencyTrustPolicy,
        description="Governance's check of added or changed requirements (typosquats, pins, age)",
    )
    risk: RiskRules = Field(
        default_factory=RiskRules,
        description="Governance's risk tiers (paths, size, dependencies) and auto-merge gate",
    )
    reviewer: ReviewerPolicy = Field(
        default_factory=ReviewerPolicy,
        description="Governance's optional LLM reviewer: it can add findings and block, never"
        " merge alone (off unless reviewer.harness is set)",
    )
    test_suites: TestSuitePolicy = Field(
        default_factory=TestSuitePolicy,
        description="Extra pytest arguments of the pre-merge tests check and of post-merge"
        " verification (a fast suite before the merge, the full one after it)",
    )
    repos: dict[str, RepoPolicy] = Field(default_factory=dict)
    grouping: GroupingRules = Field(
        default_factory=GroupingRules, description="How findings become tickets"
    )
    value: ValueRules = Field(
        default_factory=ValueRules, description="Weights of the value function ranking tickets"
    )

    def autonomy_for(self, repo_id: str) -> int:
        repo = self.repos.get(repo_id)
        return repo.autonomy_level if repo else self.default_autonomy_level

    def autofix_allows(self, rule: str) -> bool:
        return rule in self.autofix_rules


def load_policy(path: Path) -> Policy:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {path} must be a mapping at the top level")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise PolicyError(f"policy file {path}: field {field!r}: {first['msg']}") from exc
