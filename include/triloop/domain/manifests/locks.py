"""Lock files: ``uv.lock``, ``poetry.lock`` and PEP 751 ``pylock.toml``; each package is a pin.

A locked package comes from the default index unless the lock says otherwise: another registry
or index, a VCS, a URL, a local directory or archive, or (``uv.lock``, ``pylock.toml``) a file
URL on a host that is not the index's. The project itself (``editable``/``virtual``/
``directory`` ``.``) is not a dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from triloop.domain.manifests.lines import Lines
from triloop.domain.manifests.model import (
    Origin,
    Parsed,
    Problem,
    Where,
)
from triloop.domain.manifests.pep508 import (
    DEFAULT_FILE_HOSTS,
    as_table,
    is_default_index,
    is_url,
    local_path,
    pinned_dependency,
    url_host,
)
from triloop.domain.manifests.pyproject import load_toml

SELF = Origin("path", ".")
OriginOf = Callable[[dict[str, Any], Where, Collection[str]], Origin | Problem | None]


def file_hosts(indexes: Collection[str]) -> set[str]:
    """Hosts a default index's files may come from."""
    hosts = {url_host(url) for url in indexes}
    return (hosts | DEFAULT_FILE_HOSTS) - {""}


def _files_origin(package: dict[str, Any], indexes: Collection[str]) -> Origin | None:
    """A file URL of the package on a host no default index serves files from."""
    entries = [package.get("sdist"), package.get("archive"), *_list(package.get("wheels"))]
    for entry in (e for e in entries if isinstance(e, dict)):
        url = entry.get("url")
        if isinstance(url, str) and url_host(url) not in file_hosts(indexes):
            return Origin("url", url)
        if isinstance(entry.get("path"), str):
            return Origin("path", entry["path"])
    return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _local(value: str, where: Where) -> Origin | Problem:
    if value in (".", "./", ""):
        return SELF
    target = local_path(value, where.path.rpartition("/")[0])
    if target is None:
        return where.problem(value, f"path {value!r} points outside the repository", "outside")
    return Origin("path", target)


def _uv_origin(
    package: dict[str, Any], where: Where, indexes: Collection[str]
) -> Origin | Problem | None:
    source = as_table(package.get("source"))
    for key in ("editable", "virtual", "directory", "path"):
        if isinstance(source.get(key), str):
            return _local(source[key], where)
    if isinstance(source.get("git"), str):
        return Origin("vcs", f"git+{source['git']}")
    if isinstance(source.get("url"), str):
        return Origin("url", source["url"])
    registry = source.get("registry")
    if isinstance(registry, str) and not is_url(registry):
        return _local(registry, where)
    if isinstance(registry, str) and not is_default_index(registry, indexes):
        return Origin("index", registry)
    return _files_origin(package, indexes)


def _poetry_origin(
    package: dict[str, Any], where: Where, indexes: Collection[str]
) -> Origin | Problem | None:
    source = as_table(package.get("source"))
    kind, url = source.get("type"), str(source.get("url", ""))
    if kind is None:
        return None
    if kind == "legacy":
        return None if is_default_index(url, indexes) else Origin("index", url)
    if kind == "git":
        ref = source.get("resolved_reference") or source.get("reference")
        return Origin("vcs", f"git+{url}" + (f"@{ref}" if ref else ""))
    if kind in ("directory", "file"):
        return _local(url, where)
    return Origin("url", url)


def _pylock_origin(
    package: dict[str, Any], where: Where, indexes: Collection[str]
) -> Origin | Problem | None:
    vcs = package.get("vcs")
    if isinstance(vcs, dict):
        commit = vcs.get("commit-id")
        url = vcs.get("url") or vcs.get("path")
        return Origin("vcs", f"{vcs.get('type', 'vcs')}+{url}" + (f"@{commit}" if commit else ""))
    directory = package.get("directory")
    if isinstance(directory, dict) and isinstance(directory.get("path"), str):
        return _local(directory["path"], where)
    index = package.get("index")
    if isinstance(index, str) and not is_default_index(index, indexes):
        return Origin("index", index)
    return _files_origin(package, indexes)


def _parse(
    source: str, path: str, indexes: Collection[str], table: str, origin_of: OriginOf
) -> Parsed:
    data, problem = load_toml(source, path)
    parsed = Parsed(problems=[problem] if problem else [])
    lines = Lines(source)
    headers = lines.headers(table)
    for number, package in enumerate(_list(data.get(table))):
        if not isinstance(package, dict) or not isinstance(package.get("name"), str):
            where = Where(path, headers[number] if number < len(headers) else 0, path)
            parsed.add(where.problem(str(package)[:200], f"[[{table}]] entry has no name"))
            continue
        name = package["name"]
        start = headers[number] if number < len(headers) else 0
        where = Where(path, lines.find(f'"{name}"', start) or start, f"{path} [[{table}]]", "lock")
        origin = origin_of(package, where, indexes)
        if isinstance(origin, Problem):
            parsed.add(origin)
        elif origin != SELF:
            version = package.get("version")
            parsed.add(pinned_dependency(name, str(version or ""), where, origin))
    return parsed


def parse_uv_lock(source: str, path: str, indexes: Collection[str]) -> Parsed:
    return _parse(source, path, indexes, "package", _uv_origin)


def parse_poetry_lock(source: str, path: str, indexes: Collection[str]) -> Parsed:
    return _parse(source, path, indexes, "package", _poetry_origin)


def parse_pylock(source: str, path: str, indexes: Collection[str]) -> Parsed:
    return _parse(source, path, indexes, "packages", _pylock_origin)
