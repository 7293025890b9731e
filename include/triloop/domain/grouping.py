"""Root-cause grouping: which findings one ticket holds, and the ticket's derived key.

One strategy per kind of finding (:func:`strategy_for`), each a pure function:

- ``group_key``: findings a host scanner gave a root cause (an advisory's package, an error
  log's stack signature) are one ticket per (tool, group_key), across paths and rules.
- ``module``: rules the policy calls mechanical (``grouping.module_rules``, e.g. import sorting)
  are one ticket per (rule, package directory): one sweep fixes them all.
- ``rule_path`` (everything else): one ticket per (rule, file), the key every ruff and semgrep
  ticket has had since the first release, so a rescan finds the tickets it made before.

A group over the policy's ``grouping.max_findings_per_ticket`` is split deterministically: its
findings sorted by (path, fingerprint, line), cut into parts of at most the cap. Part 0 keeps
the group's key; part n gets the key with ``part-n`` added. Nothing random enters a key.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from triloop.domain.contracts import Finding
from triloop.domain.fingerprint import derived_key, ticket_key


class GroupingRules(BaseModel):
    """How findings become tickets (policy ``grouping:``)."""

    model_config = ConfigDict(extra="forbid")
    max_findings_per_ticket: int | None = Field(
        default=None,
        ge=1,
        description="Findings one ticket may hold; a larger group is split in parts (None: no cap)",
    )
    module_rules: list[str] = Field(
        default_factory=list,
        description="Mechanical rules grouped per package directory instead of per file",
    )


@dataclass(frozen=True)
class TicketGroup:
    """The findings one ticket holds, under the key its strategy derived."""

    key: str
    strategy: str
    path: str  # the file, the package directory, or the group's first path
    findings: tuple[Finding, ...]
    part: int = 0


Strategy = Callable[[str, list[Finding], GroupingRules], list[TicketGroup]]


def module_of(path: str) -> str:
    """A file's package directory (``.`` for the repository root)."""
    return posixpath.dirname(path) or "."


def _split(
    strategy: str,
    repo_id: str,
    key_parts: tuple[str, ...],
    base_key: str,
    path: str,
    items: Iterable[Finding],
    rules: GroupingRules,
) -> list[TicketGroup]:
    ordered = sorted(items, key=lambda f: (f.path, f.fingerprint, f.line, f.message))
    cap = rules.max_findings_per_ticket or len(ordered)
    parts = [ordered[i : i + cap] for i in range(0, len(ordered), cap)]
    return [
        TicketGroup(
            key=base_key if n == 0 else derived_key(strategy, repo_id, *key_parts, f"part-{n}"),
            strategy=strategy,
            path=path,
            findings=tuple(chunk),
            part=n,
        )
        for n, chunk in enumerate(parts)
    ]


def _bucket(
    findings: list[Finding], by: Callable[[Finding], tuple[str, str]]
) -> dict[tuple[str, str], list[Finding]]:
    buckets: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        buckets[by(finding)].append(finding)
    return buckets


def by_rule_path(repo_id: str, findings: list[Finding], rules: GroupingRules) -> list[TicketGroup]:
    """One rule in one file: fixed together, keyed as tickets have always been."""
    return [
        group
        for (rule, path), items in _bucket(findings, lambda f: (f.rule, f.path)).items()
        for group in _split(
            "rule_path", repo_id, (rule, path), ticket_key(repo_id, rule, path), path, items, rules
        )
    ]


def by_module(repo_id: str, findings: list[Finding], rules: GroupingRules) -> list[TicketGroup]:
    """A mechanical rule across one package directory: one sweep fixes it everywhere there."""
    return [
        group
        for (rule, module), items in _bucket(
            findings, lambda f: (f.rule, module_of(f.path))
        ).items()
        for group in _split(
            "module",
            repo_id,
            (rule, module),
            derived_key("module", repo_id, rule, module),
            module,
            items,
            rules,
        )
    ]


def by_group_key(repo_id: str, findings: list[Finding], rules: GroupingRules) -> list[TicketGroup]:
    """One root cause (package, stack signature) across paths, rules and releases."""
    groups = []
    for (tool, root), items in _bucket(findings, lambda f: (f.tool, f.group_key)).items():
        first = min(items, key=lambda f: (f.path, f.line))
        key = derived_key("group_key", repo_id, tool, root)
        groups += _split("group_key", repo_id, (tool, root), key, first.path, items, rules)
    return groups


STRATEGIES: dict[str, Strategy] = {
    "group_key": by_group_key,
    "module": by_module,
    "rule_path": by_rule_path,
}


def strategy_for(finding: Finding, rules: GroupingRules) -> str:
    if finding.group_key:
        return "group_key"
    if finding.rule in rules.module_rules:
        return "module"
    return "rule_path"


def group_findings(
    repo_id: str, findings: list[Finding], rules: GroupingRules
) -> list[TicketGroup]:
    """Every finding in exactly one group; groups sorted by key (a deterministic order)."""
    by_strategy: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_strategy[strategy_for(finding, rules)].append(finding)
    groups = [
        group
        for name, items in sorted(by_strategy.items())
        for group in STRATEGIES[name](repo_id, items, rules)
    ]
    return sorted(groups, key=lambda g: g.key)
