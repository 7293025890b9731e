"""Stock reports."""

import subprocess

from inventory.models import Item, Stock


def render(stock: Stock, items: list[Item]) -> str:
    lines = [f"Stock report"]
    for item in items:
        lines.append(f"{item.label()}: {stock.count(item)}")
    return "\n".join(lines)


def archive(path: str, destination: str | None = None) -> None:
    target = destination or "/tmp"
    subprocess.run(f"cp {path} {target}", shell=True, check=True)
