"""Harness adapters: how to ask the sandbox for a patch, and how to read what it said."""

from __future__ import annotations

import json

from pydantic import ValidationError

from triloop.adapters.protocols import Harness
from triloop.domain.contracts import HarnessRequest, HarnessResult


class HarnessOutputError(ValueError):
    """The harness's result file is missing or malformed."""


class AutofixHarness:
    """Deterministic: ``ruff check --fix`` limited to the ticket's rule and file."""

    name = "autofix"

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
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise HarnessOutputError(f"harness result is not a JSON object: {exc}") from exc
        if not isinstance(data, dict):
            raise HarnessOutputError(f"harness result is not a JSON object: {type(data).__name__}")
        data.pop("command", None)  # the in-sandbox subcommand, not part of the contract
        try:
            return HarnessResult.model_validate(data)
        except ValidationError as exc:
            raise HarnessOutputError(f"harness result does not match the contract: {exc}") from exc


HARNESSES: dict[str, Harness] = {"autofix": AutofixHarness()}


def harness_for(name: str) -> Harness:
    try:
        return HARNESSES[name]
    except KeyError:
        raise ValueError(f"unknown harness {name!r}; known: {sorted(HARNESSES)}") from None
