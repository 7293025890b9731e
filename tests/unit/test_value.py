"""The value function: each signal moves expected value as documented; weights come from policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from triloop.domain.contracts import Finding
from triloop.domain.policy import PolicyError, load_policy
from triloop.domain.value import ValueRules, score


def f(
    tool: str = "ruff",
    severity: str = "low",
    path: str = "a/x.py",
    fixable: bool = False,
    **data: float,
) -> Finding:
    return Finding.model_validate(
        {
            "tool": tool,
            "rule": "R",
            "path": path,
            "line": 1,
            "message": "m",
            "severity": severity,
            "fixable": fixable,
            "data": data,
        }
    )


RULES = ValueRules()


def test_figures_of_a_two_file_ruff_ticket() -> None:
    value = score([f(), f(path="a/y.py"), f(path="b/z.py")], RULES)
    assert (value.blast_files, value.blast_modules) == (3, 2)
    assert value.confidence == 0.95 and value.impact == 3.0
    assert value.effort == pytest.approx(1.0 + 0.5 * 2 + 0.1 * 2)
    assert value.expected_value == pytest.approx(0.95 * 3.0 / 2.2, abs=1e-6)


def test_each_signal_raises_impact_by_its_weight() -> None:
    base = score([f(tool="errorlog", severity="medium")], RULES)
    hot = score([f(tool="errorlog", severity="medium", rate_per_hour=12.0)], RULES)
    assert hot.impact - base.impact == pytest.approx(12.0)
    failing = score([f(tool="pytest", severity="medium")], RULES)
    assert failing.impact == pytest.approx(3.0 + 5.0)
    gap = score([f(tool="coverage", missing=30, statements=120)], RULES)
    assert gap.impact == pytest.approx(1.0 + 10.0 * 0.25)
    doubled = ValueRules.model_validate({"weights": {"coverage_gain": 20.0}})
    assert score([f(tool="coverage", missing=30, statements=120)], doubled).impact == (
        pytest.approx(1.0 + 20.0 * 0.25)
    )


def test_severity_confidence_and_effort_order_tickets() -> None:
    critical = score([f(tool="osv", severity="critical")], RULES)
    low = score([f(tool="osv", severity="low")], RULES)
    assert critical.expected_value > low.expected_value
    fixable = score([f(tool="semgrep", fixable=True)], RULES)
    unsure = score([f(tool="semgrep")], RULES)
    assert fixable.confidence == 0.95 > unsure.confidence == 0.7
    cheap = ValueRules(autofix_effort_factor=0.2)
    assert score([f()], cheap, autofix=True).expected_value == pytest.approx(
        5 * score([f()], cheap).expected_value
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -4.0, True])
def test_bad_scanner_figures_count_as_zero(bad: float) -> None:
    assert score([f(tool="errorlog", rate_per_hour=bad)], RULES).impact == 1.0


def test_a_ticket_without_findings_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one finding"):
        score([], RULES)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"weights": {"cycle_time": -1}}, "value.weights.cycle_time"),
        ({"effort_base": 0}, "value.effort_base"),
        ({"fixable_confidence": 2}, "value.fixable_confidence"),
        ({"weight": {}}, "value.weight"),
    ],
)
def test_bad_value_policy_names_the_field(tmp_path: Path, value: object, field: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"value": value}))
    with pytest.raises(PolicyError, match=f"field '{field}'"):
        load_policy(path)
