"""The value function: what fixing one ticket is worth, and so the order execution takes them.

Pure: a ticket's findings and the policy's ``value:`` weights in, figures out.

- **confidence** (0-1): how sure we are the finding is real and the fix is right; per tool from
  the policy, raised to ``fixable_confidence`` when the tool can fix every finding itself.
- **impact**: the weighted sum of four signals,

  ``risk_reduction * Σ severity weight``
  ``+ incident_frequency * Σ error-log rate per hour`` (``data["rate_per_hour"]``)
  ``+ cycle_time * failing tests`` (pytest findings: every change waits on them)
  ``+ coverage_gain * Σ missing / statements`` (coverage findings, ``data["missing"]`` and
  ``data["statements"]``: the share of the file's lines a test would newly cover).

- **blast radius**: files and package directories the ticket touches.
- **effort**: ``effort_base + effort_per_file * (files - 1) + effort_per_finding * (findings -
  1)``, times ``autofix_effort_factor`` when the deterministic autofix harness takes it.
- **expected value** = confidence * impact / effort. It is the ticket's ``priority``, and
  execution claims the highest first.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from triloop.domain.contracts import Finding

DEFAULT_CONFIDENCE = {
    "ruff": 0.95,
    "semgrep": 0.7,
    "pytest": 0.9,
    "coverage": 0.6,
    "osv": 0.9,
    "licenses": 0.8,
    "errorlog": 0.8,
    "outdated": 0.9,
    "environment": 0.9,
}
DEFAULT_SEVERITY = {"info": 0.5, "low": 1.0, "medium": 3.0, "high": 8.0, "critical": 20.0}


class ValueWeights(BaseModel):
    """How much each signal counts in a ticket's impact."""

    model_config = ConfigDict(extra="forbid")
    risk_reduction: float = Field(default=1.0, ge=0, description="Per unit of severity weight")
    incident_frequency: float = Field(default=1.0, ge=0, description="Per error per hour")
    cycle_time: float = Field(default=5.0, ge=0, description="Per failing test")
    coverage_gain: float = Field(
        default=10.0, ge=0, description="Per unit of coverage gained per line (0-1 per file)"
    )


class ValueRules(BaseModel):
    """The value function's weights and estimates (policy ``value:``)."""

    model_config = ConfigDict(extra="forbid")
    weights: ValueWeights = Field(default_factory=ValueWeights)
    severity: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SEVERITY),
        description="Risk of one finding per severity",
    )
    confidence: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_CONFIDENCE),
        description="Confidence (0-1) per scanner",
    )
    fixable_confidence: float = Field(
        default=0.95, ge=0, le=1, description="Confidence when the tool fixes every finding itself"
    )
    effort_base: float = Field(default=1.0, gt=0, description="Effort of a one-finding ticket")
    effort_per_file: float = Field(default=0.5, ge=0, description="Each further file")
    effort_per_finding: float = Field(default=0.1, ge=0, description="Each further finding")
    autofix_effort_factor: float = Field(
        default=1.0, gt=0, description="Effort multiplier when the autofix harness takes it"
    )


@dataclass(frozen=True)
class TicketValue:
    """The figures stored on a ticket (columns of the same names)."""

    confidence: float
    impact: float
    blast_files: int
    blast_modules: int
    effort: float
    expected_value: float

    def columns(self) -> dict[str, float | int]:
        return {
            "confidence": self.confidence,
            "impact": self.impact,
            "blast_files": self.blast_files,
            "blast_modules": self.blast_modules,
            "effort": self.effort,
            "expected_value": self.expected_value,
        }


def _number(finding: Finding, name: str) -> float:
    value = finding.data.get(name, 0)
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
    return number if math.isfinite(number) and number > 0 else 0.0


def impact_of(findings: Sequence[Finding], rules: ValueRules) -> float:
    w = rules.weights
    risk = sum(rules.severity.get(f.severity, 1.0) for f in findings)
    incidents = sum(_number(f, "rate_per_hour") for f in findings if f.tool == "errorlog")
    failing = sum(1 for f in findings if f.tool == "pytest")
    coverage = sum(
        min(1.0, _number(f, "missing") / max(1.0, _number(f, "statements")))
        for f in findings
        if f.tool == "coverage"
    )
    return (
        w.risk_reduction * risk
        + w.incident_frequency * incidents
        + w.cycle_time * failing
        + w.coverage_gain * coverage
    )


def score(findings: Sequence[Finding], rules: ValueRules, *, autofix: bool = False) -> TicketValue:
    """The value of one ticket holding ``findings`` (at least one)."""
    if not findings:
        raise ValueError("score: a ticket needs at least one finding")
    files = {f.path for f in findings}
    modules = {posixpath.dirname(p) or "." for p in files}
    tools = {f.tool for f in findings}
    confidence = min(rules.confidence.get(t, 0.5) for t in tools)
    if all(f.fixable for f in findings):
        confidence = max(confidence, rules.fixable_confidence)
    effort = (
        rules.effort_base
        + rules.effort_per_file * (len(files) - 1)
        + rules.effort_per_finding * (len(findings) - 1)
    ) * (rules.autofix_effort_factor if autofix else 1.0)
    impact = impact_of(findings, rules)
    return TicketValue(
        confidence=round(min(1.0, max(0.0, confidence)), 4),
        impact=round(impact, 4),
        blast_files=len(files),
        blast_modules=len(modules),
        effort=round(effort, 4),
        expected_value=round(confidence * impact / effort, 6),
    )
