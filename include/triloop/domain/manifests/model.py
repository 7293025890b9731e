"""What a dependency declaration says: requirements, where packages come from, what is unreadable.

Pure data and PEP 508 parsing; no file is opened here (triloop.discovery.dependencies reads the
checkout and follows includes). Names are PEP 503 normalised (``Django``, ``django_`` and
``django`` are one package).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

Scope = Literal["run", "extra", "group", "build", "constraint", "lock"]
ProblemKind = Literal["invalid", "dynamic", "outside", "limit"]
SourceKind = Literal["index", "find-links", "trusted-host", "url", "vcs", "path"]
DEFAULT_INDEXES = frozenset({"https://pypi.org/simple", "https://pypi.python.org/simple"})
DEFAULT_FILE_HOSTS = frozenset({"files.pythonhosted.org"})
_VCS = ("git+", "hg+", "svn+", "bzr+")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_ENV_VAR = re.compile(r"\$\{[A-Z0-9_]+\}")


def normalise_name(name: str) -> str:
    """PEP 503: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    return str(canonicalize_name(name))


@dataclass(frozen=True)
class Origin:
    """Where a declaration takes packages from when it is not a release of the default index."""

    kind: SourceKind
    target: str  # the URL, VCS reference, path (repository-relative) or host it points at

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"


@dataclass(frozen=True)
class Dependency:
    """One declared requirement, with the file, line and place (table, section) declaring it."""

    name: str  # PEP 503 normalised
    specifier: SpecifierSet
    path: str  # file relative to the repository root
    line: int  # 1-based; 0 when the format or the entry gives no line
    text: str  # the declaration as written (whitespace collapsed)
    place: str = ""  # e.g. "pyproject.toml [dependency-groups] test"
    extras: tuple[str, ...] = ()
    marker: str = ""
    origin: Origin | None = None  # None: a release of the package index
    scope: Scope = "run"
    section: str = ""  # the extra's or group's name

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

    @property
    def requirement(self) -> str:
        """The PEP 508 requirement an installer is given (an index release: no URL)."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        marker = f"; {self.marker}" if self.marker else ""
        return f"{self.name}{extras}{self.specifier}{marker}"

    @property
    def key(self) -> tuple[str, str, tuple[str, ...], str, str]:
        """What makes two declarations install the same thing (file and line aside)."""
        origin = str(self.origin) if self.origin else ""
        return (self.name, str(self.specifier), self.extras, self.marker, origin)


@dataclass(frozen=True)
class Source:
    """A declaration that changes where packages come from (an option, a URL, a path)."""

    path: str
    line: int
    text: str
    place: str
    origin: Origin
    name: str = ""  # the package, when the declaration names one


@dataclass(frozen=True)
class Problem:
    """A declaration that cannot be vetted, and why.

    ``kind``: ``invalid`` (malformed, or an installer would refuse it), ``dynamic`` (computed at
    install time: a ``${VAR}``, a setup.py value that is not a literal), ``outside`` (a path
    leaving the repository, never followed), ``limit`` (too large or too deep to read).
    """

    path: str
    line: int
    text: str
    why: str
    kind: ProblemKind = "invalid"


@dataclass(frozen=True)
class Include:
    """Another file a declaration pulls in (``-r``, ``-c``, setuptools ``file:``)."""

    path: str  # the including file
    line: int
    target: str  # repository-relative, normalised (inside the repository: checked when made)
    constraint: bool = False


@dataclass
class Parsed:
    """Everything one file declares."""

    dependencies: list[Dependency] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)

    def add(self, item: Dependency | Problem) -> None:
        """Keep a parsed entry; one with an origin is also a source."""
        if isinstance(item, Problem):
            self.problems.append(item)
            return
        self.dependencies.append(item)
        if item.origin is not None:
            self.sources.append(
                Source(item.path, item.line, item.text, item.place, item.origin, item.name)
            )

    def extend(self, other: Parsed) -> None:
        self.dependencies += other.dependencies
        self.sources += other.sources
        self.problems += other.problems
        self.includes += other.includes


@dataclass(frozen=True)
class Where:
    """The file, line and place of one entry, and how its requirements count."""

    path: str
    line: int
    place: str
    scope: Scope = "run"
    section: str = ""

    def at(self, line: int) -> Where:
        return Where(self.path, line, self.place, self.scope, self.section)

    def problem(self, text: str, why: str, kind: ProblemKind = "invalid") -> Problem:
        return Problem(self.path, self.line, " ".join(text.split())[:300], why, kind)


def as_table(value: object) -> dict[str, Any]:
    """A TOML/JSON table, or an empty one for anything else (a hostile file's wrong types)."""
    return value if isinstance(value, dict) else {}


def index_url(url: str) -> str:
    """An index URL as compared: lower-case scheme and host, no trailing slash."""
    split = urlsplit(url.strip())
    return f"{split.scheme.lower()}://{split.netloc.lower()}{split.path.rstrip('/')}"


def is_default_index(url: str, indexes: Collection[str]) -> bool:
    return index_url(url) in indexes


def url_origin(url: str) -> Origin:
    """A direct reference: a VCS URL, a ``file:`` path or another URL."""
    if url.lower().startswith(_VCS):
        return Origin("vcs", url)
    if url.lower().startswith("file:"):
        return Origin("path", url)
    return Origin("url", url)


def is_url(text: str) -> bool:
    return bool(_URL.match(text)) or text.lower().startswith("file:")


def local_path(value: str, folder: str) -> str | None:
    """``value`` (relative to the repository folder ``folder``) as a repository path.

    None when it leaves the repository (``..`` past the root, an absolute path, a drive).
    """
    value = value.replace("\\", "/")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        return None
    joined = posixpath.normpath(posixpath.join(folder or ".", value))
    return None if joined == ".." or joined.startswith("../") else joined


def parse_pep508(text: str, where: Where) -> Dependency | Problem:
    """One PEP 508 requirement string, or the problem that stops it being vetted."""
    text = " ".join(text.split())
    if variable := _ENV_VAR.search(text):
        why = f"{variable.group(0)} is expanded at install time: cannot be vetted"
        return where.problem(text, why, "dynamic")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        return where.problem(text, f"not a valid requirement {text!r}: {exc}")
    empty = [s.operator for s in req.specifier if not s.version.strip()]
    if empty:
        return where.problem(text, f"not a valid requirement: {empty[0]!r} names no version")
    return Dependency(
        name=normalise_name(req.name),
        specifier=req.specifier,
        path=where.path,
        line=where.line,
        text=text,
        place=where.place,
        extras=tuple(sorted(normalise_name(e) for e in req.extras)),
        marker=str(req.marker) if req.marker else "",
        origin=url_origin(req.url) if req.url else None,
        scope=where.scope,
        section=where.section,
    )


def pinned_dependency(name: str, version: str, where: Where, origin: Origin | None) -> Dependency:
    """A locked package: ``name==version`` (no specifier when the lock gives no version)."""
    text = f"{name}=={version}" if version else name
    try:
        specifier = SpecifierSet(f"=={version}") if version else SpecifierSet()
    except ValueError:
        specifier = SpecifierSet()
    return Dependency(
        name=normalise_name(name),
        specifier=specifier,
        path=where.path,
        line=where.line,
        text=text,
        place=where.place,
        origin=origin,
        scope="lock",
        section=where.section,
    )
