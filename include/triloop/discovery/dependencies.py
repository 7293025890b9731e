"""A checkout's dependency declarations: every file found, read as text, includes followed.

Parsing is triloop.domain.manifests (one parser for every format); this module finds the files
(any depth, but not in ``.git``, virtualenvs, ``node_modules`` or caches), reads them with size
limits, and follows ``-r``/``-c``/``file:`` includes that stay inside the checkout, each file
once (a cycle ends there), at most :data:`MAX_INCLUDE_DEPTH` deep. Nothing is installed or run.

Two views of the result:

- :func:`read_declarations`: everything, for dependency trust (every requirement, source and
  problem, with file, line and place);
- :func:`declared_dependencies`: the environment the scanners and the wheelhouse look at
  (:func:`in_environment`): index releases declared by the top-level manifests, the files under
  ``requirements/`` and what those include; raises :class:`DependencyError` for the first
  declaration there that does not parse.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from triloop.domain.manifests import (
    Dependency,
    Kind,
    Parsed,
    Problem,
    ProblemKind,
    Source,
    manifest_kind,
    normalise_name,
    parse_manifest,
    trusted_indexes,
)

__all__ = [
    "Declarations",
    "Dependency",
    "DependencyError",
    "declared_dependencies",
    "in_environment",
    "normalise_name",
    "read_declarations",
]

log = logging.getLogger(__name__)
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_LOCK_BYTES = 32 * 1024 * 1024
MAX_FILES = 500
MAX_WALK_ENTRIES = 200_000
MAX_INCLUDE_DEPTH = 8
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", ".tox", ".nox", "__pycache__"}
    | {"site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs"}
)
LOCKS: frozenset[Kind] = frozenset({"uv.lock", "poetry.lock", "Pipfile.lock", "pylock"})
TEST_GROUPS = frozenset({"dev", "test", "tests", "testing", "dev-packages"})
_ORDER: tuple[Kind, ...] = (
    "requirements",
    "constraints",
    "pyproject",
    "setup.cfg",
    "setup.py",
    "Pipfile",
    "uv.toml",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "pylock",
)


class DependencyError(ValueError):
    """A declared dependency does not parse; the message names the file and line."""


@dataclass
class Declarations:
    """Everything a checkout declares, and which files make up its environment."""

    dependencies: list[Dependency] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    environment: set[str] = field(default_factory=set)


def describe(problem: Problem) -> str:
    """``file:line: why (text)`` (``file: why`` for a problem of the whole file)."""
    if not problem.text:
        return f"{problem.path}: {problem.why}"
    shown = "" if problem.text in problem.why else f" ({problem.text!r})"
    return f"{problem.path}:{problem.line}: {problem.why}{shown}"


def find_manifests(checkout: Path) -> tuple[list[tuple[str, Kind]], list[Problem]]:
    """Every declaration file in the checkout (repository path, format), in reading order."""
    found: list[tuple[str, Kind]] = []
    problems: list[Problem] = []
    seen = 0
    for folder, dirs, files in os.walk(checkout):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        seen += len(dirs) + len(files)
        if seen > MAX_WALK_ENTRIES:
            why = f"more than {MAX_WALK_ENTRIES} files and folders: the rest is not searched"
            problems.append(Problem(".", 0, "", why, "limit"))
            break
        rel = Path(folder).relative_to(checkout).as_posix()
        for name in files:
            path = name if rel == "." else f"{rel}/{name}"
            if (kind := manifest_kind(path)) is not None:
                found.append((path, kind))
    found.sort(key=lambda item: (_ORDER.index(item[1]), Path(item[0]).parts))
    return found, problems


def read_declarations(checkout: Path, *, indexes: tuple[str, ...] = ()) -> Declarations:
    """Every declaration in the checkout; ``indexes``: index URLs trusted besides PyPI."""
    trusted = trusted_indexes(indexes)
    manifests, problems = find_manifests(checkout)
    out = Declarations(problems=problems)
    done: set[tuple[str, bool]] = set()
    edges: dict[str, list[str]] = {}
    queue: list[tuple[str, Kind, int]] = [(path, kind, 0) for path, kind in manifests]
    while queue:
        path, kind, depth = queue.pop(0)
        if (path, kind == "constraints") in done:
            continue
        if len(done) >= MAX_FILES:
            why = f"more than {MAX_FILES} declaration files: {path} and the rest are not read"
            out.problems.append(Problem(path, 0, "", why, "limit"))
            break
        done.add((path, kind == "constraints"))
        out.files.append(path)
        parsed = _parse(checkout, path, kind, trusted)
        out.dependencies += parsed.dependencies
        out.sources += parsed.sources
        out.problems += parsed.problems
        followed: list[tuple[str, Kind, int]] = []
        for include in parsed.includes:
            problem = _include_problem(checkout, include.target, depth)
            if problem is not None:
                text = f"{'-c' if include.constraint else '-r'} {include.target}"
                out.problems.append(Problem(include.path, include.line, text, *problem))
                continue
            if not include.constraint:
                edges.setdefault(path, []).append(include.target)
            included: Kind = "constraints" if include.constraint else "requirements"
            followed.append((include.target, included, depth + 1))
        queue[0:0] = followed  # read next, in the order they are written
    out.environment = _environment(out.files, edges)
    return out


def _parse(checkout: Path, path: str, kind: Kind, indexes: frozenset[str]) -> Parsed:
    file = checkout / path
    if not _inside(file, checkout):
        return Parsed()  # a symlink out of the checkout would read the host's files
    limit = MAX_LOCK_BYTES if kind in LOCKS else MAX_FILE_BYTES
    with file.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        why = f"over the {limit}-byte limit: not read"
        return Parsed(problems=[Problem(path, 0, "", why, "limit")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Parsed(problems=[Problem(path, 0, "", f"not UTF-8 text: {exc}")])
    return parse_manifest(path, text, indexes, kind)


def _include_problem(checkout: Path, target: str, depth: int) -> tuple[str, ProblemKind] | None:
    """(why, kind) when an include cannot be followed, None when it can."""
    file = checkout / target
    if depth + 1 > MAX_INCLUDE_DEPTH:
        return f"includes nest deeper than {MAX_INCLUDE_DEPTH} files: not followed", "limit"
    if file.exists() and not file.resolve().is_relative_to(checkout.resolve()):
        return "points outside the repository (a symlink)", "outside"
    if not _inside(file, checkout):
        return "names no file in the repository", "invalid"
    return None


def _environment(files: list[str], edges: dict[str, list[str]]) -> set[str]:
    """Top-level manifests, the ``requirements/`` folder, and what they include (not ``-c``)."""
    roots = [f for f in files if "/" not in f or f.split("/", 1)[0] == "requirements"]
    reached: set[str] = set()
    stack = [f for f in roots if manifest_kind(f) not in LOCKS]
    while stack:
        path = stack.pop()
        if path not in reached:
            reached.add(path)
            stack += edges.get(path, [])
    return reached


def in_environment(dep: Dependency, declarations: Declarations) -> bool:
    """What the environment installs: index releases of the environment's files, their extras
    and dev/test groups; not build requirements, constraints or lock entries."""
    if dep.origin is not None or dep.path not in declarations.environment:
        return False
    if dep.scope == "group":
        return dep.section.lower() in TEST_GROUPS
    return dep.scope in ("run", "extra")


def declared_dependencies(checkout: Path) -> list[Dependency]:
    """The environment's requirements, in file order.

    Raises :class:`DependencyError` for a declaration in the environment's files that is
    malformed or too large; values computed at install time (a setup.py that is not literal)
    and paths leaving the repository are left out of the environment and logged.
    """
    declarations = read_declarations(checkout)
    for problem in declarations.problems:
        if problem.path in declarations.environment:
            if problem.kind in ("invalid", "limit"):
                raise DependencyError(describe(problem))
            log.info("%s: %s (left out of the environment)", checkout, describe(problem))
    return [d for d in declarations.dependencies if in_environment(d, declarations)]


def _inside(path: Path, checkout: Path) -> bool:
    """A regular file of the checkout (a symlink out of it would read the host's files)."""
    return path.is_file() and path.resolve().is_relative_to(checkout.resolve())
