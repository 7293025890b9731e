"""Risk tiers from a diff (paths, size, dependencies, harness, confidence); what autonomy allows."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from triloop.domain.policy import DEFAULT_PROTECTED_PATHS, Policy
from triloop.domain.risk_rules import RiskRules
from triloop.governance.risk import (
    FileChange,
    classify,
    decide_outcome,
    dependency_edits,
    may_auto_merge,
)


def ch(path: str, lines: int = 2, deps: tuple[str, ...] | None = None) -> FileChange:
    return FileChange(path=path, added=lines // 2, removed=lines - lines // 2, dependencies=deps)


TABLE = [
    # (changes, harness, confidence, tier, reason fragments)
    ([ch("tests/test_x.py")], "autofix", 0.95, "low", ["path: only tests and docs"]),
    ([ch("docs/guide.md"), ch("README.md")], "claude-code", 0.9, "medium", ["harness: claude"]),
    ([ch("src/app.py", 10)], "autofix", 0.95, "low", ["harness: deterministic autofix, 10"]),
    ([ch("src/app.py", 41)], "autofix", 0.95, "medium", ["path: source change by autofix"]),
    ([ch("src/app.py", 10)], "claude-code", 0.9, "medium", ["path: source change by claude"]),
    ([ch("src/app.py", 10)], "claude-code", 0.1, "high", ["confidence: 0.10 below 0.30"]),
    (
        [ch(".github/workflows/ci.yml")],
        "autofix",
        0.95,
        "high",
        ["path .github/workflows/ci.yml: protected (.github/workflows/**)"],
    ),
    ([ch("include/policy/default.yaml")], "autofix", 0.95, "high", ["protected (include/policy"]),
    ([ch("app/auth/login.py")], "autofix", 0.95, "high", ["security-sensitive (**/auth/**)"]),
    ([ch("pkg/crypto_utils.py")], "autofix", 0.95, "high", ["security-sensitive (**/*crypt*.py)"]),
    ([ch("pkg/permissions.py")], "autofix", 0.95, "high", ["security-sensitive"]),
    ([ch("tests/auth/test_login.py")], "autofix", 0.95, "low", ["only tests and docs"]),
    ([ch("requirements.txt")], "autofix", 0.95, "high", ["dependency requirements.txt: depend"]),
    ([ch("requirements-dev.txt", deps=("reqeusts",))], "autofix", 0.95, "high", ["reqeusts"]),
    ([ch("poetry.lock")], "autofix", 0.95, "high", ["dependency poetry.lock"]),
    ([ch("pyproject.toml", deps=())], "autofix", 0.95, "low", ["deterministic autofix"]),
    ([ch("pyproject.toml", deps=("ruff",))], "autofix", 0.95, "high", ["changes ruff"]),
    ([ch(f"src/m{i}.py") for i in range(11)], "autofix", 0.95, "medium", ["size: 11 files"]),
    ([ch("src/big.py", 501)], "autofix", 0.95, "high", ["size: 1 files, 501 lines (high"]),
    ([ch("tests/test_big.py", 250)], "autofix", 0.95, "medium", ["size: 1 files, 250 lines"]),
]


@pytest.mark.parametrize(("changes", "harness", "confidence", "tier", "fragments"), TABLE)
def test_risk_tier_table(
    changes: list[FileChange], harness: str, confidence: float, tier: str, fragments: list[str]
) -> None:
    assessment = classify(changes, harness, confidence, RiskRules(), DEFAULT_PROTECTED_PATHS)
    assert assessment.tier == tier
    text = "\n".join(assessment.reasons)
    for fragment in fragments:
        assert fragment in text


def test_every_high_rule_is_named_in_the_reasons() -> None:
    changes = [ch(".github/workflows/ci.yml"), ch("app/auth/x.py"), ch("requirements.txt")]
    reasons = classify(changes, "autofix", 0.95).reasons
    assert [r.split(" ", 1)[0] for r in reasons] == ["path", "path", "dependency"]


def test_risk_rules_come_from_the_policy() -> None:
    rules = RiskRules(security_paths=["src/**"], low_paths=[], autofix_low_lines=0)
    assert classify([ch("src/app.py")], "autofix", 0.95, rules).tier == "high"
    assert classify([ch("docs/x.md")], "autofix", 0.95, rules).tier == "medium"
    assert classify([ch("include/policy/x.yaml")], "autofix", 0.95, rules, []).tier == "medium"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"medium_lines": 600}, "medium_lines/files must not exceed"),
        ({"auto_merge_min_confidence": 1.5}, "less than or equal to 1"),
        ({"high_files": 0}, "greater than or equal to 1"),
        ({"unknown": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_risk_rules_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Policy.model_validate({"risk": fields})


@pytest.mark.parametrize(
    ("path", "before", "after", "edits"),
    [
        (
            "requirements.txt",
            "requests==2.31.0\n",
            "requests==2.31.0\nreqeusts==1.0\n",
            ("reqeusts",),
        ),
        ("requirements.txt", "Flask==2.0 # web\n", "flask==2.0\n", ()),
        ("requirements.txt", "attrs==22.1\n", "attrs==23.1\n", ("attrs",)),
        (
            "pyproject.toml",
            '[project]\nname = "a"\ndependencies = ["click>=8"]\n',
            '[project]\nname = "b"\ndependencies = ["click>=8"]\n',
            (),
        ),
        (
            "pyproject.toml",
            '[project]\ndependencies = ["click>=8"]\n',
            '[project]\ndependencies = ["click>=8", "rich"]\n',
            ("rich",),
        ),
        (
            "sub/pyproject.toml",
            "[tool.poetry.dependencies]\npython = '^3.11'\n",
            "[tool.poetry.dependencies]\npython = '^3.11'\nhttpx = '^0.27'\n",
            ("httpx",),
        ),
        ("pyproject.toml", "[project\n", "[project]\n", ("(pyproject.toml does not parse)",)),
        (  # lock files are read too: a relock names what it moves
            "poetry.lock",
            '[[package]]\nname = "idna"\nversion = "3.6"\n',
            '[[package]]\nname = "idna"\nversion = "3.7"\n',
            ("idna",),
        ),
        ("setup.py", "", 'setup(install_requires=["six==1.17.0"])\n', ("six",)),
        (
            "requirements-dev.txt",
            "",
            "--index-url https://x.invalid/simple\n",
            ("--index-url https://x.invalid/simple",),
        ),
        ("yarn.lock", "a", "b", None),  # not a Python declaration: the path rule decides
    ],
)
def test_dependency_edits(
    path: str, before: str, after: str, edits: tuple[str, ...] | None
) -> None:
    assert dependency_edits(path, before, after) == edits


AUTONOMY = [
    # (level, tier, failed, confidence, outcome, reason fragment)
    (0, "low", [], 0.95, "needs_human", "level 0 observes"),
    (1, "low", [], 0.95, "needs_human", "low risk needs a human at autonomy level 1"),
    (2, "low", [], 0.95, "auto_merge", "all checks green, low risk"),
    (2, "medium", [], 0.95, "needs_human", "medium risk needs a human at autonomy level 2"),
    (3, "medium", [], 0.95, "auto_merge", "all checks green, medium risk, autonomy level 3"),
    (3, "high", [], 0.95, "needs_human", "high risk needs a human at autonomy level 3"),
    (3, "low", [], 0.5, "needs_human", "confidence 0.50 not above 0.50"),
    (3, "low", ["tests", "ruff"], 0.95, "blocked", "checks not green: tests, ruff"),
    (0, "high", ["tests"], 0.95, "blocked", "checks not green: tests"),
]


@pytest.mark.parametrize(("level", "tier", "failed", "confidence", "outcome", "why"), AUTONOMY)
def test_decision_per_autonomy_level(
    level: int, tier: str, failed: list[str], confidence: float, outcome: str, why: str
) -> None:
    got, reason = decide_outcome(level, tier, failed, confidence, RiskRules())  # type: ignore[arg-type]
    assert got == outcome
    assert why in reason


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_a_ci_config_change_waits_for_a_human_at_every_level(level: int) -> None:
    assessment = classify([ch(".github/workflows/ci.yml", 2)], "autofix", 0.99)
    assert assessment.tier == "high"
    assert decide_outcome(level, assessment.tier, [], 0.99)[0] == "needs_human"
    assert may_auto_merge(level, assessment.tier) is False
