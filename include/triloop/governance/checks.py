"""Reading the sandbox's check output into evidence (CheckResult), diff-aware for linters.

Linters gate on what the change introduces: a finding in the merged tree the base tree does not
have, matched by identity (:func:`new_findings`), never by line. Pre-existing findings
elsewhere are not the PR's to fix.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from triloop.discovery.parse import ScanOutputError, load_json, parse_scan_dir
from triloop.domain.contracts import CheckResult, Finding, ReviewRequest
from triloop.domain.states import REVERT_RULE
from triloop.governance.secrets import secrets_check
from triloop.governance.test_counts import integrity_checks
from triloop.sandbox_files import read_sandbox_file

SCAN_COMMAND = "triloop-harness analyze --out /out  # in the sandbox image, at {sha}"
SECRET_RULES = "secrets."  # include/semgrep/secrets.yml: reported as the `secrets` check


def _tests(out: Path, sha: str) -> CheckResult:
    try:
        data = json.loads(read_sandbox_file(out / "checks.json", 64 << 20))
        entry = next(c for c in data["checks"] if c["check_id"] == "tests")
        suite = f"{entry['suite']} suite " if entry.get("suite") else ""  # which tests ran
        return CheckResult(
            check_id="tests",
            status=entry["status"],
            command=f"{entry['command']}  # {suite}at {sha}",
            excerpt=str(entry.get("excerpt", ""))[-4000:],
            rule_ids=[str(r) for r in entry.get("rule_ids", [])],
            duration_s=float(entry.get("duration_s", 0.0)),
        )
    except (OSError, ValueError, KeyError, StopIteration, TypeError) as exc:
        return CheckResult(
            check_id="tests",
            status="error",
            command=f"check at {sha}",
            excerpt=f"{out}/checks.json unreadable: {exc!r}",
        )


def new_findings(base: list[Finding], merged: list[Finding], *, by_place: bool) -> list[Finding]:
    """The merged tree's findings the base does not have, matched by identity, not position.

    First by fingerprint (rule, file, enclosing symbol and statement text: line shifts do not
    change it). With ``by_place`` the rest are matched again by rule, file and enclosing symbol,
    one for one: a fix that rewrites a statement holding another, older finding (UP032 turning
    the ``.format()`` of a ``raise IOError(...)`` into an f-string, which the base's UP024 also
    flags) changes that statement's text, not the finding. Only what is left over is new.
    """
    seen = {f.fingerprint for f in merged}
    known = {f.fingerprint for f in base}
    unmatched = [f for f in merged if f.fingerprint not in known]
    if not by_place:
        return unmatched
    left = Counter((f.rule, f.path, f.symbol) for f in base if f.fingerprint not in seen)
    new = []
    for finding in unmatched:
        place = (finding.rule, finding.path, finding.symbol)
        if left[place] > 0:
            left[place] -= 1
        else:
            new.append(finding)
    return new


def _linter(
    tool: str, base: list[Finding], merged: list[Finding], sha: str, check_id: str | None = None
) -> CheckResult:
    new = new_findings(
        [f for f in base if f.tool == tool],
        [f for f in merged if f.tool == tool],
        by_place=tool == "ruff",  # semgrep's security findings keep their exact identity
    )
    excerpt = "\n".join(f"{f.path}:{f.line}: {f.rule} {f.message}" for f in new[:50])
    return CheckResult(
        check_id=check_id or tool,
        status="failed" if new else "passed",
        command=SCAN_COMMAND.format(sha=sha),
        excerpt=excerpt or f"no new {check_id or tool} findings",
        rule_ids=sorted({f.rule for f in new}),
    )


def _secret(finding: Finding) -> bool:
    return finding.tool == "semgrep" and finding.rule.startswith(SECRET_RULES)


def _split_secrets(
    review: ReviewRequest, base: list[Finding], merged: list[Finding], sha: str
) -> tuple[CheckResult, CheckResult]:
    """semgrep's code findings, and the secrets (semgrep's rules and the secret scanner's)."""
    code = [f for f in base if not _secret(f)], [f for f in merged if not _secret(f)]
    secret = [f for f in base if _secret(f)], [f for f in merged if _secret(f)]
    found = secrets_check(Path(review.base_out), Path(review.merged_out), *secret, sha)
    return _linter("semgrep", *code, sha), found


def _resolved(ticket_key_parts: tuple[str, str], merged: list[Finding], sha: str) -> CheckResult:
    rule, path = ticket_key_parts
    left = [f for f in merged if f.rule == rule and f.path == path]
    return CheckResult(
        check_id="ticket_resolved",
        status="failed" if left else "passed",
        command=SCAN_COMMAND.format(sha=sha),
        excerpt="\n".join(f"{f.path}:{f.line}: still {f.rule}" for f in left)
        or f"{rule} no longer reported in {path}",
        rule_ids=[rule] if left else [],
    )


def evaluate(review: ReviewRequest, rule: str, path: str) -> list[CheckResult]:
    """All evidence for one review from the three sandbox output directories."""
    sha = f"{review.base_sha[:12]}+{review.head_sha[:12]}"
    try:
        base = parse_scan_dir(Path(review.base_out), review.repo_id, Path(review.base_workspace))
        merged = parse_scan_dir(
            Path(review.merged_out), review.repo_id, Path(review.merged_workspace)
        )
    except ScanOutputError as exc:
        error = CheckResult(
            check_id="scan", status="error", command=SCAN_COMMAND.format(sha=sha), excerpt=str(exc)
        )
        return [_tests(Path(review.tests_out), sha), error]
    tests, integrity = integrity_checks(review, _tests(Path(review.tests_out), sha), sha)
    ruff = _linter("ruff", base, merged, sha)
    if review.analysis_note:
        ruff = ruff.model_copy(update={"excerpt": f"{review.analysis_note}\n{ruff.excerpt}"})
    checks = [
        tests,
        *integrity,
        ruff,
        *_split_secrets(review, base, merged, sha),
        _resolved((rule, path), merged, sha),
    ]
    checks = _broken_tools(checks, Path(review.base_out), Path(review.merged_out))
    return [_restored(c) for c in checks] if rule == REVERT_RULE else checks


SCANNERS = {"ruff": ("ruff",), "semgrep": ("semgrep",), "secrets": ("semgrep", "secrets")}
"""The scanners each scan-derived check reads; ``ticket_resolved`` reads both (merged tree)."""


def _broken_tools(checks: list[CheckResult], base_out: Path, merged_out: Path) -> list[CheckResult]:
    """Checks fed by a scanner the sandbox reported broken (result.json ``error``) as ``error``.

    A tool that crashed (semgrep exiting 2, say) may still leave a report with no findings:
    that proves nothing, so neither its checks nor ``ticket_resolved`` (when it broke on the
    merged tree) may pass on it.
    """
    broken: dict[str, list[str]] = {}
    in_merged: set[str] = set()
    for out in (base_out, merged_out):
        tools = load_json(out / "result.json").get("tools", {})
        for tool in ("ruff", "semgrep", "secrets"):
            if error := (tools.get(tool) or {}).get("error"):
                broken.setdefault(tool, []).append(f"{tool} broke in the scan of {out}: {error}")
                in_merged |= {tool} if out == merged_out else set()
    result = []
    for check in checks:
        used: tuple[str, ...] = SCANNERS.get(check.check_id, ())
        used = tuple(in_merged - {"secrets"}) if check.check_id == "ticket_resolved" else used
        why = [line for tool in used for line in broken.get(tool, [])]
        if why:
            excerpt = "\n".join(why)[-4000:]
            check = check.model_copy(update={"status": "error", "excerpt": excerpt})
        result.append(check)
    return result


def _restored(check: CheckResult) -> CheckResult:
    """A revert's lint findings are the ones the reverted merge removed: shown, not gating.

    So are its test counts: a revert removes the tests the reverted merge added.

    Its diff is the merge's, inverted, so every line it brings back was there before the merge.
    The tests still gate (post-merge verification opened it because they failed), and so do
    secrets: a revert that would bring a credential back waits for a person.
    """
    if check.check_id not in ("ruff", "semgrep", "test-counts") or check.status != "failed":
        return check
    excerpt = f"restored by the revert (present before the reverted merge):\n{check.excerpt}"
    return check.model_copy(update={"status": "passed", "excerpt": excerpt})


def evidence_markdown(checks: list[CheckResult], reasons: list[str]) -> str:
    rows = ["| check | status | rules | reproduce |", "|---|---|---|---|"]
    for c in checks:
        rows.append(
            f"| {c.check_id} | {c.status} | {', '.join(c.rule_ids) or '-'} | `{c.command}` |"
        )
    details = [
        f"**{c.check_id}**\n```\n{c.excerpt[-1500:]}\n```" for c in checks if c.status != "passed"
    ]
    return "\n".join([*rows, "", "Risk: " + "; ".join(reasons), "", *details])
