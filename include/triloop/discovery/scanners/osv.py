"""Vulnerable dependencies: declared requirements against an OSV advisory database on disk.

The database is a directory (searched recursively for ``*.json``) or a ``.zip`` of OSV records,
e.g. osv.dev's PyPI export. Withdrawn advisories are ignored. A pin (``==V``) is checked at V.
A range is checked at the lowest version it allows (its floor: ``>=1.2,<2`` at 1.2), because
that is what it lets an install resolve to; the finding says the range is unpinned. A range
with no floor (a bare name, only ``<`` or ``!=``) is not checked: no version can be named.
One finding per (dependency, advisory): rule is the advisory id, group_key ``pypi:<package>``
so every advisory of a package becomes one upgrade ticket.
"""

from __future__ import annotations

import functools
import json
import logging
import zipfile
from collections import defaultdict
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from triloop.discovery.advisories import Advisory, AdvisoryError, parse_advisory
from triloop.discovery.dependencies import Dependency, DependencyError, declared_dependencies
from triloop.discovery.scanners.base import ScanContext, ScannerError
from triloop.domain.contracts import Finding
from triloop.domain.fingerprint import finding_fingerprint

log = logging.getLogger(__name__)
NAME = "osv"
Database = dict[str, tuple[Advisory, ...]]  # package -> its advisories (withdrawn left out)


def range_floor(specifier: SpecifierSet) -> Version | None:
    """The lowest version ``specifier`` allows among its own bounds; None if it has no floor."""
    candidates: set[Version] = set()
    for spec in specifier:
        try:
            bound = Version(spec.version.removesuffix(".*"))
        except InvalidVersion:
            continue
        if spec.operator in (">=", "==", "~=", "==="):
            candidates.add(bound)
        elif spec.operator == ">":
            release = (*bound.release, 0, 0)[: max(3, len(bound.release))]
            candidates.add(Version(".".join(map(str, (*release[:-1], release[-1] + 1)))))
    allowed = [v for v in sorted(candidates) if specifier.contains(v, prereleases=True)]
    return allowed[0] if allowed else None


def load_database(path: Path) -> Database:
    """Every PyPI advisory under ``path``; cached while the file or directory is unchanged."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ScannerError(NAME, f"advisory database {path} is not readable: {exc}") from exc
    return _load(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _load(path: Path, _mtime: int, _size: int) -> Database:
    by_package: defaultdict[str, list[Advisory]] = defaultdict(list)
    count = 0
    for source, text in _records(path):
        try:
            advisory = parse_advisory(json.loads(text), source)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ScannerError(NAME, f"advisory file {source} is not valid JSON: {exc}") from exc
        except AdvisoryError as exc:
            raise ScannerError(NAME, str(exc)) from exc
        count += 1
        if advisory.withdrawn:
            continue
        for package in advisory.packages():
            by_package[package].append(advisory)
    log.info("advisory database %s: %d advisories, %d packages", path, count, len(by_package))
    return {name: tuple(items) for name, items in by_package.items()}


def _records(path: Path) -> list[tuple[str, bytes]]:
    try:
        if path.is_dir():
            return [(str(p), p.read_bytes()) for p in sorted(path.rglob("*.json")) if p.is_file()]
        with zipfile.ZipFile(path) as archive:
            names = sorted(n for n in archive.namelist() if n.endswith(".json"))
            return [(f"{path}:{n}", archive.read(n)) for n in names]
    except zipfile.BadZipFile as exc:
        raise ScannerError(NAME, f"advisory database {path} is not a directory or zip") from exc
    except OSError as exc:
        raise ScannerError(NAME, f"advisory database {path} is not readable: {exc}") from exc


def match(repo_id: str, deps: list[Dependency], database: Database) -> list[Finding]:
    """A finding per declared dependency an advisory affects."""
    findings: list[Finding] = []
    for dep in deps:
        advisories = database.get(dep.name, ())
        version = dep.pinned or range_floor(dep.specifier)
        if version is None:
            if advisories:
                log.info("repo %s: %s has no floor; its advisories are not checked", repo_id, dep)
            continue
        for adv in advisories:
            if adv.affects(dep.name, version):
                findings.append(_finding(repo_id, dep, version, adv))
    return findings


def _finding(repo_id: str, dep: Dependency, version: Version, adv: Advisory) -> Finding:
    fixed = adv.fixed_in(dep.name, version)
    pinned = dep.pinned is not None
    aliases = ", ".join(adv.aliases)
    where = f"{dep.name} {version}" if pinned else f"{dep.text} (unpinned; allows {version})"
    fix = f"fixed in {fixed[0]}" if fixed else "no fixed version yet"
    return Finding(
        tool="osv",
        rule=adv.id,
        path=dep.path,
        line=dep.line,
        message=f"{where}: {adv.id}{f' ({aliases})' if aliases else ''}: {adv.summary}; {fix}",
        severity=adv.severity,
        fixable=bool(fixed),
        symbol=dep.name,
        code=dep.text,
        fingerprint=finding_fingerprint(repo_id, adv.id, dep.path, dep.name, dep.text),
        group_key=f"pypi:{dep.name}",
        data={
            "package": dep.name,
            "installed": str(version),
            "pinned": pinned,
            "requirement": dep.text,
            "fixed": str(fixed[0]) if fixed else "",
            "aliases": aliases,
        },
    )


class OsvScanner:
    name = NAME

    def applies(self, ctx: ScanContext) -> bool:
        return ctx.policy.host_scanners.osv_database is not None

    def scan(self, ctx: ScanContext) -> list[Finding]:
        database = load_database(Path(str(ctx.policy.host_scanners.osv_database)))
        try:
            deps = declared_dependencies(ctx.checkout)
        except DependencyError as exc:
            raise ScannerError(NAME, str(exc)) from exc
        return match(ctx.repo_id, deps, database)


OSV = OsvScanner()
