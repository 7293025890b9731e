"""Reading a checkout's requirement files line by line for dependency trust, bad lines kept.

Discovery's reader (triloop.discovery.dependencies) stops at the first line that does not parse
and skips pip options and paths. Dependency trust must vet every line a PR adds, so this reader
returns the requirements it understood *and* the lines it could not vet, each with its file,
line and why: a line packaging cannot parse (``requests[``), an arbitrary-equality pin with no
version (``requests===``, pip finds nothing for it), an option pip does not read in a
requirements file (``--frobnicate``), or a path (``-e``, ``-r``, ``-c``, a bare path) that leaves
the repository (``-e ../../etc``). They become the ``deptrust.unparsable`` rule.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from triloop.discovery.dependencies import (
    REQUIREMENT_GLOBS,
    Dependency,
    DependencyError,
    parse_pyproject,
    parse_requirement,
)

_COMMENT = re.compile(r"(^|\s+)#.*$")
PATH_OPTIONS = frozenset({"-r", "--requirement", "-c", "--constraint", "-e", "--editable"})
OTHER_OPTIONS = frozenset(
    {
        *("-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links"),
        *("--pre", "--prefer-binary", "--only-binary", "--no-binary", "--require-hashes"),
        *("--trusted-host", "--use-feature", "--hash", "--config-settings"),
    }
)
"""Options pip reads in a requirements file (pip's req_file.py), besides the path ones."""


@dataclass(frozen=True)
class BadLine:
    """One requirement line dependency trust could not vet."""

    path: str  # file relative to the repository root
    line: int  # 1-based; 0 when unknown (a pyproject.toml that is not TOML)
    text: str
    why: str


def read_tree(checkout: Path) -> tuple[list[Dependency], list[BadLine]]:
    """The checkout's declared requirements, and the lines among them that could not be vetted."""
    found = {p for glob in REQUIREMENT_GLOBS for p in checkout.glob(glob)}
    deps: list[Dependency] = []
    bad: list[BadLine] = []
    for file in sorted(p for p in found if _inside(p, checkout)):
        rel = file.relative_to(checkout).as_posix()
        for number, text in _logical_lines(_read(file, rel, bad)):
            dep, why = _vet(text, rel, number, file.parent, checkout)
            if why:
                bad.append(BadLine(rel, number, text, why))
            elif dep is not None:
                deps.append(dep)
    pyproject = checkout / "pyproject.toml"
    if _inside(pyproject, checkout):
        try:
            deps += parse_pyproject(_read(pyproject, "pyproject.toml", bad), "pyproject.toml")
        except DependencyError as exc:
            bad.append(BadLine("pyproject.toml", _toml_line(exc), "", str(exc)))
    return deps, bad


def _vet(
    text: str, path: str, number: int, folder: Path, checkout: Path
) -> tuple[Dependency | None, str]:
    if text.startswith("-"):
        option = re.split(r"[=\s]", text, maxsplit=1)[0]
        value = text[len(option) :].lstrip(" =\t").split(" ", 1)[0]
        if option in PATH_OPTIONS:
            return None, _escapes(value, folder, checkout, option)
        if option not in OTHER_OPTIONS:
            return None, f"{option} is not a pip option pip reads in a requirements file"
        return None, ""
    if text.startswith((".", "/")):
        return None, _escapes(text.split(" ", 1)[0], folder, checkout, "a path")
    try:
        dep = parse_requirement(text, path, number)
    except DependencyError as exc:
        return None, str(exc).removeprefix(f"{path}:{number}: ")
    empty = [s.operator for s in (dep.specifier if dep else []) if not s.version.strip()]
    if empty:
        return None, f"not a valid requirement: {empty[0]!r} names no version"
    return dep, ""


def _escapes(value: str, folder: Path, checkout: Path, what: str) -> str:
    """Why a path ``value`` is refused ('' if it stays inside the checkout or is a URL)."""
    if not value:
        return f"{what} names no path"
    if re.match(r"^\w+\+?\w*://", value):
        return ""
    target = (folder / value).resolve()
    if not target.is_relative_to(checkout.resolve()):
        return f"{what} {value!r} points outside the repository"
    return ""


def _logical_lines(source: str) -> list[tuple[int, str]]:
    """(first line number, text) with comments stripped, continuations joined, blanks dropped."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(source.splitlines(), start=1):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        text = " ".join(_COMMENT.sub("", pending + raw).split())
        pending = ""
        if text:
            lines.append((start, text))
    return lines


def _read(path: Path, rel: str, bad: list[BadLine]) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        bad.append(BadLine(rel, 0, "", f"not UTF-8 text: {exc}"))
        return ""


def _toml_line(exc: Exception) -> int:
    cause = exc.__cause__
    found = (
        re.search(r"line (\d+)", str(cause)) if isinstance(cause, tomllib.TOMLDecodeError) else None
    )
    return int(found.group(1)) if found else 0


def _inside(path: Path, checkout: Path) -> bool:
    """A regular file of the checkout (a symlink out of it would read the host's files)."""
    return path.is_file() and path.resolve().is_relative_to(checkout.resolve())
