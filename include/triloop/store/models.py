"""Triloop's own tables. Analysts query these with SQL; the README documents them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Repo(Base):
    __tablename__ = "repos"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    origin: Mapped[str] = mapped_column(Text, doc="What the user onboarded (path or URL)")
    remote: Mapped[str] = mapped_column(Text, doc="The forge repository the factory pushes to")
    default_branch: Mapped[str] = mapped_column(String(200), default="main")
    root_commit: Mapped[str | None] = mapped_column(
        String(64), nullable=True, index=True, doc="The default branch's root commit: its identity"
    )
    active: Mapped[bool] = mapped_column(default=True)
    onboarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Scan(Base):
    __tablename__ = "scans"
    __table_args__ = (UniqueConstraint("repo_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id"))
    idempotency_key: Mapped[str] = mapped_column(String(300))
    head_sha: Mapped[str] = mapped_column(String(64))
    finding_count: Mapped[int] = mapped_column(default=0)
    ticket_keys: Mapped[list[Any]] = mapped_column(default=list)
    new_ticket_ids: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # Claims read the ready tickets by priority (a backward scan) and stop at the batch.
        Index("ix_tickets_claim_order", "state", "priority"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id"), index=True)
    tool: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    harness: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(default=0)
    # Where the current round of attempts began (an operator's requeue of a dead letter):
    # ``attempts`` itself keeps counting, so attempt numbers (effects, runs) are never reused.
    attempts_base: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(500), nullable=True, index=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    findings: Mapped[list[Any]] = mapped_column(default=list)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The value function's figures (triloop.domain.value); priority holds expected_value.
    confidence: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    impact: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    blast_files: Mapped[int] = mapped_column(default=0, server_default="0")
    blast_modules: Mapped[int] = mapped_column(default=0, server_default="0")
    effort: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    expected_value: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    grouping: Mapped[str] = mapped_column(
        String(32), default="rule_path", server_default="rule_path", doc="Grouping strategy"
    )


class PullRequest(Base):
    __tablename__ = "pull_requests"
    __table_args__ = (UniqueConstraint("repo_id", "branch"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id"), index=True)
    number: Mapped[int] = mapped_column()
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    branch: Mapped[str] = mapped_column(String(300))
    base_branch: Mapped[str] = mapped_column(String(200))
    head_sha: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    harness: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), index=True)
    review_owner: Mapped[str | None] = mapped_column(String(500), nullable=True)
    merge_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    merged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CheckRun(Base):
    __tablename__ = "checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id"), index=True)
    head_sha: Mapped[str] = mapped_column(String(64))
    base_sha: Mapped[str] = mapped_column(String(64))
    check_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    command: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text, default="")
    rule_ids: Mapped[list[Any]] = mapped_column(default=list)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    run_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DecisionRow(Base):
    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    risk: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    head_sha: Mapped[str] = mapped_column(String(64))
    base_sha: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(500))
    artifacts: Mapped[list[Any]] = mapped_column(
        default=list, doc="Files stored with the decision, as ArtifactRef JSON (path, sha256)"
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Effect(Base):
    """One external side effect, recorded under its idempotency key before it is reused."""

    __tablename__ = "effects"
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerEntry(Base):
    """Append-only record of every action the factory took or refused."""

    __tablename__ = "ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    dag_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    try_number: Mapped[int | None] = mapped_column()
    map_index: Mapped[int | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(500))
    action: Mapped[str] = mapped_column(String(64), index=True)
    repo_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(32), index=True)
    pull_request_id: Mapped[int | None] = mapped_column()
    idempotency_key: Mapped[str | None] = mapped_column(String(500))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class HarnessRun(Base):
    """One harness outcome per (ticket, attempt): usage, budget stops, the breaker's input."""

    __tablename__ = "harness_runs"
    __table_args__ = (
        UniqueConstraint("ticket_id", "attempt"),
        # Daily spend sums a day's runs; the breaker reads the latest runs.
        Index("ix_harness_runs_finished_at", "finished_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"))
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id"), index=True)
    harness: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(
        String(32), doc="changed, no_change, failed, over_budget, died (no result), invalid"
    )
    tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    over_budget: Mapped[str] = mapped_column(
        String(32), default="", doc="The limit the run went over (tokens, cost_usd, runtime_s)"
    )
    summary: Mapped[str] = mapped_column(Text, default="")
    run_owner: Mapped[str] = mapped_column(String(500), doc="dag_id/run_id that ran it")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CircuitBreaker(Base):
    """The circuit breaker per scope (``global``): open pauses claiming."""

    __tablename__ = "circuit_breaker"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")
    trial_owner: Mapped[str | None] = mapped_column(String(500), nullable=True)
    trial_ticket: Mapped[str | None] = mapped_column(String(32), nullable=True)
    since_run_id: Mapped[int] = mapped_column(
        default=0, doc="Only harness runs with a greater id count (those since it last closed)"
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Suppression(Base):
    """One entry of the won't-fix list written by ``triloop suppress`` (a ticket or rule:path)."""

    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repo_id: Mapped[str | None] = mapped_column(String(64), index=True, doc="None: every repo")
    ticket_key: Mapped[str | None] = mapped_column(String(64), index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(200), default="*", doc="Rule id or glob")
    path: Mapped[str] = mapped_column(Text, default="**", doc="Path glob")
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Quarantine(Base):
    """A scan's batch of findings that failed flood control: no tickets until released."""

    __tablename__ = "quarantines"
    __table_args__ = (UniqueConstraint("repo_id", "scan_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id"), index=True)
    scan_key: Mapped[str] = mapped_column(String(300), doc="The scan's idempotency key")
    head_sha: Mapped[str] = mapped_column(String(64))
    finding_count: Mapped[int] = mapped_column(default=0)
    failed: Mapped[list[Any]] = mapped_column(default=list, doc="The failed expectations")
    findings: Mapped[list[Any]] = mapped_column(default=list, doc="The batch, as Finding JSON")
    state: Mapped[str] = mapped_column(String(16), default="quarantined", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(500))
    released_ticket_ids: Mapped[list[Any]] = mapped_column(default=list)


class EscapedDefect(Base):
    """A merge whose tests failed on the default branch after it landed: counted once each."""

    __tablename__ = "escaped_defects"
    __table_args__ = (UniqueConstraint("pull_request_id", "merge_sha"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    repo_id: Mapped[str] = mapped_column(ForeignKey("repos.id"), index=True)
    pull_request_id: Mapped[int] = mapped_column(ForeignKey("pull_requests.id"))
    number: Mapped[int] = mapped_column(doc="The merged pull request's number in its repo")
    ticket_id: Mapped[str] = mapped_column(String(32), doc="The merged PR's ticket")
    merge_sha: Mapped[str] = mapped_column(String(64), doc="The merge commit the tests failed on")
    verification_run: Mapped[str] = mapped_column(String(500), doc="dag_id/run_id that verified")
    failing_tests: Mapped[list[Any]] = mapped_column(default=list, doc="Failing test ids")
    revert_number: Mapped[int | None] = mapped_column(doc="The revert PR, if one was opened")
    revert_ticket_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
