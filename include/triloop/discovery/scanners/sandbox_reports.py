"""Scanners reading a report the sandbox's ``scan`` wrote after running the repository's code.

pytest (junit.xml), coverage (coverage.json) and licenses (licenses.json): include/sandbox/
code_scan.py runs them and records each one's status in result.json's ``tools``. A tool with
no status there was not run by this sandbox (an image older than these scanners, or a host-side
stand-in): the scanner does not apply. A status with ``error`` fails only this scanner; one
with ``skipped`` (no tests, no dependencies) finds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from triloop.discovery.scanners.base import ScanContext, ScannerError
from triloop.discovery.scanners.sandbox_tools import tool_status
from triloop.domain.contracts import Finding
from triloop.sandbox_files import SandboxFileError, read_sandbox_file

MAX_REPORT_BYTES = 64 << 20


class SandboxReportScanner:
    """Base: subclasses set ``name`` and ``report`` and implement ``enabled`` and ``parse``."""

    name = ""
    report = ""

    def enabled(self, ctx: ScanContext) -> bool:
        return True

    def parse(self, ctx: ScanContext, path: Path) -> list[Finding]:
        raise NotImplementedError

    def applies(self, ctx: ScanContext) -> bool:
        try:
            ran = tool_status(ctx, self.name) is not None
        except ScannerError:
            return True  # result.json is broken: scan() says so
        return ran and self.enabled(ctx)

    def scan(self, ctx: ScanContext) -> list[Finding]:
        status = tool_status(ctx, self.name)
        if status is None:
            raise ScannerError(self.name, f"no status for {self.name} in the sandbox's result")
        if status.get("error"):
            raise ScannerError(self.name, f"failed in the sandbox: {status['error']}")
        if status.get("skipped"):
            return []
        return self.parse(ctx, ctx.output_dir / self.report)

    def fail(self, path: Path, why: str) -> ScannerError:
        return ScannerError(self.name, f"report {path}: {why}")

    def read(self, path: Path) -> bytes:
        """The report's bytes (bounded), or a ScannerError naming the file."""
        try:
            return read_sandbox_file(path, MAX_REPORT_BYTES)
        except FileNotFoundError as exc:
            raise self.fail(path, "is missing") from exc
        except SandboxFileError as exc:
            raise self.fail(path, str(exc)) from exc
        except OSError as exc:
            raise self.fail(path, f"cannot be read: {exc}") from exc


def first_line(text: Any, limit: int = 300) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return lines[0][:limit] if lines else ""
