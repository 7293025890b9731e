"""Root-cause grouping: 200 findings of one rule become the tickets the design says."""

from __future__ import annotations

import random

import pytest
from triloop.domain.contracts import Finding
from triloop.domain.fingerprint import derived_key, ticket_key
from triloop.domain.grouping import GroupingRules, group_findings, module_of


def finding(path: str, n: int, rule: str = "F401", tool: str = "ruff", key: str = "") -> Finding:
    return Finding.model_validate(
        {
            "tool": tool,
            "rule": rule,
            "path": path,
            "line": n + 1,
            "message": f"`m{n}` imported but unused",
            "fingerprint": f"{path}:{n:04d}",
            "group_key": key,
        }
    )


ONE_FILE = [finding("pkg/a.py", n) for n in range(200)]
# 200 findings over 40 files in two packages (20 files each, 5 findings per file).
TWO_PACKAGES = [
    finding(f"{pkg}/m{f}.py", n) for pkg in ("p", "q") for f in range(20) for n in range(5)
]


def test_one_rule_in_one_file_without_a_cap_is_one_ticket_with_the_legacy_key() -> None:
    [group] = group_findings("r", ONE_FILE, GroupingRules())
    assert group.key == ticket_key("r", "F401", "pkg/a.py")
    assert (group.strategy, group.path, len(group.findings)) == ("rule_path", "pkg/a.py", 200)


def test_over_the_cap_is_split_deterministically_and_part_one_keeps_the_key() -> None:
    rules = GroupingRules(max_findings_per_ticket=50)
    groups = group_findings("r", ONE_FILE, rules)
    shuffled = random.Random(7).sample(ONE_FILE, len(ONE_FILE))
    assert [(g.key, g.findings) for g in group_findings("r", shuffled, rules)] == [
        (g.key, g.findings) for g in groups
    ]
    by_part = sorted(groups, key=lambda g: g.part)
    assert [len(g.findings) for g in by_part] == [50, 50, 50, 50]
    assert by_part[0].key == ticket_key("r", "F401", "pkg/a.py")
    assert [g.key for g in by_part[1:]] == [
        derived_key("rule_path", "r", "F401", "pkg/a.py", f"part-{n}") for n in (1, 2, 3)
    ]
    assert [f.fingerprint for g in by_part for f in g.findings] == sorted(
        f.fingerprint for f in ONE_FILE
    )


def test_per_file_by_default_per_package_for_a_mechanical_rule() -> None:
    per_file = group_findings("r", TWO_PACKAGES, GroupingRules())
    assert len(per_file) == 40 and {len(g.findings) for g in per_file} == {5}
    rules = GroupingRules(module_rules=["F401"], max_findings_per_ticket=60)
    per_module = group_findings("r", TWO_PACKAGES, rules)
    assert sorted((g.path, g.part, len(g.findings)) for g in per_module) == [
        ("p", 0, 60),
        ("p", 1, 40),
        ("q", 0, 60),
        ("q", 1, 40),
    ]
    assert {g.strategy for g in per_module} == {"module"}
    # A split never mixes packages and every finding is in exactly one ticket.
    assert all(len({module_of(f.path) for f in g.findings}) == 1 for g in per_module)
    assert sum(len(g.findings) for g in per_module) == 200


def test_a_group_key_groups_across_paths_and_rules() -> None:
    stack = [
        finding(f"svc{n % 4}/app.py", n, f"ZeroDivisionError@{n % 3}", "errorlog", "sig-1")
        for n in range(200)
    ]
    other = [finding("svc0/app.py", 1, "KeyError", "errorlog", "sig-2")]
    groups = group_findings("r", stack + other + ONE_FILE[:3], GroupingRules())
    assert sorted((g.strategy, len(g.findings)) for g in groups) == [
        ("group_key", 1),
        ("group_key", 200),
        ("rule_path", 3),
    ]
    big = next(g for g in groups if len(g.findings) == 200)
    assert big.key == derived_key("group_key", "r", "errorlog", "sig-1")
    assert big.path == "svc0/app.py"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"max_findings_per_ticket": 0}, "greater than or equal to 1"),
        ({"module_rules": "F401"}, "valid list"),
        ({"cap": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_grouping_rules_are_refused(rules: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GroupingRules.model_validate(rules)
