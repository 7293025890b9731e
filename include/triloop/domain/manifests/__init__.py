"""Every place a Python project declares what it installs, parsed by one parser. Pure.

One call, :func:`parse_manifest`, reads any declaration file's text: requirements and
constraints files of any name (``requirements*.txt``, ``dev-requirements.txt``, ``*.in``, any
``.txt`` under ``requirements/``), ``pyproject.toml``, ``setup.cfg``, ``setup.py`` (through
``ast``, never run), ``Pipfile``, uv's ``uv.toml`` settings, and the lock files ``uv.lock``,
``poetry.lock``, ``Pipfile.lock`` and ``pylock.toml``. It returns a :class:`Parsed`: the
requirements (file, line, place, name, specifier, extras, marker, and their :class:`Origin`
when they are not an index release), the :class:`Source` entries that change where packages
come from, the :class:`Problem` entries that cannot be vetted, and the :class:`Include` entries
(``-r``, ``-c``, ``file:``) a reader follows. No file is opened here:
triloop.discovery.dependencies finds and reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from typing import Literal

from triloop.domain.manifests.locks import parse_poetry_lock, parse_pylock, parse_uv_lock
from triloop.domain.manifests.model import (
    Dependency,
    Include,
    Origin,
    Parsed,
    Problem,
    ProblemKind,
    Scope,
    Source,
    normalise_name,
)
from triloop.domain.manifests.pep508 import (
    DEFAULT_INDEXES,
    index_url,
)
from triloop.domain.manifests.pipfile import parse_pipfile, parse_pipfile_lock
from triloop.domain.manifests.pyproject import parse_pyproject, parse_uv_toml
from triloop.domain.manifests.reqfile import parse_requirements_file
from triloop.domain.manifests.setup_cfg import parse_setup_cfg
from triloop.domain.manifests.setup_py import parse_setup_py

__all__ = [
    "DEFAULT_INDEXES",
    "Dependency",
    "Include",
    "Kind",
    "Origin",
    "Parsed",
    "Problem",
    "ProblemKind",
    "Scope",
    "Source",
    "manifest_kind",
    "normalise_name",
    "parse_manifest",
    "trusted_indexes",
]

Kind = Literal[
    "requirements",
    "constraints",
    "pyproject",
    "setup.cfg",
    "setup.py",
    "Pipfile",
    "Pipfile.lock",
    "uv.lock",
    "poetry.lock",
    "pylock",
    "uv.toml",
]
LOCKS: frozenset[Kind] = frozenset({"Pipfile.lock", "uv.lock", "poetry.lock", "pylock"})
_EXACT: dict[str, Kind] = {
    "pyproject.toml": "pyproject",
    "setup.cfg": "setup.cfg",
    "setup.py": "setup.py",
    "Pipfile": "Pipfile",
    "Pipfile.lock": "Pipfile.lock",
    "uv.lock": "uv.lock",
    "poetry.lock": "poetry.lock",
    "pylock.toml": "pylock",
    "uv.toml": "uv.toml",
}
_PYLOCK = re.compile(r"pylock\.[^./]+\.toml")
_REQUIREMENTS = re.compile(r".*(requirements|constraints).*\.(txt|in)", re.IGNORECASE)
Parser = Callable[[str, str, Collection[str]], Parsed]
_PARSERS: dict[Kind, Parser] = {
    "pyproject": parse_pyproject,
    "setup.cfg": parse_setup_cfg,
    "setup.py": parse_setup_py,
    "Pipfile": parse_pipfile,
    "Pipfile.lock": parse_pipfile_lock,
    "uv.lock": parse_uv_lock,
    "poetry.lock": parse_poetry_lock,
    "pylock": parse_pylock,
    "uv.toml": parse_uv_toml,
}


def manifest_kind(path: str) -> Kind | None:
    """The declaration format of a repository path by its name; None for any other file."""
    folder, _, name = path.rpartition("/")
    if name in _EXACT:
        return _EXACT[name]
    if _PYLOCK.fullmatch(name):
        return "pylock"
    in_folder = "requirements" in folder.lower().split("/") and name.endswith((".txt", ".in"))
    if _REQUIREMENTS.fullmatch(name) or in_folder:
        return "constraints" if "constraints" in name.lower() else "requirements"
    return None


def trusted_indexes(extra: Iterable[str] = ()) -> frozenset[str]:
    """The default indexes (PyPI) and ``extra`` ones (e.g. the policy's), as compared."""
    return DEFAULT_INDEXES | {index_url(url) for url in extra}


def parse_manifest(
    path: str,
    text: str,
    indexes: Collection[str] = DEFAULT_INDEXES,
    kind: Kind | None = None,
) -> Parsed:
    """Everything the file at repository path ``path`` declares (``kind``: by its name)."""
    kind = kind or manifest_kind(path)
    if kind is None:
        return Parsed()
    try:
        if kind in ("requirements", "constraints"):
            return parse_requirements_file(text, path, indexes, constraint=kind == "constraints")
        return _PARSERS[kind](text, path, indexes)
    except RecursionError:  # tomllib, json and packaging's marker parser recurse
        why = "nested too deeply to read (a TOML/JSON value or a marker): not read"
        return Parsed(problems=[Problem(path, 0, "", why, "limit")])
