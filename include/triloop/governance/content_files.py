"""Files that run, or are unpickled, but are not Python source: their kind and their reasons.

Shell and other scripts, ``.pth`` files (site runs their ``import`` lines and puts their paths on
sys.path at every start) and compiled or native code are a reason whenever a change adds to
them: Triloop does not read what they run. Pickled data (``.pkl``, ``.joblib``, ``.pt``...) runs
code when the repository's own code unpickles it, and a YAML ``!!python/`` tag does under
``yaml.load``. A Python file's declared source encoding is the one Python decodes it with: one
outside the usual few (``utf-7`` turns a comment into code) is a reason of its own.
"""

from __future__ import annotations

import difflib
import re
from pathlib import PurePosixPath

from triloop.governance.content_table import DESERIALISE, DYNAMIC, names

PYTHON_SUFFIXES = frozenset((".py", ".pyw"))
SCRIPT_SUFFIXES = frozenset(names(".sh .bash .zsh .ksh .csh .tcsh .fish .ps1 .psm1 .bat .cmd"))
SCRIPT_NAMES = frozenset((".envrc", ".bashrc", ".profile", ".zshrc"))
OPAQUE_SUFFIXES = frozenset(
    names(".pyx .pxd .pxi .c .h .cc .cpp .cxx .hpp .rs .so .pyd .dll .dylib .pyc .pyo .whl .egg")
)
PICKLE_SUFFIXES = frozenset(names(".pkl .pickle .joblib .dill .pt .ckpt"))
YAML_SUFFIXES = frozenset((".yml", ".yaml"))
PLAIN_ENCODINGS = frozenset(names("utf-8 utf8 ascii us-ascii latin-1 latin1 iso-8859-1 cp1252"))
_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_KINDS = (
    (PYTHON_SUFFIXES, "python"),
    (frozenset((".ipynb",)), "notebook"),
    (frozenset((".pth",)), "pth"),
    (SCRIPT_SUFFIXES, "script"),
    (OPAQUE_SUFFIXES, "opaque"),
    (PICKLE_SUFFIXES, "pickle"),
    (YAML_SUFFIXES, "yaml"),
)


def kind(path: str, merged: str | None = None) -> str | None:
    """What ``path`` is to the content rules (python, notebook, pth, script, opaque, pickle,
    yaml), or None: nothing they judge.

    A name without a suffix is a script when ``merged`` starts with a shebang (a Python one
    makes it python); without ``merged`` it is ``maybe``: read it and ask again.
    """
    p = PurePosixPath(path)
    suffix = p.suffix.lower()
    found = next((k for suffixes, k in _KINDS if suffix in suffixes), None)
    if found or p.name in SCRIPT_NAMES:
        return found or "script"
    if suffix or p.name.startswith("."):
        return None
    if merged is None:
        return "maybe"
    first = merged.split("\n", 1)[0]
    if not first.startswith("#!"):
        return None
    return "python" if "python" in first else "script"


def added_lines(before: str, after: str) -> list[int]:
    """1-based lines of ``after`` that ``before`` does not have where they stand."""
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), False)
    out: list[int] = []
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            out += range(j1 + 1, j2 + 1)
    return out


def other_risks(path: str, what: str | None, before: str | None, after: str) -> list[str]:
    """Reasons for a changed file that is not Python source or a notebook."""
    if what in ("opaque", "pickle"):
        if before == after:
            return []
        if what == "pickle":
            return [f"content: {DESERIALISE} data changed in {path} (unpickling it runs code)"]
        return [
            f"content: compiled or native code changed in {path} (not readable for what it runs)"
        ]
    lines = added_lines(before or "", after) if what in ("pth", "script", "yaml") else []
    text = after.splitlines()
    if what == "yaml":
        tagged = [n for n in lines if "!!python/" in text[n - 1]]
        return [f"content: {DESERIALISE} added in {path}:{n} (!!python/ tag)" for n in tagged[:5]]
    if not lines:
        return []
    if what == "pth":
        shown = text[lines[0] - 1].strip()[:60]
        return [
            f"content: .pth file changed in {path}:{lines[0]} ({shown!r}: site runs its import"
            " lines and adds its paths at every interpreter start)"
        ]
    many = f"{len(lines)} lines" if len(lines) > 1 else "1 line"
    return [
        f"content: script changed in {path}:{lines[0]} ({many} added or changed; it runs"
        " commands Triloop does not read)"
    ]


def declared_encoding(text: str) -> str | None:
    """The PEP 263 source encoding a Python file declares in its first two lines, if any."""
    match = _COOKIE.search("\n".join(text.split("\n", 2)[:2]))
    return match.group(1).lower().replace("_", "-") if match else None


def encoding_risk(path: str, before: str | None, after: str) -> str | None:
    """A reason when the change declares an unusual source encoding for a Python file."""
    declared = declared_encoding(after)
    if declared is None or declared in PLAIN_ENCODINGS:
        return None
    if before is not None and declared_encoding(before) == declared:
        return None
    return (
        f"content: {DYNAMIC} added in {path}:1 (source encoding {declared}: Python decodes the"
        " file with it, so the code it runs is not the text the diff shows)"
    )
