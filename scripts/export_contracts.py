"""Write the JSON Schema of every loop contract to docs/contracts/ (run after changing one).

.venv/bin/python scripts/export_contracts.py
"""

from __future__ import annotations

from pathlib import Path

from triloop.domain.schemas import json_schemas, render

TARGET = Path(__file__).resolve().parents[1] / "docs" / "contracts"


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    wanted = json_schemas()
    for stale in set(p.name for p in TARGET.glob("*.json")) - set(wanted):
        (TARGET / stale).unlink()
    for name, schema in wanted.items():
        (TARGET / name).write_text(render(schema))
    print(f"wrote {len(wanted)} schemas to {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
