"""``pyproject.toml``: every table that says what a project installs or where it comes from.

- ``[project]`` ``dependencies`` and ``optional-dependencies``; ``[dependency-groups]``
  (``{include-group = ...}`` entries are the other group's, read there); ``[build-system]
  requires``; ``[tool.setuptools.dynamic]`` ``file`` lists (followed like ``-r``);
- ``[tool.poetry]`` ``dependencies``, ``dev-dependencies``, ``group.<name>.dependencies`` and
  ``[[tool.poetry.source]]``;
- ``[tool.uv]`` ``dev-dependencies``, ``constraint-``/``override-dependencies``, ``index-url``,
  ``extra-index-url``, ``find-links``, ``allow-insecure-host`` (also under ``[tool.uv.pip]``),
  ``[[tool.uv.index]]`` and ``[tool.uv.sources]``; the same settings in a ``uv.toml``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from typing import Any

from triloop.domain.manifests.lines import Lines, toml_error_line
from triloop.domain.manifests.model import (
    Include,
    Origin,
    Parsed,
    Problem,
    Scope,
    Source,
    SourceKind,
    Where,
)
from triloop.domain.manifests.pep508 import (
    as_table,
    is_default_index,
    local_path,
    parse_pep508,
)
from triloop.domain.manifests.tables import table_dependencies, table_origin

UV_SOURCES: dict[str, SourceKind] = {
    "index-url": "index",
    "extra-index-url": "index",
    "find-links": "find-links",
    "allow-insecure-host": "trusted-host",
}
UV_LISTS: dict[str, tuple[Scope, str]] = {
    "dev-dependencies": ("group", "dev"),
    "constraint-dependencies": ("constraint", ""),
    "override-dependencies": ("constraint", ""),
    "build-constraint-dependencies": ("constraint", ""),
}


def load_toml(source: str, path: str) -> tuple[dict[str, Any], Problem | None]:
    try:
        return tomllib.loads(source), None
    except tomllib.TOMLDecodeError as exc:
        return {}, Problem(path, toml_error_line(exc), "", f"not valid TOML: {exc}")


def parse_pyproject(source: str, path: str, indexes: Collection[str]) -> Parsed:
    data, problem = load_toml(source, path)
    parsed = Parsed(problems=[problem] if problem else [])
    reader = _Reader(path, Lines(source), parsed)
    project = as_table(data.get("project"))
    reader.strings(project.get("dependencies", []), "project", "[project] dependencies", "run")
    for extra, entries in as_table(project.get("optional-dependencies")).items():
        place = f"[project.optional-dependencies] {extra}"
        reader.strings(entries, "project.optional-dependencies", place, "extra", extra)
    for group, entries in as_table(data.get("dependency-groups")).items():
        place = f"[dependency-groups] {group}"
        reader.strings(entries, "dependency-groups", place, "group", group)
    requires = as_table(data.get("build-system")).get("requires", [])
    reader.strings(requires, "build-system", "[build-system] requires", "build")
    tool = as_table(data.get("tool"))
    _setuptools_files(as_table(tool.get("setuptools")), reader)
    _poetry(as_table(tool.get("poetry")), reader, indexes)
    _uv(as_table(tool.get("uv")), reader, indexes, "tool.uv")
    return parsed


class _Reader:
    """Adds one table's entries to ``parsed`` with their lines and places."""

    def __init__(self, path: str, lines: Lines, parsed: Parsed) -> None:
        self.path, self.lines, self.parsed = path, lines, parsed

    def where(self, table: str, place: str, scope: Scope = "run", section: str = "") -> Where:
        return Where(self.path, self.lines.header(table), f"{self.path} {place}", scope, section)

    def strings(
        self, entries: object, table: str, place: str, scope: Scope, section: str = ""
    ) -> None:
        where = self.where(table, place, scope, section)
        if not isinstance(entries, list):
            self.parsed.add(where.problem(str(entries), f"{place} is not a list"))
            return
        cursor = where.line
        label = place.split("]", 1)[0] + "]"
        for entry in entries:
            if isinstance(entry, dict) and set(entry) == {"include-group"}:
                continue  # the included group's entries are read as that group
            if not isinstance(entry, str):
                what = "dependency" if label == "[project]" else "entry"
                self.parsed.add(
                    where.problem(repr(entry), f"{label} {what} {entry!r} is not a string")
                )
                continue
            line = self.lines.find(entry, cursor)
            cursor = line or cursor
            self.parsed.add(parse_pep508(entry, where.at(line)))

    def source(self, table: str, place: str, text: str, origin: Origin, key: str = "") -> None:
        """A source declared in ``table`` (under ``key``, when it is a setting)."""
        start = self.lines.header(table)
        start = (self.lines.key(key, start) or start) if key else start
        line = self.lines.find(origin.target, start) or start
        self.parsed.sources.append(Source(self.path, line, text, f"{self.path} {place}", origin))


def _setuptools_files(setuptools: dict[str, Any], reader: _Reader) -> None:
    dynamic = as_table(setuptools.get("dynamic"))
    tables = [dynamic.get("dependencies"), *as_table(dynamic.get("optional-dependencies")).values()]
    folder = reader.path.rpartition("/")[0]
    for table in tables:
        files = as_table(table).get("file", [])
        for name in [files] if isinstance(files, str) else files:
            where = reader.where("tool.setuptools.dynamic", "[tool.setuptools.dynamic] file")
            line = reader.lines.find(str(name), where.line)
            target = local_path(str(name), folder)
            if target is None:
                why = f"file {name!r} points outside the repository"
                reader.parsed.add(where.at(line).problem(str(name), why, "outside"))
            else:
                reader.parsed.includes.append(Include(reader.path, line, target))


def _poetry(poetry: dict[str, Any], reader: _Reader, indexes: Collection[str]) -> None:
    named: dict[str, str] = {}
    for entry in poetry.get("source", []) if isinstance(poetry.get("source"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            named[str(entry.get("name", ""))] = entry["url"]
            if not is_default_index(entry["url"], indexes):
                text = f"{entry.get('name', '')} = {entry['url']}"
                place = f"[[tool.poetry.source]] {entry.get('name', '')}"
                reader.source("tool.poetry.source", place, text, Origin("index", entry["url"]))
    tables: list[tuple[str, object, Scope, str]] = [
        ("tool.poetry.dependencies", poetry.get("dependencies"), "run", ""),
        ("tool.poetry.dev-dependencies", poetry.get("dev-dependencies"), "group", "dev"),
    ]
    for group, body in as_table(poetry.get("group")).items():
        table = f"tool.poetry.group.{group}.dependencies"
        tables.append((table, as_table(body).get("dependencies"), "group", group))
    for table, body, scope, section in tables:
        where = reader.where(table, f"[{table}]", scope, section)
        cursor = where.line
        for name, value in as_table(body).items():
            if name.lower() == "python":
                continue  # the interpreter, not a package
            line = reader.lines.key(name, cursor)
            cursor = line or cursor
            text = reader.lines.lines[line - 1].strip() if line else ""
            for item in table_dependencies(
                name,
                value,
                where.at(line),
                style="poetry",
                named_indexes=named,
                indexes=indexes,
                text=text,
            ):
                reader.parsed.add(item)


def _uv(uv: dict[str, Any], reader: _Reader, indexes: Collection[str], table: str) -> None:
    """``[tool.uv]`` of a pyproject.toml (``table`` ``tool.uv``), or a whole uv.toml (``""``)."""
    label = f"[{table}] " if table else ""
    header = table or ""
    for key, (scope, section) in UV_LISTS.items():
        if key in uv:
            reader.strings(uv[key], header, f"{label}{key}", scope, section)
    for settings, at in ((uv, header), (as_table(uv.get("pip")), _join(table, "pip"))):
        for key, kind in UV_SOURCES.items():
            values = settings.get(key, [])
            for url in [values] if isinstance(values, str) else values:
                if kind != "index" or not is_default_index(str(url), indexes):
                    place = f"[{at}] {key}" if at else key
                    origin = Origin(kind, str(url))
                    reader.source(at, place, f"{key} = {url}", origin, key)
    named: dict[str, str] = {}
    for entry in uv.get("index", []) if isinstance(uv.get("index"), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            named[str(entry.get("name", ""))] = entry["url"]
            if not is_default_index(entry["url"], indexes):
                place = f"[[{_join(table, 'index')}]] {entry.get('name', '')}"
                text = f"{entry.get('name', '')} = {entry['url']}"
                origin = Origin("index", entry["url"])
                reader.source(_join(table, "index"), place, text, origin)
    where = reader.where(_join(table, "sources"), f"[{_join(table, 'sources')}]")
    cursor = where.line
    for name, value in as_table(uv.get("sources")).items():
        line = reader.lines.key(name, cursor)
        cursor = line or cursor
        for item in value if isinstance(value, list) else [value]:
            found = table_origin(name, as_table(item), where.at(line), named, indexes)
            if isinstance(found, Problem):
                reader.parsed.add(found)
            elif found is not None:
                text = reader.lines.lines[line - 1].strip() if line else f"{name} = {item}"
                place = f"{reader.path} [{_join(table, 'sources')}] {name}"
                reader.parsed.sources.append(Source(reader.path, line, text, place, found, name))


def _join(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key


def parse_uv_toml(source: str, path: str, indexes: Collection[str]) -> Parsed:
    """A project's ``uv.toml``: the settings of ``[tool.uv]`` at the top level."""
    data, problem = load_toml(source, path)
    parsed = Parsed(problems=[problem] if problem else [])
    _uv(data, _Reader(path, Lines(source), parsed), indexes, "")
    return parsed
