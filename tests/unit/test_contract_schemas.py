"""The committed JSON Schemas in docs/contracts/ are exactly what the code defines."""

from __future__ import annotations

from pathlib import Path

import pytest
from triloop.domain.schemas import CONTRACTS, json_schemas, render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "contracts"


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_committed_schema_matches_the_code(name: str) -> None:
    committed = DOCS / name
    assert committed.exists(), f"{name} missing: run scripts/export_contracts.py"
    assert committed.read_text() == render(json_schemas()[name]), (
        f"docs/contracts/{name} is stale: run scripts/export_contracts.py"
    )


def test_no_stale_schema_files() -> None:
    assert {p.name for p in DOCS.glob("*.json")} == set(json_schemas())


@pytest.mark.parametrize("model", CONTRACTS, ids=lambda m: m.__name__)
def test_every_contract_is_versioned_and_documented(model: type) -> None:
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    assert schema["properties"]["schema_version"]["default"] == 1
    assert schema.get("description"), f"{model.__name__} has no docstring"
