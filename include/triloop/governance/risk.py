"""Risk tiers from a diff, and what each autonomy level lets through. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Literal

from triloop.domain.policy import DEFAULT_PROTECTED_PATHS, protected_match

Risk = Literal["low", "medium", "high"]

DEPENDENCY_FILES = ("requirements", "pyproject.toml", "setup.py", "setup.cfg", "poetry.lock")
SMALL_DIFF_LINES = 40


def classify(
    files: list[str],
    changed_lines: int,
    harness: str,
    protected: Sequence[str] = DEFAULT_PROTECTED_PATHS,
) -> tuple[Risk, list[str]]:
    """Risk tier and the reasons for it; a ``protected`` path (policy globs) is always high."""
    reasons: list[str] = []
    for name in files:
        path = PurePosixPath(name)
        glob = protected_match(name, protected)
        if glob is not None:
            reasons.append(f"{name}: protected path ({glob}), a human must review it")
        elif path.name.startswith(DEPENDENCY_FILES):
            reasons.append(f"{name}: dependency file")
    if reasons:
        return "high", reasons
    if harness == "autofix" and changed_lines <= SMALL_DIFF_LINES:
        return "low", [f"deterministic autofix, {changed_lines} changed lines"]
    docs_or_tests = all(
        n.startswith(("tests/", "docs/")) or n.endswith((".md", ".rst")) for n in files
    )
    if docs_or_tests:
        return "low", ["only tests and docs change"]
    return "medium", [f"source change by {harness}, {changed_lines} changed lines"]


def may_auto_merge(autonomy_level: int, risk: Risk) -> bool:
    allowed: dict[int, tuple[Risk, ...]] = {0: (), 1: (), 2: ("low",), 3: ("low", "medium")}
    return risk in allowed.get(autonomy_level, ())
