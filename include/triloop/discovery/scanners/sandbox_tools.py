"""ruff and semgrep, as the sandbox's ``scan`` ran them (parsed by triloop.discovery.parse)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from triloop.discovery.parse import ScanOutputError, load_json, parse_ruff, parse_semgrep
from triloop.discovery.scanners.base import ScanContext, ScannerError
from triloop.domain.contracts import Finding


def tool_status(ctx: ScanContext, tool: str) -> dict[str, Any] | None:
    """The sandbox's record of running ``tool`` (exit code, argv, error), if it ran it."""
    try:
        result = load_json(ctx.output_dir / "result.json")
    except ScanOutputError as exc:
        raise ScannerError(tool, str(exc)) from exc
    tools = result.get("tools") if isinstance(result, dict) else None
    status = tools.get(tool) if isinstance(tools, dict) else None
    return status if isinstance(status, dict) else None


class SandboxToolScanner:
    """A tool whose JSON report the sandbox wrote to ``<output_dir>/<report>``."""

    def __init__(
        self, name: str, report: str, parse: Callable[[Path, str, Path], list[Finding]]
    ) -> None:
        self.name, self.report, self._parse = name, report, parse

    def applies(self, ctx: ScanContext) -> bool:
        return True  # always part of the sandbox's scan: a missing report is an error

    def scan(self, ctx: ScanContext) -> list[Finding]:
        status = tool_status(ctx, self.name)
        if status is None or "exit_code" not in status:
            raise ScannerError(self.name, f"no status for {self.name} in the sandbox's result")
        if status.get("error"):
            raise ScannerError(self.name, f"failed in the sandbox: {status['error']}")
        try:
            return self._parse(ctx.output_dir / self.report, ctx.repo_id, ctx.checkout)
        except ScanOutputError as exc:
            raise ScannerError(self.name, str(exc)) from exc


RUFF = SandboxToolScanner("ruff", "ruff.json", parse_ruff)
SEMGREP = SandboxToolScanner("semgrep", "semgrep.json", parse_semgrep)
