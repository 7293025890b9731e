"""pipenv's ``Pipfile`` (TOML) and ``Pipfile.lock`` (JSON).

Every table of a Pipfile but ``source``, ``requires``, ``pipenv`` and ``scripts`` is a package
category (``packages``, ``dev-packages`` or a custom one). ``[[source]]`` entries other than a
default index, and any with ``verify_ssl = false``, change where packages come from, as do
``git``/``path``/``file`` entries and an ``index`` naming a non-default source. The lock's
``_meta.sources`` and each package's ``index``/``git``/``path``/``file`` are read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from triloop.domain.manifests.lines import Lines
from triloop.domain.manifests.model import (
    Origin,
    Parsed,
    Problem,
    Scope,
    Source,
    Where,
)
from triloop.domain.manifests.pep508 import (
    is_default_index,
    pinned_dependency,
)
from triloop.domain.manifests.pyproject import load_toml
from triloop.domain.manifests.tables import table_dependencies, table_origin

NOT_PACKAGES = frozenset({"source", "requires", "pipenv", "scripts"})


def _sources(
    entries: object, path: str, place: str, lines: Lines, indexes: Collection[str], out: Parsed
) -> dict[str, str]:
    named: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        url, name = entry["url"], str(entry.get("name", ""))
        named[name] = url
        line = lines.find(url)
        text = f"{name} = {url}"
        if not is_default_index(url, indexes):
            out.sources.append(Source(path, line, text, place, Origin("index", url)))
        if entry.get("verify_ssl") is False:
            origin = Origin("trusted-host", url)
            out.sources.append(Source(path, line, f"{text} verify_ssl = false", place, origin))
    return named


def parse_pipfile(source: str, path: str, indexes: Collection[str]) -> Parsed:
    data, problem = load_toml(source, path)
    parsed = Parsed(problems=[problem] if problem else [])
    lines = Lines(source)
    named = _sources(data.get("source"), path, f"{path} [[source]]", lines, indexes, parsed)
    for category, table in data.items():
        if category in NOT_PACKAGES or not isinstance(table, dict):
            continue
        start = lines.header(category)
        scope: Scope = "run" if category == "packages" else "group"
        where = Where(path, start, f"{path} [{category}]", scope, category)
        cursor = start
        for name, value in table.items():
            line = lines.key(name, cursor)
            cursor = line or cursor
            text = lines.lines[line - 1].strip() if line else ""
            for item in table_dependencies(
                name,
                value,
                where.at(line),
                style="pipfile",
                named_indexes=named,
                indexes=indexes,
                text=text,
            ):
                parsed.add(item)
    return parsed


def parse_pipfile_lock(source: str, path: str, indexes: Collection[str]) -> Parsed:
    try:
        data = json.loads(source)
    except ValueError as exc:
        return Parsed(problems=[Problem(path, getattr(exc, "lineno", 0), "", f"not JSON: {exc}")])
    if not isinstance(data, dict):
        return Parsed(problems=[Problem(path, 1, "", "not a Pipfile.lock: not a JSON object")])
    parsed = Parsed()
    lines = Lines(source)
    meta: dict[str, Any] = data.get("_meta") if isinstance(data.get("_meta"), dict) else {}  # type: ignore[assignment]
    place = f"{path} _meta.sources"
    named = _sources(meta.get("sources"), path, place, lines, indexes, parsed)
    for category, table in data.items():
        if category == "_meta" or not isinstance(table, dict):
            continue
        cursor = lines.find(f'"{category}"')
        for name, entry in table.items():
            line = lines.find(f'"{name}"', cursor)
            cursor = line or cursor
            where = Where(path, line, f"{path} {category}", "lock", category)
            body: dict[str, Any] = entry if isinstance(entry, dict) else {}
            origin = table_origin(name, body, where, named, indexes)
            if isinstance(origin, Problem):
                parsed.add(origin)
                continue
            version = body.get("version", "")
            version = version[2:] if isinstance(version, str) and version.startswith("==") else ""
            parsed.add(pinned_dependency(name, version, where, origin))
    return parsed
