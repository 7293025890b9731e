"""Risk tiers from a diff, and what each autonomy level lets through. Pure functions.

Every rule that raises the tier leaves a reason naming itself (``path``, ``size``,
``dependency``, ``harness``, ``confidence``) and what it saw, so the decision's evidence says
why a pull request waits for a human.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from triloop.domain.manifests import manifest_kind, parse_manifest
from triloop.domain.policy import DEFAULT_PROTECTED_PATHS, protected_match
from triloop.domain.risk_rules import RiskRules

Risk = Literal["low", "medium", "high"]
Outcome = Literal["auto_merge", "needs_human", "blocked"]
TIERS: tuple[Risk, ...] = ("low", "medium", "high")
AUTO_MERGE: dict[int, tuple[Risk, ...]] = {0: (), 1: (), 2: ("low",), 3: ("low", "medium")}


@dataclass(frozen=True)
class FileChange:
    """One changed file: its path, line counts and, for manifests, the dependencies it edits.

    ``dependencies`` is None when nobody looked (the path rule decides alone), else the names
    whose requirement was added, removed or changed (empty: the manifest changed elsewhere).
    """

    path: str
    added: int = 0
    removed: int = 0
    dependencies: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Assessment:
    tier: Risk
    reasons: list[str]


def _at_least(tier: Risk, floor: Risk) -> Risk:
    return TIERS[max(TIERS.index(tier), TIERS.index(floor))]


def _path_tier(
    change: FileChange, rules: RiskRules, protected: Sequence[str]
) -> tuple[Risk, str | None]:
    name = change.path
    if (glob := protected_match(name, protected)) is not None:
        return "high", f"path {name}: protected ({glob}), a human must review it"
    if protected_match(name, rules.dependency_files) is not None:
        if change.dependencies is None:
            return "high", f"dependency {name}: dependency file"
        if change.dependencies:
            return "high", f"dependency {name}: changes {', '.join(change.dependencies)}"
    if protected_match(name, rules.low_paths) is not None:
        return "low", None
    if (glob := protected_match(name, rules.security_paths)) is not None:
        return "high", f"path {name}: security-sensitive ({glob})"
    return "medium", None


def classify(
    changes: Sequence[FileChange],
    harness: str,
    confidence: float = 1.0,
    rules: RiskRules | None = None,
    protected: Sequence[str] = DEFAULT_PROTECTED_PATHS,
    flagged: Sequence[str] = (),
) -> Assessment:
    """The tier of a diff: the highest any path, size, harness or confidence rule gives it.

    ``flagged``: reasons found in the diff's content and configuration (``content:``,
    ``config:``, ``tests-infra:``, see diffrisk); each one makes the tier high, for any harness.
    """
    rules = rules or RiskRules()
    lines = sum(c.added + c.removed for c in changes)
    tier: Risk = "high" if flagged else "low"
    reasons: list[str] = list(flagged)
    sources = []
    for change in changes:
        path_tier, why = _path_tier(change, rules, protected)
        if why:
            tier = _at_least(tier, path_tier)
            reasons.append(why)
        elif path_tier == "medium":
            sources.append(change.path)
    if sources:
        shown = ", ".join(sources[:5]) + (" ..." if len(sources) > 5 else "")
        if harness == "autofix" and lines <= rules.autofix_low_lines:
            reasons.append(f"harness: deterministic autofix, {lines} changed lines ({shown})")
        else:
            tier = _at_least(tier, "medium")
            reasons.append(f"path: source change by {harness} ({shown})")
    if len(changes) > rules.high_files or lines > rules.high_lines:
        tier = "high"
        reasons.append(
            f"size: {len(changes)} files, {lines} lines (high over"
            f" {rules.high_files} files or {rules.high_lines} lines)"
        )
    elif len(changes) > rules.medium_files or lines > rules.medium_lines:
        tier = _at_least(tier, "medium")
        reasons.append(
            f"size: {len(changes)} files, {lines} lines (medium over"
            f" {rules.medium_files} files or {rules.medium_lines} lines)"
        )
    if harness != "autofix":
        if tier == "low":
            tier = "medium"
            reasons.append(f"harness: {harness} is an agent, never low risk")
        if confidence < rules.low_confidence and tier != "high":
            tier = _at_least(tier, TIERS[TIERS.index(tier) + 1])
            reasons.append(
                f"confidence: {confidence:.2f} below {rules.low_confidence:.2f} for an agent"
            )
    if tier == "low" and not reasons:
        reasons.append("path: only tests and docs change")
    return Assessment(tier, reasons)


def may_auto_merge(autonomy_level: int, risk: Risk) -> bool:
    return risk in AUTO_MERGE.get(autonomy_level, ())


def decide_outcome(
    autonomy_level: int,
    tier: Risk,
    failed: Sequence[str],
    confidence: float,
    rules: RiskRules | None = None,
    errored: Sequence[str] = (),
) -> tuple[Outcome, str]:
    """What governance does with a reviewed PR, and the one-line reason why.

    Any check not green blocks; level 0 only observes (the PR waits for a human, nothing merges
    by policy); auto-merge needs the tier allowed at this level and confidence above the gate.

    ``errored`` names the checks that could not give a verdict (status ``error``: a crashed
    sandbox, a tool that broke, output that does not parse). They block too: an unchecked PR
    never merges and is never put to a human. When they are all that blocks, the reason starts
    ``checks errored`` and :func:`retry_when_blocked` is true: the crash is not the change's
    fault, so the ticket goes back to ready (attempts bounded) instead of being closed.
    """
    rules = rules or RiskRules()
    if retry_when_blocked(failed, errored):
        return "blocked", (
            f"checks errored: {', '.join(sorted(set(errored)))} (no verdict on the change;"
            " the ticket goes back to ready)"
        )
    if failed:
        return "blocked", f"checks not green: {', '.join(failed)}"
    if autonomy_level == 0:
        return "needs_human", "autonomy level 0 observes: a human decides every PR"
    if not may_auto_merge(autonomy_level, tier):
        return "needs_human", f"{tier} risk needs a human at autonomy level {autonomy_level}"
    if confidence <= rules.auto_merge_min_confidence:
        return "needs_human", (
            f"confidence {confidence:.2f} not above {rules.auto_merge_min_confidence:.2f}:"
            " a human decides"
        )
    return "auto_merge", f"all checks green, {tier} risk, autonomy level {autonomy_level}"


def retry_when_blocked(failed: Sequence[str], errored: Sequence[str]) -> bool:
    """Blocked only by checks that errored: send the ticket back rather than close it.

    A check that failed is a verdict on the change (close it); one that errored is not.
    """
    return bool(failed) and set(failed) <= set(errored)


def dependency_edits(path: str, before: str, after: str) -> tuple[str, ...] | None:
    """Names whose requirement the change adds, removes or alters in one declaration file.

    Read by triloop.domain.manifests (every format it knows, lock files included); a source
    declaration with no package name (``--index-url``, ``-e .``) counts by its text, unreadable
    declarations as ``(<file> does not parse)``. None for a file it does not read: the path
    rule decides alone.
    """
    if manifest_kind(path) is None:
        return None
    old, new = _declared(path, before), _declared(path, after)
    return tuple(sorted(n for n in old.keys() | new.keys() if old.get(n) != new.get(n)))


def _declared(path: str, text: str) -> dict[str, set[object]]:
    parsed = parse_manifest(path, text)
    found: dict[str, set[object]] = {}
    for dep in parsed.dependencies:
        found.setdefault(dep.name, set()).add(dep.key)
    for source in (s for s in parsed.sources if not s.name):
        found.setdefault(source.text, set()).add(str(source.origin))
    if parsed.problems:
        found[f"({path.rsplit('/', 1)[-1]} does not parse)"] = {
            (p.text, p.why) for p in parsed.problems
        }
    return found
