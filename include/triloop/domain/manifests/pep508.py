"""PEP 508 requirement strings, and where URLs and paths in declarations point. Pure.

A requirement that names a URL is a direct reference: a VCS URL (``git+``, ``hg+``, ``svn+``,
``bzr+``), a ``file:`` path or another URL; a local path is kept repository-relative, or refused
when it leaves the repository. Index URLs are compared with a lower-case scheme and host and no
trailing slash (``https://PyPI.org/simple/`` is PyPI).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from triloop.domain.manifests.model import Dependency, Origin, Problem, Where, normalise_name

DEFAULT_INDEXES = frozenset({"https://pypi.org/simple", "https://pypi.python.org/simple"})
DEFAULT_FILE_HOSTS = frozenset({"files.pythonhosted.org"})
_VCS = ("git+", "hg+", "svn+", "bzr+")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_ENV_VAR = re.compile(r"\$\{[A-Z0-9_]+\}")


def as_table(value: object) -> dict[str, Any]:
    """A TOML/JSON table, or an empty one for anything else (a hostile file's wrong types)."""
    return value if isinstance(value, dict) else {}


def index_url(url: str) -> str:
    """An index URL as compared: lower-case scheme and host, no trailing slash."""
    try:
        split = urlsplit(url.strip())
    except ValueError:  # a malformed host ("https://a[b/"): compared as written, never a default
        return url.strip()
    return f"{split.scheme.lower()}://{split.netloc.lower()}{split.path.rstrip('/')}"


def url_host(url: str) -> str:
    """The host of ``url`` ('' when it has none or it is malformed)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_default_index(url: str, indexes: Collection[str]) -> bool:
    return index_url(url) in indexes


def url_origin(url: str) -> Origin:
    """A direct reference: a VCS URL, a ``file:`` URL or a path, or another URL."""
    if url.lower().startswith(_VCS):
        return Origin("vcs", url)
    if url.lower().startswith("file:") or not _URL.match(url):
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
    origin = url_origin(req.url) if req.url else None
    if req.url and not is_url(req.url):  # name @ ./path: relative to the working directory
        target = local_path(req.url, "")
        if target is None:
            why = f"a path {req.url!r} points outside the repository"
            return where.problem(text, why, "outside")
        origin = Origin("path", target)
    return Dependency(
        name=normalise_name(req.name),
        specifier=req.specifier,
        path=where.path,
        line=where.line,
        text=text,
        place=where.place,
        extras=tuple(sorted(normalise_name(e) for e in req.extras)),
        marker=str(req.marker) if req.marker else "",
        origin=origin,
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
