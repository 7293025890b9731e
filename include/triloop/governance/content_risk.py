"""Risk from what a change adds to files that run: each reason makes the PR high risk.

Python files (``*.py``, ``*.pyw``, a ``python`` shebang) and notebooks' code cells are parsed
on both sides; a reference in the merged file that the base file does not have (same resolved
name, same call) is the PR's. ``sitecustomize.py``/``usercustomize.py`` run in every
interpreter, so any change to them is one. Other files that run are content_files'; Makefiles,
justfiles, setup.py and noxfile.py are the config rules' too.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import PurePosixPath

from triloop.governance.content_ast import Unparsable, Use, uses
from triloop.governance.content_files import added_lines, encoding_risk, kind, other_risks
from triloop.governance.content_notebook import NotebookCode, notebook_code

STARTUP_HOOKS = frozenset(("sitecustomize.py", "usercustomize.py"))


def content_risks(path: str, before: str | None, after: str | None) -> list[str]:
    """Reasons (``content: ...``) for what the change adds to ``path``; None: no such side."""
    if after is None:
        return []  # deleted: it adds nothing that runs
    what = kind(path, after)
    if what == "python":
        reasons = _python(path, before, after, None)
        if (declared := encoding_risk(path, before, after)) is not None:
            reasons.insert(0, declared)
        if PurePosixPath(path).name in STARTUP_HOOKS and before != after:
            reasons.insert(
                0,
                f"content: interpreter start-up hook {path} changed (runs in every"
                " Python process started there)",
            )
        return reasons
    if what == "notebook":
        return _notebook(path, before, after)
    return other_risks(path, what, before, after)


def _python(path: str, before: str | None, after: str, cells: NotebookCode | None) -> list[str]:
    try:
        merged = uses(after)
    except Unparsable as exc:
        where = cells.where(exc.line) if cells else f"{path}:{exc.line}"
        return [f"content: {where} does not parse ({exc.message}): its risk cannot be judged"]
    try:
        base = uses(before) if before else []
    except Unparsable:
        base = []  # the base cannot vouch for anything: every use counts as added
    changed = set(added_lines(before or "", after))
    seen: set[tuple[str, int, str]] = set()
    reasons = []
    for use in sorted(_added(base, merged, changed), key=lambda u: (u.line, u.category)):
        if (use.category, use.line, use.what) in seen:
            continue
        seen.add((use.category, use.line, use.what))
        where = cells.where(use.line) if cells else f"{path}:{use.line}"
        reasons.append(f"content: {use.category} added in {where} ({use.what})")
    return reasons


def _added(base: list[Use], merged: list[Use], changed: set[int]) -> list[Use]:
    """Merged uses beyond the base's count of the same key; those on changed lines first."""
    counts = Counter(u.key for u in base)
    groups: dict[str, list[Use]] = defaultdict(list)
    for use in merged:
        groups[use.key].append(use)
    out: list[Use] = []
    for key, group in groups.items():
        extra = len(group) - counts[key]
        if extra > 0:
            group.sort(key=lambda u: (u.line in changed, u.line))
            out += group[-extra:]
    return out


def _notebook(path: str, before: str | None, after: str) -> list[str]:
    try:
        merged = notebook_code(path, after)
    except (ValueError, TypeError, KeyError) as exc:
        return [f"content: {path} does not parse as a notebook ({exc}): its risk cannot be judged"]
    try:
        base = notebook_code(path, before) if before else None
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        base = None
    reasons = _python(path, base.text if base else None, merged.text, merged)
    return [*merged.magic_reasons(base), *reasons]
