"""The dependencies a repository declares: requirements*.txt and pyproject [project] tables.

Read from the host checkout as text (nothing is installed or run). Names are normalised per
PEP 503, so ``Django``, ``django_`` and ``django`` are one package. A pin is ``==V`` (or
``===V``) without a wildcard; anything else is a range. Lines that name no package (pip options,
paths, bare URLs) are skipped; a line that looks like a requirement but is not valid PEP 508
raises :class:`DependencyError` naming the file and line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REQUIREMENT_GLOBS = ("requirements*.txt", "requirements/*.txt")
_INLINE_COMMENT = re.compile(r"\s+#.*$")
_HASH_OPTION = re.compile(r"\s+--hash[= ]\S+")


class DependencyError(ValueError):
    """A declared dependency does not parse; the message names the file and line."""


@dataclass(frozen=True)
class Dependency:
    """One declared requirement."""

    name: str  # PEP 503 normalised
    specifier: SpecifierSet
    path: str  # file relative to the repository root
    line: int  # 1-based; 0 for pyproject entries whose line is unknown
    text: str  # the requirement as written (whitespace collapsed)

    @property
    def pinned(self) -> Version | None:
        """The exact version of an ``==V``/``===V`` pin, else None."""
        specs = list(self.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
            return None
        try:
            return Version(specs[0].version)
        except InvalidVersion:
            return None


def normalise_name(name: str) -> str:
    """PEP 503: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    return str(canonicalize_name(name))


def parse_requirement(text: str, path: str, line: int) -> Dependency | None:
    """One requirement line; None for lines that name no package (options, paths, URLs)."""
    text = _HASH_OPTION.sub("", _INLINE_COMMENT.sub("", text)).strip()
    if not text or text.startswith(("#", "-", ".", "/")) or re.match(r"^\w+\+?\w*://", text):
        return None
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise DependencyError(f"{path}:{line}: not a valid requirement {text!r}: {exc}") from exc
    if req.url:
        return None  # a direct reference has no version to compare
    return Dependency(normalise_name(req.name), req.specifier, path, line, " ".join(text.split()))


def parse_requirements_txt(source: str, path: str) -> list[Dependency]:
    """A pip requirements file; backslash continuations are joined onto their first line."""
    deps: list[Dependency] = []
    pending, start = "", 0
    for number, raw in enumerate(source.splitlines(), start=1):
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        dep = parse_requirement(pending + raw, path, start)
        pending = ""
        if dep is not None:
            deps.append(dep)
    return deps


def parse_pyproject(source: str, path: str) -> list[Dependency]:
    """``[project].dependencies`` and ``[project.optional-dependencies]``."""
    try:
        project = tomllib.loads(source).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise DependencyError(f"{path}: not valid TOML: {exc}") from exc
    entries = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        entries.extend(extra)
    lines = source.splitlines()
    deps: list[Dependency] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise DependencyError(f"{path}: [project] dependency {entry!r} is not a string")
        line = next((i for i, text in enumerate(lines, start=1) if entry in text), 0)
        dep = parse_requirement(entry, path, line)
        if dep is not None:
            deps.append(dep)
    return deps


def declared_dependencies(checkout: Path) -> list[Dependency]:
    """Every dependency the checkout declares, in file order."""
    found = {p for glob in REQUIREMENT_GLOBS for p in checkout.glob(glob)}
    files = sorted(p for p in found if _inside(p, checkout))
    deps: list[Dependency] = []
    for file in files:
        deps.extend(parse_requirements_txt(_read(file), file.relative_to(checkout).as_posix()))
    pyproject = checkout / "pyproject.toml"
    if _inside(pyproject, checkout):
        deps.extend(parse_pyproject(_read(pyproject), "pyproject.toml"))
    return deps


def _inside(path: Path, checkout: Path) -> bool:
    """A regular file of the checkout (a symlink out of it would read the host's files)."""
    return path.is_file() and path.resolve().is_relative_to(checkout.resolve())


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DependencyError(f"{path.name}: not UTF-8 text: {exc}") from exc
