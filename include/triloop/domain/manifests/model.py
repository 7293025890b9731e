"""What a dependency declaration says: requirements, where packages come from, what is unreadable.

Pure data (PEP 508 parsing is in triloop.domain.manifests.pep508); no file is opened here
(triloop.discovery.dependencies reads the checkout and follows includes). Names are PEP 503
normalised (``Django``, ``django_`` and ``django`` are one package).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

Scope = Literal["run", "extra", "group", "build", "constraint", "lock"]
ProblemKind = Literal["invalid", "dynamic", "outside", "limit"]
SourceKind = Literal["index", "find-links", "trusted-host", "url", "vcs", "path"]


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
