"""The ``secrets`` check: credentials the merged tree has and the base tree had not.

Two sources feed it, from the same sandbox scan of each tree: semgrep's ``secrets.*`` rules
(include/semgrep/secrets.yml, parsed by the caller from semgrep.json) and the sandbox's secret
scanner (include/sandbox/secret_scan.py: detect-secrets and Triloop's rules over every file,
tests, notebooks and dotfiles included), which writes ``secrets.json``. A finding fails the
check only when its fingerprint is not among the base tree's: a secret the base already had is
not the pull request's (moving it does not make it new). A file the scanner could not scan (too
large, unreadable, over its budget) is a ``secrets.unscanned`` finding: new ones fail too.

Evidence names file, line and rule, never the value: neither source's message or source line
is used. A merged ``secrets.json`` that is missing, malformed or says the scanner broke gives
``error`` (no verdict), never ``passed``; so does a base that cannot be read while the merged
tree has findings (new cannot be told from pre-existing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triloop.discovery.parse import ScanOutputError, load_json
from triloop.domain.contracts import CheckResult, Finding

CHECK_ID = "secrets"
REPORT = "secrets.json"
UNSCANNED = "secrets.unscanned"
SECRETS_COMMAND = (
    "python /usr/local/bin/secret_scan.py /workspace /out  # in the sandbox image, part of "
    "`triloop-harness scan` with semgrep's secrets.* rules, at {sha}"
)
_RULE = re.compile(r"secrets\.[a-z0-9][a-z0-9-]{0,63}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
MAX_LISTED = 50


class SecretsReportError(ValueError):
    """secrets.json is missing, malformed or reports a broken scanner; names the file."""


@dataclass(frozen=True)
class Secret:
    """One finding without its value: where, which rule, and the fingerprint that compares."""

    path: str
    line: int
    rule: str
    fingerprint: str
    note: str = ""  # why a file was not scanned


def read_report(out: Path) -> list[Secret]:
    """The findings and unscanned files of ``out/secrets.json``; SecretsReportError if unusable."""
    path = out / REPORT
    try:
        data: Any = load_json(path)
    except ScanOutputError as exc:
        raise SecretsReportError(str(exc)) from exc
    tools = _tool_status(out)
    for error in (data.get("error") if isinstance(data, dict) else None, tools.get("error")):
        if error:
            raise SecretsReportError(f"the secret scanner broke ({path}): {str(error)[:500]}")
    if not isinstance(data, dict) or data.get("schema_version") != 1:
        raise SecretsReportError(f"{path}: not a schema_version 1 secrets report")
    found, unscanned = data.get("findings"), data.get("unscanned")
    if not isinstance(found, list) or not isinstance(unscanned, list):
        raise SecretsReportError(f"{path}: findings and unscanned must be lists")
    secrets = [_finding(path, item) for item in found]
    return secrets + [_unscanned(path, item) for item in unscanned]


def _tool_status(out: Path) -> dict[str, Any]:
    """result.json's ``tools.secrets`` when the harness recorded it there."""
    try:
        result = load_json(out / "result.json")
    except ScanOutputError:
        return {}
    tools = result.get("tools") if isinstance(result, dict) else None
    status = tools.get("secrets") if isinstance(tools, dict) else None
    return status if isinstance(status, dict) else {}


def _finding(path: Path, item: Any) -> Secret:
    try:
        secret = Secret(str(item["path"]), int(item["line"]), item["rule"], item["fingerprint"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SecretsReportError(f"{path}: malformed finding ({exc!r})") from exc
    if not (_RULE.fullmatch(str(secret.rule)) and _FINGERPRINT.fullmatch(str(secret.fingerprint))):
        raise SecretsReportError(f"{path}: a finding has a malformed rule or fingerprint")
    if secret.line < 0:
        raise SecretsReportError(f"{path}: a finding has a negative line")
    return secret


def _unscanned(path: Path, item: Any) -> Secret:
    try:
        where, why, fingerprint = str(item["path"]), str(item["reason"]), item["fingerprint"]
    except (KeyError, TypeError) as exc:
        raise SecretsReportError(f"{path}: malformed unscanned entry ({exc!r})") from exc
    if not _FINGERPRINT.fullmatch(str(fingerprint)):
        raise SecretsReportError(f"{path}: an unscanned entry has a malformed fingerprint")
    return Secret(where, 0, UNSCANNED, fingerprint, note=why[:200])


def _semgrep(findings: list[Finding]) -> list[Secret]:
    return [
        Secret(f.path, f.line, f.rule, f.fingerprint)
        for f in findings
        if f.tool == "semgrep" and f.rule.startswith("secrets.")
    ]


def _shown(text: str) -> str:
    """A repository's file name, control characters escaped (one evidence line per finding)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _listing(new: list[Secret]) -> list[str]:
    """``path:line: rule`` once per place and rule (both sources may report one secret)."""
    places = sorted({(s.path, s.line, s.rule, s.note) for s in new})
    shown = [
        f"{_shown(p)}:{n}: {r}" + (f" ({_shown(why)})" if why else "") for p, n, r, why in places
    ]
    more = [f"... and {len(shown) - MAX_LISTED} more"] if len(shown) > MAX_LISTED else []
    return shown[:MAX_LISTED] + more


def secrets_check(
    base_out: Path,
    merged_out: Path,
    base_semgrep: list[Finding],
    merged_semgrep: list[Finding],
    sha: str,
) -> CheckResult:
    """The ``secrets`` CheckResult from both trees' scan output and semgrep findings."""
    command = SECRETS_COMMAND.format(sha=sha)
    duration = float(_tool_status(merged_out).get("duration_s") or 0.0)
    try:
        merged = _semgrep(merged_semgrep) + read_report(merged_out)
    except SecretsReportError as exc:
        return CheckResult(check_id=CHECK_ID, status="error", command=command, excerpt=str(exc))
    try:
        base, unusable = _semgrep(base_semgrep) + read_report(base_out), ""
    except SecretsReportError as exc:
        if merged:
            why = (
                f"cannot tell new secrets from pre-existing ones: the base scan is unusable: {exc}"
            )
            return CheckResult(check_id=CHECK_ID, status="error", command=command, excerpt=why)
        base, unusable = [], f" (the base scan is unusable: {exc})"
    known = {s.fingerprint for s in base}
    new = [s for s in merged if s.fingerprint not in known]
    kept = len({s.fingerprint for s in merged} - {s.fingerprint for s in new})
    before = f"{kept} pre-existing (also in the base tree) not counted"
    places = len({(s.path, s.line, s.rule) for s in new})
    if not new:
        excerpt = f"no new secrets; {before}{unusable}"
    else:
        excerpt = "\n".join([f"{places} new secret finding(s); {before}:", *_listing(new)])
    return CheckResult(
        check_id=CHECK_ID,
        status="failed" if new else "passed",
        command=command,
        excerpt=excerpt[:4000],
        rule_ids=sorted({s.rule for s in new}),
        duration_s=duration,
    )
