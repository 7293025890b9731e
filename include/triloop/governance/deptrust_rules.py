"""What dependency trust asks of each added or changed requirement: pure rules, no index access.

The index pages come from triloop.governance.deptrust, which runs these on both checkouts'
declarations (triloop.discovery.dependencies.read_declarations).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources

from triloop.discovery.dependencies import Dependency
from triloop.discovery.simple_index import IndexFile
from triloop.domain.dependency_trust_policy import DependencyTrustPolicy
from triloop.domain.manifests import Problem, Source
from triloop.domain.typosquat import known_names, typosquat_of


def popular_names() -> list[str]:
    """The shipped list of the most downloaded PyPI projects, most downloaded first."""
    text = resources.files("triloop").joinpath("data/popular-pypi-names.txt").read_text("utf-8")
    return known_names(text.splitlines())


def changed_requirements(base: list[Dependency], merged: list[Dependency]) -> list[Dependency]:
    """Merged requirements the base never declared (name, specifier, extras, marker, origin)."""
    declared = {d.key for d in base}
    return [d for d in merged if d.key not in declared]


def new_sources(base: list[Source], merged: list[Source]) -> tuple[list[Source], int]:
    """Merged sources pointing where no base declaration does, and how many the base had."""
    known = {(s.origin.kind, s.origin.target) for s in base}
    new = [s for s in merged if (s.origin.kind, s.origin.target) not in known]
    return new, len(merged) - len(new)


def new_problems(base: list[Problem], merged: list[Problem]) -> list[Problem]:
    """Merged problems the base did not have already (its own are not this PR's to fix)."""
    known = {(p.path, p.text, p.why) for p in base}
    return [p for p in merged if (p.path, p.text, p.why) not in known]


def assess(
    dep: Dependency,
    base: list[Dependency],
    names: Names,
    files: list[IndexFile] | None,
    rules: DependencyTrustPolicy,
    now: datetime,
) -> list[tuple[str, str]]:
    """(rule id, reason) for each way one added or changed requirement breaks the policy.

    ``files`` is None when no index is configured (existence and age are then not checked).
    """
    problems: list[tuple[str, str]] = []
    squat = typosquat_of(
        dep.name,
        names.known,
        rules.max_edit_distance,
        ranked=names.popular,
        trusted=names.trusted,
    )
    if squat is not None:
        problems.append(("deptrust.typosquat", f"looks like {squat.target!r} ({squat.how})"))
    if dep.origin is not None:
        return problems  # not an index release: deptrust.source names where it comes from
    pinned = dep.pinned
    if pinned is None:
        if rules.require_pins:
            problems.append(("deptrust.unpinned", f"{dep.specifier or 'any version'} is not =="))
    else:
        before = [d.pinned for d in base if d.name == dep.name and d.pinned is not None]
        jumps = [v for v in before if v is not None and v.major != pinned.major]
        if jumps and not rules.allow_major_upgrades:
            problems.append(("deptrust.semver", f"major version change from {jumps[0]}"))
    if files is None or squat is not None:
        return problems  # no index, or a typosquat: nothing about a lookalike is worth asking
    if not files:
        return [*problems, ("deptrust.unknown-package", "not on the package index")]
    if pinned is None:
        return problems
    release = [f for f in files if f.version == pinned]
    if not release:
        return [*problems, ("deptrust.unknown-version", f"{pinned} is not on the index")]
    if all(f.yanked for f in release):
        problems.append(("deptrust.yanked", f"every file of {pinned} is yanked"))
    if rules.min_release_age_days > 0:
        stamps = [f.upload_time for f in release if f.upload_time is not None]
        if not stamps:
            problems.append(("deptrust.release-age-unknown", "the index gives no upload-time"))
        elif now - min(stamps) < timedelta(days=rules.min_release_age_days):
            age = (now - min(stamps)).total_seconds() / 86400
            minimum = rules.min_release_age_days
            problems.append(("deptrust.too-new", f"uploaded {age:.1f} days ago (< {minimum:g})"))
    return problems


@dataclass(frozen=True)
class Names:
    """The names typosquats are measured against."""

    known: list[str]  # allowed, popular (most popular first), extra popular, the base's
    popular: list[str]  # the shipped list: its order is the relative-popularity ranking
    trusted: frozenset[str]  # allowed, extra popular and the base's: never typosquats

    @classmethod
    def of(cls, rules: DependencyTrustPolicy, base: list[Dependency]) -> Names:
        popular = popular_names()
        trusted = known_names(
            rules.allowed_names, rules.extra_popular_names, (d.name for d in base)
        )
        known = known_names(rules.allowed_names, popular, rules.extra_popular_names, trusted)
        return cls(known, popular, frozenset(trusted))
