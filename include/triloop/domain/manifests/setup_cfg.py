"""setuptools' ``setup.cfg``: ``[options]`` ``install_requires``, ``setup_requires``,
``tests_require`` and ``dependency_links``, ``[options.extras_require]``, ``[easy_install]``
index and find-links. A ``file:`` value is followed like ``-r``.
"""

from __future__ import annotations

import configparser
from collections.abc import Collection

from triloop.domain.manifests.lines import Lines
from triloop.domain.manifests.model import Include, Origin, Parsed, Problem, Source, Where
from triloop.domain.manifests.pep508 import is_default_index, local_path, parse_pep508
from triloop.domain.manifests.setup_py import KEYWORDS


def parse_setup_cfg(source: str, path: str, indexes: Collection[str]) -> Parsed:
    parsed = Parsed()
    config = configparser.ConfigParser(interpolation=None, strict=False)
    config.optionxform = str  # type: ignore[assignment,method-assign]  # extras keep their case
    try:
        config.read_string(source, source=path)
    except configparser.Error as exc:
        line = getattr(exc, "lineno", 0) or next(iter(getattr(exc, "errors", [])), (0,))[0]
        return Parsed(problems=[Problem(path, line, "", f"not a valid setup.cfg: {exc}"[:500])])
    lines = Lines(source)
    folder = path.rpartition("/")[0]
    options = config["options"] if config.has_section("options") else {}
    start = lines.header("options")
    for key, (scope, section) in KEYWORDS.items():
        value = options.get(key, options.get(key.replace("_", "-")))
        if value is not None:
            place = f"{path} [options] {key}"
            where = Where(path, lines.key(key, start) or start, place, scope, section)
            _cfg_list(value, where, lines, folder, parsed)
    if config.has_section("options.extras_require"):
        start = lines.header("options.extras_require")
        for extra, value in config["options.extras_require"].items():
            place = f"{path} [options.extras_require] {extra}"
            where = Where(path, lines.key(extra, start) or start, place, "extra", extra)
            _cfg_list(value, where, lines, folder, parsed)
    for section, key, kind in (
        ("options", "dependency_links", "find-links"),
        ("easy_install", "index_url", "index"),
        ("easy_install", "find_links", "find-links"),
    ):
        if config.has_option(section, key):
            start = lines.header(section)
            for url in config.get(section, key).split():
                if kind == "index" and is_default_index(url, indexes):
                    continue
                line = lines.find(url, start)
                place = f"{path} [{section}] {key}"
                parsed.sources.append(Source(path, line, url, place, Origin(kind, url)))  # type: ignore[arg-type]
    return parsed


def _cfg_list(value: str, where: Where, lines: Lines, folder: str, parsed: Parsed) -> None:
    """setuptools' list: one entry a line, or ``;``-separated on one line, or ``file:``."""
    if value.strip().startswith("file:"):
        for name in value.strip()[5:].split(","):
            target = local_path(name.strip(), folder)
            if target is None:
                why = f"file {name.strip()!r} points outside the repository"
                parsed.add(where.problem(value, why, "outside"))
            else:
                parsed.includes.append(Include(where.path, where.line, target))
        return
    entries = value.splitlines() if "\n" in value else value.split(";")
    cursor = where.line
    for entry in (e.strip() for e in entries):
        if entry and not entry.startswith("#"):
            line = lines.find(entry, cursor)
            cursor = line or cursor
            parsed.add(parse_pep508(entry, where.at(line)))
