"""``autofix``: deterministic ``ruff check --fix`` limited to the ticket's rule and files."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from triloop.domain.contracts import HarnessRequest, HarnessResult
from triloop.domain.policy import HarnessPolicy
from triloop.execution.harnesses.base import read_text, validate_result


class AutofixHarness:
    """No model, no tokens: the sandbox's ``fix`` subcommand writes the whole result."""

    name = "autofix"

    def configured(self, policy: HarnessPolicy | None) -> Self:
        return self

    def command(self, request: HarnessRequest) -> list[str]:
        return ["fix", "--request", "/out/request.json", "--out", "/out"]

    def request_document(self, request: HarnessRequest) -> dict[str, object]:
        """The part of the request the in-sandbox harness reads (no host paths)."""
        return {
            "schema_version": 1,
            "harness": self.name,
            "ticket_id": request.ticket_id,
            "rule": request.rule,
            "paths": request.paths,
        }

    def parse_result(self, raw: str) -> HarnessResult:
        return validate_result(raw)

    def read_output(self, request: HarnessRequest, out: Path) -> HarnessResult:
        return self.parse_result(read_text(out / "result.json"))
