#!/usr/bin/env python3
"""Secret detection over every file of the checkout (standard library plus detect-secrets).

``scan_secrets(workspace, out)`` writes ``out/secrets.json``::

    {"schema_version": 1, "findings": [{"path", "line", "rule", "fingerprint"}],
     "unscanned": [{"path", "reason", "fingerprint"}], "error": "..." (only when it broke)}

and returns the tool status (argv, exit_code, duration_s, ``error``). A secret's value appears
nowhere: not in secrets.json, the status or the log. ``fingerprint`` is sha256 of the rule and
detect-secrets' sha1 of the value, so the same secret has the same fingerprint in the base and
the merged tree wherever it sits (governance fails only on fingerprints the base lacks).

Why detect-secrets (Yelp, Apache-2.0, on PyPI): pure Python (PyYAML, requests), so it installs
offline from the image's pinned wheels; two dozen maintained shape detectors (AWS, GitHub,
GitLab, Slack, Stripe, JWT, private keys, URL passwords, npm, PyPI, SendGrid, Twilio, Discord,
Telegram, Azure, Square, OpenAI, ...) plus a keyword detector that knows each file type's
assignment syntax; and it is a library, so Triloop drives it instead of its CLI. gitleaks and
trufflehog have broader rule sets but are Go binaries (PyPI has only third-party repackagings
of gitleaks; trufflehog's strength, live verification, needs a network the sandbox lacks).
Shapes detect-secrets 1.5 lacks (fine-grained GitHub tokens, Google, Anthropic, Shopify,
DigitalOcean, Mailgun, Hugging Face, ...) are Triloop's own RegexBasedDetectors; the rules,
their ids and the line scan are in secret_rules.py beside this file.

Not honoured, because the pull request under review could use each to switch detection off:
detect-secrets' baseline and settings (none is loaded, a ``.secrets.baseline`` in the checkout
is scanned like any file), its ``pragma: allowlist secret`` comments, its filename filters
(lock files, swagger, "non-text" extensions) and its whole-line filter for indirect references.
Filters that judge the matched value itself stay (a template like ``${X}``, a placeholder,
AWS's documentation keys): a real credential cannot be made to look like one. The generic
entropy detectors are left out: they report every git SHA, digest and base64 blob.

Bounds against hostile input: symlinks are never followed (the link's target text is scanned,
as git stores it); lines are scanned in overlapping 4 KiB pieces; files over MAX_FILE_BYTES,
non-regular files, unreadable ones, and whatever is left when the time or file budget runs
out are listed in ``unscanned`` (governance fails on new ones), never passed silently.
Binary files are scanned as their printable ASCII and UTF-16 strings (line 0); compressed
content is not unpacked, like any other encoding of a value.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # secret_rules.py, beside it
from secret_rules import OutOfBudget, Rules, scan_lines

log = logging.getLogger("triloop-harness")
SCHEMA_VERSION = 1
REPORT = "secrets.json"
MAX_FILE_BYTES = int(os.environ.get("TRILOOP_SECRETS_MAX_FILE_BYTES", str(8 << 20)))
MAX_FILES = int(os.environ.get("TRILOOP_SECRETS_MAX_FILES", "100000"))
BUDGET_S = float(os.environ.get("TRILOOP_SECRETS_BUDGET_S", "120"))
MAX_FINDINGS = 10_000
HASH_CAP = 1 << 30  # an unscanned file larger than this gets a fingerprint new on every run
ASCII_RUN, UTF16_RUN = re.compile(rb"[\x20-\x7e\t]{8,}"), re.compile(rb"(?:[\x20-\x7e]\x00){8,}")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _nonce() -> str:
    """Makes an unscanned entry's fingerprint new on every run: it fails whatever the base had."""
    return os.urandom(16).hex()


def _lines(data: bytes) -> tuple[list[str], bool]:
    """(lines, binary): text split on newlines; a binary file's printable strings."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace").split("\n"), False
    if b"\0" not in data[:8192]:
        return data.decode("utf-8", "replace").split("\n"), False
    strings = [m.decode("ascii") for m in ASCII_RUN.findall(data)]
    return strings + [m.decode("utf-16-le") for m in UTF16_RUN.findall(data)], True


def _content_digest(path: Path, size: int) -> str:
    """sha256 of a file too large to scan (a random value past HASH_CAP: always new)."""
    if size > HASH_CAP:
        return _nonce()
    digest = hashlib.sha256()
    with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW | os.O_NONBLOCK)) as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Scan:
    """One walk of the workspace: findings, unscanned entries, and the budgets' state."""

    def __init__(self, workspace: Path, rules: Rules) -> None:
        self.root, self.rules = workspace, rules
        self.deadline = time.monotonic() + BUDGET_S
        self.findings: list[dict[str, Any]] = []
        self.unscanned: list[dict[str, Any]] = []
        self.files = 0

    def paths(self) -> list[str]:
        """Every entry but directories, relative and sorted; `.git` directories skipped."""
        found: list[str] = []
        for top, dirs, files in os.walk(self.root, followlinks=False):
            rel = os.path.relpath(top, self.root)
            links = [d for d in dirs if os.path.islink(os.path.join(top, d))]
            dirs[:] = sorted(d for d in dirs if d != ".git" and d not in links)
            for name in sorted([*files, *links]):
                found.append(name if rel == "." else f"{rel}/{name}")
            if len(found) > MAX_FILES:
                break
        return sorted(found)

    def skip(self, rel: str, reason: str, digest: str) -> None:
        fingerprint = _hash("secrets.unscanned", rel, reason.split(":")[0], digest)
        self.unscanned.append({"path": rel, "reason": reason, "fingerprint": fingerprint})

    def one(self, rel: str) -> None:
        path = self.root / rel
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):  # git stores a link as its target text
                lines, binary = [os.readlink(path)], False
            elif not stat.S_ISREG(info.st_mode):
                return self.skip(rel, "not a regular file", _nonce())
            elif info.st_size > MAX_FILE_BYTES:
                reason = f"too large: {info.st_size} bytes > {MAX_FILE_BYTES}"
                return self.skip(rel, reason, _content_digest(path, info.st_size))
            else:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as fh:
                    lines, binary = _lines(fh.read(MAX_FILE_BYTES + 1))
        except OSError as exc:
            return self.skip(rel, f"unreadable: {exc.strerror}", _nonce())
        for line, rule, hashed in scan_lines(lines, binary, rel, self.rules, self.deadline):
            fingerprint = _hash(rule, hashed)
            self.findings.append(
                {"path": rel, "line": line, "rule": rule, "fingerprint": fingerprint}
            )

    def run(self) -> None:
        paths = self.paths()
        for position, rel in enumerate(paths):
            left = len(paths) - position
            if position >= MAX_FILES or len(self.findings) >= MAX_FINDINGS:
                limits = f"limits: {MAX_FILES} files, {MAX_FINDINGS} findings"
                return self.skip(rel, f"budget: {left} files not scanned ({limits})", _nonce())
            try:
                if time.monotonic() > self.deadline:
                    raise OutOfBudget
                self.one(rel)
                self.files += 1
            except OutOfBudget:
                why = f"budget: {left} files not scanned (time budget {BUDGET_S:g}s)"
                return self.skip(rel, why, _nonce())
        return None


def scan_secrets(workspace: Path, out: Path) -> dict[str, Any]:
    """Scan every file under ``workspace`` into ``out/secrets.json``; the tool's status."""
    start = time.monotonic()
    status: dict[str, Any] = {"argv": [sys.executable, __file__, str(workspace), str(out)]}
    report: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "findings": [], "unscanned": []}
    try:
        scan = Scan(workspace, Rules())
        scan.run()
        report.update(findings=scan.findings, unscanned=scan.unscanned)
        status.update(exit_code=0, files=scan.files, findings=len(scan.findings))
        status["unscanned"] = len(scan.unscanned)
    except Exception as exc:  # a broken scanner is an error, never an empty pass
        # The type and where it happened, never the message: it might quote a scanned line.
        where = exc.__traceback__
        while where is not None and where.tb_next is not None:
            where = where.tb_next
        place = (
            f"{Path(where.tb_frame.f_code.co_filename).name}:{where.tb_lineno}" if where else "?"
        )
        report["error"] = status["error"] = f"secret scan broke: {type(exc).__name__} at {place}"
        status["exit_code"] = 1
    status["duration_s"] = round(time.monotonic() - start, 3)
    (out / REPORT).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    log.info(
        "secrets: %s findings, %s unscanned in %.1fs",
        len(report["findings"]),
        len(report["unscanned"]),
        status["duration_s"],
    )
    return status


if __name__ == "__main__":  # python secret_scan.py WORKSPACE OUT
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    result = scan_secrets(Path(sys.argv[1]), Path(sys.argv[2]))
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.exit(1 if "error" in result else 0)
