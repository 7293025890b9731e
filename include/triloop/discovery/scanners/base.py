"""The scanner port: each scanner turns one kind of signal into normalised Findings.

A scanner either parses what the sandbox's ``scan`` wrote for it (tools that run the
repository's code or its toolchain: ruff, semgrep, pytest, coverage, pip-licenses) or reads data
the policy points it at on the host (advisories, package indexes, error logs: no repository code
runs). Its output is untrusted: anything malformed raises :class:`ScannerError` naming the
scanner and the input, and only that scanner's findings are lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from triloop.domain.contracts import Finding
from triloop.domain.policy import Policy


class ScannerError(ValueError):
    """One scanner's input was missing or malformed; the message names scanner and input."""

    def __init__(self, scanner: str, message: str) -> None:
        super().__init__(f"scanner {scanner}: {message}")
        self.scanner = scanner


@dataclass(frozen=True)
class ScanContext:
    """What one scan of one repository gives its scanners."""

    repo_id: str
    checkout: Path  # the scanned commit, checked out on the host (read it, never run it)
    output_dir: Path  # what the sandbox's ``scan`` wrote
    policy: Policy
    head_sha: str = ""


class Scanner(Protocol):
    """One signal. ``applies`` says whether it has anything to read for this scan."""

    name: str

    def applies(self, ctx: ScanContext) -> bool: ...

    def scan(self, ctx: ScanContext) -> list[Finding]: ...
