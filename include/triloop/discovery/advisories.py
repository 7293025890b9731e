"""OSV advisories (https://ossf.github.io/osv-schema/) and their version ranges, for PyPI.

Pure: takes parsed JSON, returns typed records. An advisory whose shape is wrong raises
:class:`AdvisoryError` naming it and the field; a withdrawn one is parsed but marked, and the
scanner ignores it. Ranges of type ECOSYSTEM are evaluated as the schema's pseudo-code does,
with versions compared by ``packaging.version`` (PEP 440, so pre-releases sort before their
release); explicit ``versions`` lists match too. Other range types (GIT, SEMVER) are ignored
for PyPI, and a range naming a version that is not PEP 440 is skipped with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from triloop.discovery.cvss import cvss3_base_score, severity_for_score
from triloop.discovery.dependencies import normalise_name
from triloop.domain.contracts import Severity

log = logging.getLogger(__name__)
ECOSYSTEM = "PyPI"
_EVENT_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 1}
_DATABASE_SEVERITY: dict[str, Severity] = {
    "LOW": "low",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "HIGH": "high",
    "CRITICAL": "critical",
}
DEFAULT_SEVERITY: Severity = "medium"  # an advisory that rates itself nowhere


class AdvisoryError(ValueError):
    """An advisory is not in the OSV schema; the message names it and the field."""


Event = tuple[str, Version | None]  # (introduced | fixed | last_affected, version; None is "0")


@dataclass(frozen=True)
class Affected:
    package: str  # PEP 503 normalised
    ranges: tuple[tuple[Event, ...], ...]
    versions: frozenset[str]


@dataclass(frozen=True)
class Advisory:
    id: str
    summary: str
    aliases: tuple[str, ...]
    severity: Severity
    withdrawn: bool
    affected: tuple[Affected, ...]

    def packages(self) -> set[str]:
        return {a.package for a in self.affected}

    def affects(self, package: str, version: Version) -> bool:
        return any(
            any(in_range(version, r) for r in a.ranges) or _listed(version, a.versions)
            for a in self.affected
            if a.package == package
        )

    def fixed_in(self, package: str, version: Version) -> list[Version]:
        """The ``fixed`` versions above ``version`` that the advisory names, lowest first."""
        return sorted(
            {
                v
                for a in self.affected
                if a.package == package
                for r in a.ranges
                for kind, v in r
                if kind == "fixed" and v is not None and v > version
            }
        )


def in_range(version: Version, events: tuple[Event, ...]) -> bool:
    """OSV's ``includedInRange``: walk the sorted events, the last one passed decides."""
    vulnerable = False
    for kind, at in events:
        if kind == "introduced" and (at is None or version >= at):
            vulnerable = True
        elif at is not None and (version >= at if kind == "fixed" else version > at):
            vulnerable = False  # past a fix, or past the last affected version
    return vulnerable


def _listed(version: Version, versions: frozenset[str]) -> bool:
    for item in versions:
        try:
            if Version(item) == version:
                return True
        except InvalidVersion:
            continue
    return False


def parse_advisory(raw: Any, source: str) -> Advisory:
    """One OSV record; ``source`` (file or zip member) goes into every error."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise AdvisoryError(f"advisory {source}: not an OSV record (an object with an 'id')")
    adv_id = raw["id"]
    affected = raw.get("affected", [])
    if not isinstance(affected, list):
        raise AdvisoryError(f"advisory {source} ({adv_id}): 'affected' is not a list")
    return Advisory(
        id=adv_id,
        summary=_first_line(raw.get("summary") or raw.get("details")) or adv_id,
        aliases=tuple(str(a) for a in raw.get("aliases") or []),
        severity=advisory_severity(raw),
        withdrawn=bool(raw.get("withdrawn")),
        affected=tuple(
            a for item in affected if (a := _affected(item, f"{source} ({adv_id})")) is not None
        ),
    )


def _first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _affected(item: Any, where: str) -> Affected | None:
    try:
        package = item["package"]
        if package.get("ecosystem") != ECOSYSTEM:
            return None
        ranges = [r for r in item.get("ranges", []) if r["type"] == "ECOSYSTEM"]
        parsed = tuple(e for r in ranges if (e := _events(r["events"], where)) is not None)
        versions = frozenset(str(v) for v in item.get("versions", []))
        return Affected(normalise_name(package["name"]), parsed, versions)
    except (KeyError, TypeError, AttributeError) as exc:
        raise AdvisoryError(f"advisory {where}: malformed 'affected' entry: {exc!r}") from exc


def _events(events: list[dict[str, str]], where: str) -> tuple[Event, ...] | None:
    parsed: list[Event] = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event:
                text = str(event[kind])
                try:
                    parsed.append((kind, None if text == "0" else Version(text)))
                except InvalidVersion:
                    log.warning("advisory %s: skipping a range with version %r", where, text)
                    return None
    zero = Version("0")
    return tuple(sorted(parsed, key=lambda e: (e[1] or zero, _EVENT_ORDER[e[0]])))


def advisory_severity(raw: dict[str, Any]) -> Severity:
    """A CVSS v3 vector's rating, else the database's own word (GitHub's LOW..CRITICAL)."""
    for entry in raw.get("severity") or []:
        score = entry.get("score", "") if isinstance(entry, dict) else ""
        base = cvss3_base_score(str(score))
        if base is None:
            try:
                base = float(score)
            except ValueError:
                continue
        return severity_for_score(base)
    db = raw.get("database_specific")
    word = str(db.get("severity", "")).upper() if isinstance(db, dict) else ""
    return _DATABASE_SEVERITY.get(word, DEFAULT_SEVERITY)
