"""The LLM reviewer's findings (/out/review.json) as evidence: parsed strictly, never trusted.

The file is written by a model that read untrusted code, so every field is checked, capped and
cleaned of control characters before it reaches the decision's evidence, and a file that does
not parse is an error on that pull request (it blocks), never a crash and never a pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from triloop.adapters.protocols import Harness
from triloop.domain.contracts import CheckResult, HarnessRequest
from triloop.domain.reviewer_policy import SEVERITIES, ReviewerPolicy
from triloop.execution.harnesses.base import HarnessOutputError
from triloop.execution.harnesses.prompt import clean
from triloop.sandbox_files import SandboxFileError, read_sandbox_file

CHECK_ID = "llm-review"
REVIEW_FILE = "review.json"
MAX_BYTES = 1 << 20
RULE_PREFIX = "llm-review."
_RULE_CHARS = re.compile(r"[^A-Za-z0-9_.:/-]+")


class ReviewOutputError(ValueError):
    """review.json is missing, too large or does not match the findings format."""


@dataclass(frozen=True)
class ReviewFinding:
    path: str
    line: int
    severity: str
    rule: str
    message: str

    def line_text(self) -> str:
        return f"[{self.severity}] {self.path}:{self.line} {self.rule}: {self.message}"


def read_findings(out: Path, max_findings: int) -> list[ReviewFinding]:
    """The findings the reviewer wrote to ``out``/review.json, or ReviewOutputError saying why."""
    path = out / REVIEW_FILE
    try:
        raw = read_sandbox_file(path, MAX_BYTES)
    except SandboxFileError as exc:
        if exc.size is None:
            raise ReviewOutputError(f"/out/{REVIEW_FILE}: {exc}") from exc
        raise ReviewOutputError(f"/out/{REVIEW_FILE} is larger than {MAX_BYTES} bytes") from exc
    except OSError as exc:
        raise ReviewOutputError(f"the reviewer wrote no /out/{REVIEW_FILE}: {exc}") from exc
    return parse_findings(raw.decode("utf-8", "replace"), max_findings)


def parse_findings(raw: str, max_findings: int = 100) -> list[ReviewFinding]:
    """``raw`` (a JSON array of findings, or an object with one under ``findings``) parsed."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ReviewOutputError(f"/out/{REVIEW_FILE} is not JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("findings"), list):
        data = data["findings"]
    if not isinstance(data, list):
        raise ReviewOutputError(
            f"/out/{REVIEW_FILE} must be a JSON array of findings, not {type(data).__name__}"
        )
    if len(data) > max_findings:
        raise ReviewOutputError(
            f"/out/{REVIEW_FILE} has {len(data)} findings, more than reviewer.max_findings"
            f" ({max_findings})"
        )
    return [_finding(i, item) for i, item in enumerate(data)]


def _finding(index: int, item: object) -> ReviewFinding:
    def bad(field: str, why: str) -> ReviewOutputError:
        return ReviewOutputError(f"/out/{REVIEW_FILE}: finding [{index}] field {field!r} {why}")

    if not isinstance(item, dict):
        raise bad("*", f"must be an object, not {type(item).__name__}")
    severity = item.get("severity")
    if not isinstance(severity, str) or severity.strip().lower() not in SEVERITIES:
        raise bad("severity", f"must be one of {list(SEVERITIES)}, got {severity!r}")
    message = item.get("message")
    if not isinstance(message, str) or not message.strip():
        raise bad("message", "must be a non-empty string")
    path = item.get("path", "")
    if not isinstance(path, str):
        raise bad("path", f"must be a string, got {type(path).__name__}")
    line = item.get("line", 0)
    if not isinstance(line, int) or isinstance(line, bool) or line < 0:
        raise bad("line", f"must be a non-negative integer, got {line!r}")
    rule = item.get("rule", "")
    if not isinstance(rule, str):
        raise bad("rule", f"must be a string, got {type(rule).__name__}")
    name = _RULE_CHARS.sub("-", rule.strip()).strip("-")[:80] or "finding"
    return ReviewFinding(
        path=_one_line(path, 300) or "(no path)",
        line=line,
        severity=severity.strip().lower(),
        rule=RULE_PREFIX + name.removeprefix(RULE_PREFIX),
        message=_one_line(message.strip(), 500),
    )


def _one_line(text: str, limit: int) -> str:
    """Model text for the evidence: no control characters, one line, no backticks (the
    evidence shows excerpts in Markdown code fences, which a backtick run could close)."""
    return clean(text, limit).replace("\n", " ").replace("`", "'")


def findings_check(
    findings: Sequence[ReviewFinding], block_on: Sequence[str], command: str, note: str = ""
) -> CheckResult:
    """failed when any finding's severity is in ``block_on``, else passed."""
    blocking = [f for f in findings if f.severity in block_on]
    ranked = sorted(findings, key=lambda f: -SEVERITIES.index(f.severity))
    head = (
        f"{len(findings)} finding(s), {len(blocking)} blocking"
        f" (block_on: {', '.join(block_on)})" + (f"; {note}" if note else "")
    )
    return CheckResult(
        check_id=CHECK_ID,
        status="failed" if blocking else "passed",
        command=command,
        excerpt="\n".join([head, *(f.line_text() for f in ranked[:50])])[:4000],
        rule_ids=sorted({f.rule for f in (blocking or findings)}),
    )


def error_check(command: str, why: str) -> CheckResult:
    """The reviewer crashed, overran or wrote nonsense: an error, so the pull request blocks."""
    return CheckResult(
        check_id=CHECK_ID,
        status="error",
        command=command,
        excerpt=f"the LLM reviewer gave no usable review: {clean(why, 3000)}",
    )


def output_check(
    harness: Harness, request: HarnessRequest, policy: ReviewerPolicy, command: str
) -> CheckResult:
    """The llm-review check from the reviewer's /out: its run first, then its findings."""
    out = Path(request.output_dir)
    try:
        result = harness.read_output(request, out)
    except HarnessOutputError as exc:
        return error_check(command, f"the reviewer's sandbox left no usable result: {exc}")
    if result.status != "no_change":
        why = {"over_budget": f"stopped at its {result.over_budget} budget"}.get(
            result.status, result.status
        )
        return error_check(command, f"{request.harness} {why}: {result.summary}")
    try:
        findings = read_findings(out, policy.max_findings)
    except ReviewOutputError as exc:
        return error_check(command, str(exc))
    note = f"{request.harness}: {result.tokens} tokens, ${result.cost_usd:.4f}"
    return findings_check(findings, policy.block_on, command, note)
