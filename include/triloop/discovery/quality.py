"""Flood control: each scan's batch of findings must pass a Great Expectations suite.

The suite checks the batch's schema (columns present and typed), that every finding has a
fingerprint, that severities are in their domain, and that the row count is within the
repository's history: at most ``max(row_floor, row_factor x median)`` of its last
``history_scans`` accepted scans, once it has ``min_history`` of them. Great Expectations is
imported inside :func:`validate_batch` (about 2-3 s): only discovery's ingest task pays it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from triloop.domain.contracts import Finding, Severity
from triloop.domain.policy import FloodControl
from triloop.store.models import Quarantine, Scan

log = logging.getLogger(__name__)

SEVERITIES: tuple[str, ...] = get_args(Severity)
COLUMNS: dict[str, str] = {
    "tool": "str",
    "rule": "str",
    "path": "str",
    "line": "int64",
    "severity": "str",
    "fingerprint": "str",
}
"""The batch's columns and the type of their values (pandas dtype for line)."""


@dataclass(frozen=True)
class BatchReport:
    """The suite's verdict on one batch."""

    success: bool
    rows: int
    max_rows: int | None
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def row_bound(history: Sequence[int], rules: FloodControl) -> int | None:
    """The most findings a batch may hold, from the counts of earlier scans (newest first)."""
    counts = list(history[: rules.history_scans])
    if len(counts) < rules.min_history:
        return None
    return max(rules.row_floor, int(rules.row_factor * median(counts)))


def history(session: Session, repo_id: str, rules: FloodControl) -> list[int]:
    """Finding counts of the repo's latest scans, newest first (quarantined ones excluded)."""
    quarantined = select(Quarantine.scan_key).where(Quarantine.repo_id == repo_id)
    rows = session.scalars(
        select(Scan.finding_count)
        .where(Scan.repo_id == repo_id, Scan.idempotency_key.not_in(quarantined))
        .order_by(Scan.id.desc())
        .limit(rules.history_scans)
    ).all()
    return list(rows)


def records(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """The batch as rows; an empty fingerprint is a missing one."""
    return [
        {
            "tool": f.tool,
            "rule": f.rule,
            "path": f.path,
            "line": f.line,
            "severity": f.severity,
            "fingerprint": f.fingerprint or None,
        }
        for f in findings
    ]


def validate_batch(rows: list[dict[str, Any]], max_rows: int | None) -> BatchReport:
    """Run the flood-control suite on one batch (``rows``: see :func:`records`)."""
    started = time.perf_counter()
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = (
        context.data_sources.add_pandas("scan")
        .add_dataframe_asset("findings")
        .add_batch_definition_whole_dataframe("batch")
    )
    suite = context.suites.add(gx.ExpectationSuite(name="triloop_findings"))
    for column, dtype in COLUMNS.items():
        suite.add_expectation(gxe.ExpectColumnToExist(column=column))
        suite.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=column, type_=dtype))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="fingerprint"))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="severity"))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column="severity", value_set=list(SEVERITIES))
    )
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=0, max_value=max_rows))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="flood_control", data=batch, suite=suite)
    )
    # Columns come from the rows themselves, so a missing one fails its expectation.
    empty = {column: pd.Series(dtype=dtype) for column, dtype in COLUMNS.items()}
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(empty)
    result = validation.run(batch_parameters={"dataframe": frame})
    failed = [_failure(r) for r in result.results if not r.success]
    report = BatchReport(
        success=bool(result.success),
        rows=len(rows),
        max_rows=max_rows,
        failed=failed,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "flood control: %s rows (bound %s): %s in %.2f s",
        report.rows,
        max_rows,
        "passed" if report.success else f"{len(failed)} expectations failed",
        report.seconds,
    )
    return report


def _failure(result: Any) -> dict[str, Any]:
    """One failed expectation, small enough for a ledger row."""
    config, observed = result.expectation_config, dict(result.result or {})
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    detail = {
        k: observed[k]
        for k in ("observed_value", "unexpected_count", "partial_unexpected_list")
        if k in observed
    }
    if "partial_unexpected_list" in detail:
        detail["partial_unexpected_list"] = [str(v) for v in detail["partial_unexpected_list"][:5]]
    info = result.exception_info or {}
    if isinstance(info, dict) and info.get("raised_exception"):
        detail["exception"] = str(info.get("exception_message"))[:200]
    return {"expectation": config.type, "kwargs": kwargs, **detail}
