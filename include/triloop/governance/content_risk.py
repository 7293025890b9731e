"""Risk from what a change adds to files that run: each reason makes the PR high risk.

Python files (``*.py``, ``*.pyw``, a ``python`` shebang) and notebooks' code cells are parsed
on both sides; a reference in the merged file that the base file does not have (same resolved
name, same call) is the PR's. Files Triloop cannot read for what they run (shell and other
scripts, ``.pth`` files, compiled or native sources) are a reason whenever they change in a way
that adds something; ``sitecustomize.py``/``usercustomize.py`` run in every interpreter, so any
change to them is one. Makefiles, justfiles, setup.py and noxfile.py are the config rules'.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter, defaultdict
from pathlib import PurePosixPath

from triloop.governance.content_ast import Unparsable, Use, uses
from triloop.governance.content_notebook import NotebookCode, notebook_code
from triloop.governance.content_table import names

PYTHON_SUFFIXES = frozenset((".py", ".pyw"))
STARTUP_HOOKS = frozenset(("sitecustomize.py", "usercustomize.py"))
SCRIPT_SUFFIXES = frozenset(names(".sh .bash .zsh .ksh .csh .tcsh .fish .ps1 .psm1 .bat .cmd"))
SCRIPT_NAMES = frozenset((".envrc", ".bashrc", ".profile", ".zshrc"))
OPAQUE_SUFFIXES = frozenset(
    names(".pyx .pxd .pxi .c .h .cc .cpp .cxx .hpp .rs .so .pyd .dll .dylib .pyc .pyo .whl .egg")
)


def kind(path: str, merged: str | None = None) -> str | None:
    """What runs in ``path``: python, notebook, pth, script or opaque; None: nothing we judge.

    A name without a suffix is a script when ``merged`` starts with a shebang (a Python one
    makes it python); without ``merged`` it is ``maybe``: read it and ask again.
    """
    p = PurePosixPath(path)
    suffix = p.suffix.lower()
    if suffix in PYTHON_SUFFIXES:
        return "python"
    if suffix == ".ipynb":
        return "notebook"
    if suffix == ".pth":
        return "pth"
    if suffix in SCRIPT_SUFFIXES or p.name in SCRIPT_NAMES:
        return "script"
    if suffix in OPAQUE_SUFFIXES:
        return "opaque"
    if suffix or p.name.startswith("."):
        return None
    if merged is None:
        return "maybe"
    first = merged.split("\n", 1)[0]
    if not first.startswith("#!"):
        return None
    return "python" if "python" in first else "script"


def content_risks(path: str, before: str | None, after: str | None) -> list[str]:
    """Reasons (``content: ...``) for what the change adds to ``path``; None: no such side."""
    if after is None:
        return []  # deleted: it adds nothing that runs
    what = kind(path, after)
    if what == "python":
        reasons = _python(path, before, after, None)
        if PurePosixPath(path).name in STARTUP_HOOKS and before != after:
            reasons.insert(
                0,
                f"content: interpreter start-up hook {path} changed (runs in every"
                " Python process started there)",
            )
        return reasons
    if what == "notebook":
        return _notebook(path, before, after)
    if what in ("pth", "script") and (lines := added_lines(before or "", after)):
        shown = after.splitlines()[lines[0] - 1].strip()[:60]
        if what == "pth":
            return [
                f"content: .pth file changed in {path}:{lines[0]} ({shown!r}: site runs"
                " its import lines and adds its paths at every interpreter start)"
            ]
        many = f"{len(lines)} lines" if len(lines) > 1 else "1 line"
        return [
            f"content: script changed in {path}:{lines[0]} ({many} added or changed; it runs"
            " commands Triloop does not read)"
        ]
    if what == "opaque" and before != after:
        return [
            f"content: compiled or native code changed in {path} (not readable for what it runs)"
        ]
    return []


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


def added_lines(before: str, after: str) -> list[int]:
    """1-based lines of ``after`` that ``before`` does not have where they stand."""
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), False)
    out: list[int] = []
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            out += range(j1 + 1, j2 + 1)
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
