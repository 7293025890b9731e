"""Dependencies written as TOML keys: poetry, Pipfile and ``[tool.uv.sources]`` tables.

``name = "^1.2"`` or ``name = {version = "...", extras = [...], markers = "...", git = "...",
path = "...", url = "...", source = "..."}`` (a list of such tables for several constraints).
Poetry's ``^`` and ``~`` constraints become PEP 440 ranges (``^1.2`` is ``>=1.2,<2``); a
``git``/``hg``/``svn``/``bzr``, ``path``, ``url``/``file`` key, or an index other than a
default one (``source``/``index`` naming a declared index), is where the package comes from.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Collection, Mapping
from typing import Literal

from packaging.version import InvalidVersion, Version

from triloop.domain.manifests.model import (
    Dependency,
    Origin,
    Problem,
    Where,
)
from triloop.domain.manifests.pep508 import (
    is_default_index,
    local_path,
    parse_pep508,
    url_origin,
)

Style = Literal["poetry", "pipfile"]
VCS_KEYS = ("git", "hg", "svn", "bzr")
_SPLIT = re.compile(r",|\s+(?=[<>=!~^])")


def poetry_specifier(constraint: str) -> str | None:
    """Poetry's constraint as a PEP 440 specifier ('' for any version); None if it has none."""
    text = constraint.strip()
    if text in ("", "*"):
        return ""
    if "|" in text:
        return None  # an "or" of ranges: PEP 440 has no way to say it
    out: list[str] = []
    for part in (p.replace(" ", "") for p in _SPLIT.split(text) if p.strip()):
        bounds = _caret_or_tilde(part)
        if bounds is None:
            return None
        out += bounds
    return ",".join(out)


def _caret_or_tilde(part: str) -> list[str] | None:
    if part.startswith(("^", "~")) and not part.startswith("~="):
        try:
            release = list(Version(part[1:]).release)
        except InvalidVersion:
            return None
        if part.startswith("^"):
            first = next((i for i, n in enumerate(release) if n), len(release) - 1)
            upper = [*release[:first], release[first] + 1]
        else:
            upper = [release[0], release[1] + 1] if len(release) > 1 else [release[0] + 1]
        return [f">={part[1:]}", f"<{'.'.join(map(str, upper))}"]
    if part[:1].isdigit():
        return [f"=={part}"]
    return [part] if part[:1] in "<>=!~" else None


def pipfile_specifier(constraint: str) -> str | None:
    text = constraint.strip()
    if text in ("", "*"):
        return ""
    return f"=={text}" if text[:1].isdigit() else text


def table_dependencies(
    name: str,
    value: object,
    where: Where,
    *,
    style: Style,
    named_indexes: Mapping[str, str],
    indexes: Collection[str],
    text: str = "",
) -> list[Dependency | Problem]:
    """The requirements one key declares (a list of tables is one each), or their problems."""
    out: list[Dependency | Problem] = []
    for item in value if isinstance(value, list) else [value]:
        written = text or f"{name} = {json.dumps(item, default=str)}"
        table: dict[str, object] = item if isinstance(item, dict) else {}
        version = item if isinstance(item, str) else table.get("version", "*")
        if not isinstance(item, str | dict) or not isinstance(version, str):
            out.append(where.problem(written, f"{name}: not a version string or a table"))
            continue
        spec = (poetry_specifier if style == "poetry" else pipfile_specifier)(version)
        if spec is None:
            out.append(where.problem(written, f"{name}: {version!r} is not a version constraint"))
            continue
        origin = table_origin(name, table, where, named_indexes, indexes)
        if isinstance(origin, Problem):
            out.append(origin)
            continue
        extras = table.get("extras", [])
        markers = table.get("markers", "")
        if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
            out.append(where.problem(written, f"{name}: extras is not a list of names"))
            continue
        requirement = f"{name}[{','.join(extras)}]{spec}" if extras else f"{name}{spec}"
        if isinstance(markers, str) and markers.strip():
            requirement += f"; {markers}"
        parsed = parse_pep508(requirement, where)
        if isinstance(parsed, Problem):
            out.append(dataclasses.replace(parsed, text=" ".join(written.split())))
        else:
            out.append(dataclasses.replace(parsed, text=" ".join(written.split()), origin=origin))
    return out


def table_origin(
    name: str,
    table: Mapping[str, object],
    where: Where,
    named_indexes: Mapping[str, str],
    indexes: Collection[str],
) -> Origin | Problem | None:
    """Where a table entry takes its package from (None: a default index)."""
    written = f"{name} = {json.dumps(table, default=str)}"
    for key in VCS_KEYS:
        if isinstance(url := table.get(key), str):
            ref = next((table[k] for k in ("rev", "tag", "branch", "ref") if k in table), None)
            return Origin("vcs", f"{key}+{url}" + (f"@{ref}" if isinstance(ref, str) else ""))
    if isinstance(path := table.get("path"), str):
        target = local_path(path, where.path.rpartition("/")[0])
        if target is None:
            return where.problem(
                written, f"{name}: path {path!r} points outside the repository", "outside"
            )
        return Origin("path", target)
    for key in ("url", "file"):
        if isinstance(url := table.get(key), str):
            return url_origin(url)
    if table.get("workspace") is True:
        return Origin("path", "workspace member")
    for key in ("source", "index"):
        if isinstance(index := table.get(key), str):
            url = named_indexes.get(index)
            if url is None and index.lower() == "pypi":
                return None
            if url is None:
                return where.problem(written, f"{name}: {key} {index!r} is not declared")
            return None if is_default_index(url, indexes) else Origin("index", url)
    return None
