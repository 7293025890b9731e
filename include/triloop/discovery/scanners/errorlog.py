"""Error logs: a repo's JSON-lines log or Sentry-style event export, grouped by stack signature.

The file is ``repos.<id>.error_logs`` in the policy. A file starting with ``[`` (a list of
events) or holding one object with an ``events`` list is an export; anything else is JSON
lines. Records without an exception are ordinary log lines and are skipped. A line that is not
UTF-8 JSON (binary garbage, control bytes, a non-JSON line) fails this scanner with the file and
line, because the file is then not the log the policy promised; the one exception is a last
line cut off mid-write (no final newline), which is skipped with a warning.
Each signature is one finding (group_key ``stack:<hash>``): its events in the window that ends
at the log's newest event, the rate per hour, first and last seen, releases and services. Its
path is the innermost counted frame's file relative to the repo (as the log names it if the
checkout has no such file).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from triloop.discovery.scanners.base import ScanContext, ScannerError
from triloop.discovery.stacks import (
    ErrorEvent,
    EventError,
    Resolve,
    app_frames,
    normalise,
    parse_event,
    signature,
    signature_key,
)
from triloop.domain.contracts import Finding, Severity
from triloop.domain.fingerprint import finding_fingerprint

log = logging.getLogger(__name__)
NAME = "errorlog"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
RATE_SEVERITY: tuple[tuple[float, Severity], ...] = ((10.0, "high"), (1.0, "medium"))


def repo_resolver(checkout: Path) -> Resolve:
    """Map a frame's filename or module to a .py file of the checkout by its longest suffix."""
    by_suffix: dict[str, str] = {}
    for root, dirs, files in os.walk(checkout):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(f for f in files if f.endswith(".py")):
            rel = PurePosixPath(Path(root, file).relative_to(checkout).as_posix())
            for i in range(len(rel.parts)):
                by_suffix.setdefault("/".join(rel.parts[i:]), str(rel))

    def resolve(filename: str, module: str) -> str | None:
        if "site-packages/" in filename or "dist-packages/" in filename:
            return None
        parts = PurePosixPath(filename.replace("\\", "/")).parts
        for i in range(len(parts)):
            if (hit := by_suffix.get("/".join(parts[i:]))) is not None:
                return hit
        dotted = module.replace(".", "/")
        return by_suffix.get(f"{dotted}.py") or by_suffix.get(f"{dotted}/__init__.py")

    return resolve


def read_events(path: Path) -> list[ErrorEvent]:
    """Every event with an exception in the file; ScannerError naming file and line if bad."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScannerError(NAME, f"error log {path} is not readable: {exc}") from exc
    head = data.lstrip()[:1]
    if head in (b"[", b"{"):
        try:
            whole = json.loads(data)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ScannerError(NAME, f"error log {path}:{line}: binary data, not UTF-8") from exc
        except json.JSONDecodeError as exc:
            if head == b"[":
                raise ScannerError(NAME, f"error log {path}:{exc.lineno}: {exc.msg}") from exc
            whole = None  # JSON lines
        if isinstance(whole, list) or (isinstance(whole, dict) and "events" in whole):
            items = whole if isinstance(whole, list) else whole["events"]
            if not isinstance(items, list):
                raise ScannerError(NAME, f"error log {path}: 'events' is not a list")
            return _events(path, ((f"event {i}", item) for i, item in enumerate(items)))
    return _events(path, _json_lines(path, data))


def _json_lines(path: Path, data: bytes) -> list[tuple[str, Any]]:
    lines = data.split(b"\n")
    out = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ScannerError(NAME, f"error log {path}:{number}: binary data, not UTF-8") from exc
        if not text:
            continue
        if _CONTROL.search(text):
            raise ScannerError(NAME, f"error log {path}:{number}: binary data (control bytes)")
        try:
            out.append((f"line {number}", json.loads(text)))
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: cut off mid-write
                log.warning("error log %s:%s: skipping a truncated last line", path, number)
                continue
            raise ScannerError(NAME, f"error log {path}:{number}: not JSON: {exc.msg}") from exc
    return out


def _events(path: Path, items: Any) -> list[ErrorEvent]:
    events = []
    for where, obj in items:
        try:
            event = parse_event(obj)
        except EventError as exc:
            raise ScannerError(NAME, f"error log {path} ({where}): {exc}") from exc
        if event is not None:
            events.append(event)
    return events


def group_events(
    repo_id: str, events: list[ErrorEvent], resolve: Resolve, window_hours: float
) -> list[Finding]:
    """One finding per stack signature with events in the window."""
    if not events:
        return []
    end = max(e.timestamp for e in events)
    start = end - timedelta(hours=window_hours)
    groups: defaultdict[str, list[ErrorEvent]] = defaultdict(list)
    for event in sorted(events, key=lambda e: e.timestamp):
        groups[signature(event, resolve)].append(event)
    findings = []
    for sig, items in sorted(groups.items()):
        in_window = [e for e in items if e.timestamp >= start]
        if in_window:
            findings.append(_finding(repo_id, sig, items, len(in_window), window_hours, resolve))
    return findings


def _finding(
    repo_id: str,
    sig: str,
    items: list[ErrorEvent],
    count: int,
    window_hours: float,
    resolve: Resolve,
) -> Finding:
    latest = items[-1]
    exc_type, message, frames = latest.exceptions[-1]
    counted = app_frames(frames, resolve)
    inner = counted[-1] if counted else None
    path = (inner and (resolve(inner.filename, inner.module) or inner.filename)) or ""
    rate = round(count / window_hours, 3)
    severity = next((s for floor, s in RATE_SEVERITY if rate >= floor), "low")
    rule = normalise(exc_type)
    releases = sorted({e.release for e in items if e.release})
    services = sorted({e.service for e in items if e.service})
    return Finding(
        tool="errorlog",
        rule=rule,
        path=path,
        line=inner.lineno if inner else 0,
        message=f"{exc_type}: {message} ({count} in {window_hours:g} h, {rate:g}/h)",
        severity=severity,
        symbol=normalise(inner.function) if inner else "",
        code=sig,
        fingerprint=finding_fingerprint(repo_id, rule, "", "", sig),  # the signature decides
        group_key=signature_key(sig),
        data={
            "count": count,
            "rate_per_hour": rate,
            "window_hours": window_hours,
            "first_seen": items[0].timestamp.isoformat(),
            "last_seen": latest.timestamp.isoformat(),
            "releases": ",".join(releases),
            "services": ",".join(services),
        },
    )


class ErrorLogScanner:
    name = NAME

    def applies(self, ctx: ScanContext) -> bool:
        repo = ctx.policy.repos.get(ctx.repo_id)
        return repo is not None and repo.error_logs is not None

    def scan(self, ctx: ScanContext) -> list[Finding]:
        events = read_events(Path(str(ctx.policy.repos[ctx.repo_id].error_logs)))
        window = ctx.policy.host_scanners.errorlog_window_hours
        return group_events(ctx.repo_id, events, repo_resolver(ctx.checkout), window)


ERRORLOG = ErrorLogScanner()
