"""JSON Schemas of every loop contract, as committed under docs/contracts/."""

from __future__ import annotations

import json
from typing import Any

from triloop.domain import contracts

CONTRACTS: tuple[type[contracts.Contract], ...] = (
    contracts.Finding,
    contracts.TicketView,
    contracts.RepoRef,
    contracts.ScanRequest,
    contracts.Claim,
    contracts.HarnessRequest,
    contracts.HarnessResult,
    contracts.PatchArtifact,
    contracts.PullRequestRef,
    contracts.ReviewRequest,
    contracts.CheckResult,
    contracts.Decision,
    contracts.TicketsEventExtra,
    contracts.PullRequestsEventExtra,
    contracts.MergesEventExtra,
    contracts.VerificationRequest,
    contracts.Verification,
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, one per contract."""
    return {f"{model.__name__}.json": model.model_json_schema() for model in CONTRACTS}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
