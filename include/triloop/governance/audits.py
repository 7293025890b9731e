"""The environment checks' bodies (see triloop.governance.environment, which runs them)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triloop.discovery.dependencies import Dependency, DependencyError, declared_dependencies
from triloop.discovery.scanners.base import ScanContext, ScannerError
from triloop.discovery.scanners.licenses import LICENSES
from triloop.discovery.scanners.osv import Database, load_database, match
from triloop.discovery.scanners.sandbox_tools import tool_status
from triloop.domain.contracts import ArtifactRef, CheckResult, Finding
from triloop.domain.policy import Policy
from triloop.governance.sbom import REPORT, SbomError, artifact_dir, read_sbom, store


@dataclass(frozen=True)
class Trees:
    """The two checkouts of a review and where the sandbox's scan of each wrote its output."""

    base: Path
    merged: Path
    base_out: Path
    merged_out: Path
    repo_id: str = "review"
    number: int = 0
    head_sha: str = ""

    def command(self, check: str, policy_path: Path | None) -> str:
        prefix = f"TRILOOP_POLICY_PATH={policy_path} " if policy_path else ""
        paths = f"{self.base} {self.merged} {self.base_out} {self.merged_out}"
        return f"{prefix}python -m triloop.governance.environment {check} {paths}"


def new_advisories(base: list[Dependency], merged: list[Dependency], db: Database) -> list[Finding]:
    """Advisories affecting a merged dependency that no base dependency of that name had."""
    known = {(f.rule, f.symbol) for f in match("base", base, db)}
    return [f for f in match("merged", merged, db) if (f.rule, f.symbol) not in known]


def new_problems(base: list[Finding], merged: list[Finding]) -> list[Finding]:
    """License findings (rule, package) of the merged environment the base did not have."""
    known = {(f.rule, f.symbol) for f in base}
    return [f for f in merged if (f.rule, f.symbol) not in known]


def vulnerabilities(trees: Trees, policy: Policy, command: str) -> CheckResult:
    start = time.monotonic()
    where = policy.host_scanners.osv_database
    if where is None:
        why = "no advisory database configured (policy host_scanners.osv_database): not checked"
        return _result("vulnerabilities", "passed", command, why, start)
    try:
        db = load_database(Path(str(where)))
        merged = declared_dependencies(trees.merged)
        new = new_advisories(declared_dependencies(trees.base), merged, db)
    except (ScannerError, DependencyError) as exc:
        return _result("vulnerabilities", "error", command, str(exc), start)
    summary = f"advisory database {where}: {len(merged)} declared dependencies checked"
    lines = [
        f"{summary}, {len(new)} new advisories",
        *(f"{f.path}:{f.line}: {f.message}" for f in new),
    ]
    rules = sorted({f.rule for f in new})
    return _result("vulnerabilities", "failed" if new else "passed", command, lines, start, rules)


def licenses(trees: Trees, policy: Policy, command: str) -> CheckResult | None:
    start = time.monotonic()
    base, merged = (
        ScanContext(trees.repo_id, checkout, out, policy)
        for checkout, out in ((trees.base, trees.base_out), (trees.merged, trees.merged_out))
    )
    try:
        status = tool_status(merged, "licenses")
        if status is None:
            return None  # this sandbox did not list licenses
        if not LICENSES.enabled(merged):
            why = "no license policy (code_scans.licenses deny and allow are empty)"
            return _result("licenses", "passed", command, why, start)
        found = LICENSES.scan(merged)
    except ScannerError as exc:
        return _result("licenses", "error", command, f"merged environment: {exc}", start)
    try:
        before = LICENSES.scan(base) if tool_status(base, "licenses") else []
        note = ""
    except ScannerError as exc:
        before, note = [], f"base environment unknown ({exc}): every finding counts as new"
    new = new_problems(before, found)
    what = status.get("skipped") or f"{len(found)} package(s) outside the policy in the merged env"
    lines = [f"{what}; {len(new)} new", *([note] if note else []), *(f.message for f in new)]
    rules = sorted({f.rule for f in new})
    return _result("licenses", "failed" if new else "passed", command, lines, start, rules)


def sbom(
    trees: Trees, artifacts: Path | None, command: str
) -> tuple[CheckResult, ArtifactRef | None]:
    """The ``sbom`` check and, when ``artifacts`` is set, the SBOM stored under it."""
    start = time.monotonic()
    try:
        status = tool_reported(trees.merged_out, "sbom")
        if status is not None and status.get("error"):
            raise SbomError(f"cyclonedx-py failed in the sandbox: {status['error']}")
        parsed = read_sbom(trees.merged_out / REPORT)
        ref = None
        if artifacts is not None:
            folder = artifact_dir(artifacts, trees.repo_id, trees.number, trees.head_sha)
            ref = store(parsed, folder)
    except (SbomError, OSError) as exc:
        return _result("sbom", "error", command, str(exc), start), None
    listed = ", ".join(parsed.components[:50]) + (" ..." if len(parsed.components) > 50 else "")
    lines = [
        f"CycloneDX {parsed.spec_version} SBOM of the merged environment",
        f"path: {ref.path if ref else trees.merged_out / REPORT}",
        f"sha256: {parsed.sha256}",
        f"{len(parsed.components)} component(s){': ' + listed if listed else ''}",
    ]
    return _result("sbom", "passed", command, lines, start), ref


def _result(
    check: str,
    status: str,
    command: str,
    text: str | list[str],
    start: float,
    rules: list[str] | None = None,
) -> CheckResult:
    excerpt = text if isinstance(text, str) else "\n".join(text)
    return CheckResult.model_validate(
        {
            "check_id": check,
            "status": status,
            "command": command,
            "excerpt": excerpt[-4000:],
            "rule_ids": rules or [],
            "duration_s": round(time.monotonic() - start, 3),
        }
    )


def tool_reported(out: Path, tool: str) -> dict[str, Any] | None:
    """The sandbox's status for ``tool`` in ``out/result.json``; None if it did not report one.

    An unreadable result.json is reported by the ``scan`` check (triloop.governance.checks).
    """
    try:
        return tool_status(ScanContext("", out, out, Policy()), tool)
    except ScannerError:
        return None
