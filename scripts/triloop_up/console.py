"""What ``make up`` prints: plain lines, flushed at once, and numbered step headings."""

from __future__ import annotations


def say(message: str = "") -> None:
    print(message, flush=True)


def step(number: int, total: int, title: str) -> None:
    say(f"==> [{number}/{total}] {title}")
