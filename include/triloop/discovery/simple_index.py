"""PEP 503 simple index project pages: the files a project has and the versions they carry.

Pure: takes the page's bytes, returns typed records. Each anchor is a file; its version comes
from the wheel or sdist filename. PEP 592 ``data-yanked``, ``data-requires-python`` and PEP 658
``data-core-metadata`` / ``data-dist-info-metadata`` are read where present. A page that is not
UTF-8 HTML raises :class:`IndexPageError`. The PEP 691 JSON form of a page
(:func:`parse_project_json`) also carries each file's PEP 700 ``upload-time``; HTML pages have none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version


class IndexPageError(ValueError):
    """An index page is not a PEP 503 HTML page."""


@dataclass(frozen=True)
class IndexFile:
    filename: str
    version: Version
    yanked: bool
    requires_python: SpecifierSet | None
    has_metadata: bool  # PEP 658: the core metadata is served beside the file
    upload_time: datetime | None = None  # PEP 700, JSON pages only (timezone-aware)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags = 0
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags += 1
        if tag == "a":
            self.anchors.append(dict(attrs))


def parse_project_page(page: bytes, project: str, where: str) -> list[IndexFile]:
    """The files of ``project`` (any spelling) listed on its simple page at ``where``."""
    try:
        text = page.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IndexPageError(f"index page {where} is not UTF-8 text: {exc}") from exc
    if "\x00" in text:
        raise IndexPageError(f"index page {where} holds binary data (NUL bytes)")
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    if parser.tags == 0:
        raise IndexPageError(f"index page {where} is not HTML: no tags in {text[:60]!r}")
    wanted = canonicalize_name(project)
    files = []
    for attrs in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        filename = unquote(urlsplit(href).path.rsplit("/", 1)[-1])
        parsed = _name_version(filename)
        if parsed is None or parsed[0] != wanted:
            continue
        files.append(
            IndexFile(
                filename=filename,
                version=parsed[1],
                yanked="data-yanked" in attrs,
                requires_python=_specifier(attrs.get("data-requires-python")),
                has_metadata=_metadata(attrs),
            )
        )
    return files


def parse_project_json(page: bytes, project: str, where: str) -> list[IndexFile]:
    """The files of ``project`` on its PEP 691 JSON page at ``where``, with upload times."""
    try:
        data = json.loads(page.decode("utf-8"))
        entries = data["files"]
        if not isinstance(entries, list):
            raise TypeError(f"files is a {type(entries).__name__}, not a list")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise IndexPageError(f"index page {where} is not PEP 691 JSON: {exc}") from exc
    wanted = canonicalize_name(project)
    files = []
    for entry in entries:
        filename = str(entry.get("filename", "")) if isinstance(entry, dict) else ""
        parsed = _name_version(filename)
        if parsed is None or parsed[0] != wanted:
            continue
        files.append(
            IndexFile(
                filename=filename,
                version=parsed[1],
                yanked=entry.get("yanked", False) not in (False, None),
                requires_python=_specifier(entry.get("requires-python")),
                has_metadata=entry.get("core-metadata", False) not in (False, None),
                upload_time=_timestamp(entry.get("upload-time"), where),
            )
        )
    return files


def _timestamp(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise IndexPageError(f"index page {where}: upload-time {value!r} is not ISO 8601") from exc
    if stamp.tzinfo is None:
        raise IndexPageError(f"index page {where}: upload-time {value!r} has no UTC offset")
    return stamp


def _name_version(filename: str) -> tuple[str, Version] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _specifier(value: str | None) -> SpecifierSet | None:
    try:
        return SpecifierSet(value) if value else None
    except InvalidSpecifier:
        return None  # an unreadable constraint excludes nothing


def _metadata(attrs: dict[str, str | None]) -> bool:
    value = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    return value is not None and value != "false"


def newest_release(files: list[IndexFile], python: Version | None = None) -> Version | None:
    """The newest final release with a file that is not yanked (and allows ``python``)."""
    usable = {
        f.version
        for f in files
        if not f.yanked
        and not f.version.is_prerelease
        and (python is None or f.requires_python is None or python in f.requires_python)
    }
    return max(usable, default=None)


def version_gap(pinned: Version, newest: Version) -> str | None:
    """``major``, ``minor`` or ``patch`` when ``newest`` is ahead of ``pinned``, else None."""
    if newest <= pinned:
        return None
    old, new = (*pinned.release, 0, 0), (*newest.release, 0, 0)
    if new[0] != old[0]:
        return "major"
    return "minor" if new[1] != old[1] else "patch"
