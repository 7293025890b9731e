"""Config rules: a PR that configures a check, a build, the tests or CI goes to a human."""

from __future__ import annotations

import pytest
from triloop.domain.policy import Policy
from triloop.domain.risk_rules import DEFAULT_CONFIG_PATHS, RiskRules
from triloop.governance.config_risk import config_risks
from triloop.governance.risk import FileChange, classify

RULES = RiskRules()

CONFIG_FILES = [
    ".github/workflows/ci.yml",
    ".github/dependabot.yml",
    ".github/renovate.json5",
    "renovate.json",
    ".pre-commit-config.yaml",
    "Makefile",
    "sub/GNUmakefile",
    "justfile",
    "tox.ini",
    "noxfile.py",
    "setup.py",
    "MANIFEST.in",
    "hatch.toml",
    "ruff.toml",
    "pkg/.ruff.toml",
    "mypy.ini",
    ".flake8",
    ".pylintrc",
    ".coveragerc",
    "codecov.yml",
    ".bandit",
    ".semgrepignore",
    ".semgrep.yml",
    ".secrets.baseline",
    ".gitignore",
    "src/.gitignore",
    ".gitattributes",
    ".gitmodules",
    ".dockerignore",
    ".python-version",
    ".gitlab-ci.yml",
    ".devcontainer/devcontainer.json",
]


@pytest.mark.parametrize("path", CONFIG_FILES)
@pytest.mark.parametrize(
    ("before", "after", "state"),
    [("a\n", "b\n", "changed"), (None, "b\n", "added"), ("a\n", None, "deleted")],
)
def test_config_files_are_high_risk(
    path: str, before: str | None, after: str | None, state: str
) -> None:
    reasons = config_risks(path, before, after, RULES)
    assert any(
        r.startswith(f"config: {path} {state} (configures checks, builds or CI:") for r in reasons
    ), reasons


@pytest.mark.parametrize(
    "path", ["src/app.py", "docs/guide.md", "README.md", ".editorconfig", "requirements.txt"]
)
def test_other_files_are_not_config(path: str) -> None:
    assert config_risks(path, "a\n", "b\n", RULES) == []


def test_config_globs_come_from_the_policy() -> None:
    assert config_risks("Makefile", "a", "b", RiskRules(config_paths=[])) == []
    custom = RiskRules(config_paths=["deploy/**"])
    assert config_risks("deploy/x.yml", "a", "b", custom) == [
        "config: deploy/x.yml changed (configures checks, builds or CI: deploy/**)"
    ]
    assert Policy().risk.config_paths == list(DEFAULT_CONFIG_PATHS)


PYPROJECT = """\
[project]
name = "app"
version = "1.0"
description = "An app"
dependencies = ["requests==2.0"]

[build-system]
requires = ["setuptools>=68"]

[tool.ruff]
line-length = 100

[tool.poetry]
version = "1.0"
packages = [{include = "app"}]

[tool.bumpversion]
current_version = "1.0"
"""

PYPROJECT_CASES = [
    # (id, replace this, with that, expected reasons)
    ("version bump", 'version = "1.0"\ndesc', 'version = "1.1"\ndesc', []),
    ("description", '"An app"', '"A better app"', []),
    ("dependency (the dependency rule's)", '"requests==2.0"', '"requests==2.1"', []),
    ("poetry version", '[tool.poetry]\nversion = "1.0"', '[tool.poetry]\nversion = "2.0"', []),
    ("bumpversion", 'current_version = "1.0"', 'current_version = "1.1"', []),
    (
        "ruff",
        "line-length = 100",
        "line-length = 200",
        ["config: pyproject.toml [tool.ruff] changed (line-length)"],
    ),
    (
        "new ruff table",
        "[tool.ruff]\n",
        '[tool.ruff.lint]\nignore = ["S"]\n[tool.ruff]\n',
        ["config: pyproject.toml [tool.ruff] changed (lint.ignore)"],
    ),
    (
        "coverage added",
        "[tool.ruff]",
        "[tool.coverage.run]\nomit = ['app/*']\n[tool.ruff]",
        ["config: pyproject.toml [tool.coverage] changed (run.omit)"],
    ),
    (
        "build-system",
        '"setuptools>=68"',
        '"setuptools>=68", "evil"',
        ["config: pyproject.toml [build-system] changed (requires)"],
    ),
    (
        "poetry packages",
        '{include = "app"}',
        '{include = "app"}, {include = "x"}',
        ["config: pyproject.toml [tool.poetry.packages] changed (tool.poetry.packages)"],
    ),
    (
        "pytest options",
        "[tool.ruff]",
        '[tool.pytest.ini_options]\naddopts = "-p evil"\n[tool.ruff]',
        ["tests-infra: pyproject.toml [tool.pytest.ini_options] changed (addopts)"],
    ),
    (
        "pytest11 entry point",
        "[build-system]",
        '[project.entry-points.pytest11]\nevil = "evil.plugin"\n[build-system]',
        ["tests-infra: pyproject.toml [project.entry-points.pytest11] changed (evil)"],
    ),
    (
        "poetry pytest11",
        "[tool.bumpversion]",
        '[tool.poetry.plugins.pytest11]\nevil = "evil"\n[tool.bumpversion]',
        ["tests-infra: pyproject.toml [tool.poetry.plugins] changed (pytest11.evil)"],
    ),
    (
        "flake8 plugin entry point",
        "[build-system]",
        '[project.entry-points."flake8.extension"]\nX = "x:X"\n[build-system]',
        ["config: pyproject.toml [project.entry-points.flake8.extension] changed (X)"],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [c[1:] for c in PYPROJECT_CASES],
    ids=[c[0] for c in PYPROJECT_CASES],
)
def test_pyproject_tables(old: str, new: str, expected: list[str]) -> None:
    assert old in PYPROJECT
    merged = PYPROJECT.replace(old, new, 1)
    assert config_risks("pyproject.toml", PYPROJECT, merged, RULES) == expected


def test_a_deleted_pyproject_changes_its_tables() -> None:
    reasons = config_risks("pyproject.toml", PYPROJECT, None, RULES)
    assert "config: pyproject.toml [tool.ruff] changed (line-length)" in reasons
    assert "config: pyproject.toml [build-system] changed (requires)" in reasons


SETUP_CFG = "[metadata]\nversion = 1.0\n\n[options]\ninstall_requires = requests\n\n[flake8]\n"
SETUP_CFG += "max-line-length = 100\n"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("version = 1.0", "version = 1.1", []),
        ("install_requires = requests", "install_requires = requests\n    flask", []),
        (
            "max-line-length = 100",
            "max-line-length = 200",
            ["config: setup.cfg [flake8] changed (max-line-length)"],
        ),
        (
            "[flake8]",
            "[tool:pytest]\naddopts = -p evil\n[flake8]",
            ["tests-infra: setup.cfg [tool:pytest] changed (addopts)"],
        ),
        (
            "[flake8]",
            "[options.entry_points]\npytest11 =\n    evil = evil\n[flake8]",
            ["tests-infra: setup.cfg [options.entry_points] changed (pytest11)"],
        ),
        (
            "[flake8]",
            "[options.package_data]\napp = *.so\n[flake8]",
            ["config: setup.cfg [options.package_data] changed (app)"],
        ),
    ],
)
def test_setup_cfg_sections(old: str, new: str, expected: list[str]) -> None:
    assert config_risks("setup.cfg", SETUP_CFG, SETUP_CFG.replace(old, new, 1), RULES) == expected


def test_tox_ini_pytest_section_is_tests_infra() -> None:
    before = "[tox]\nenvlist = py311\n"
    after = before + "[pytest]\naddopts = -p evil\n"
    assert config_risks("tox.ini", before, after, RULES) == [
        "config: tox.ini changed (configures checks, builds or CI: **/tox.ini)",
        "tests-infra: tox.ini [pytest] changed (addopts)",
    ]


@pytest.mark.parametrize(
    ("path", "text", "fragment"),
    [
        ("pyproject.toml", "[tool\n", "config: pyproject.toml does not parse"),
        ("setup.cfg", "no header = 1\n", "config: setup.cfg does not parse"),
        ("tox.ini", "[tox\n", "config: tox.ini does not parse"),
    ],
)
def test_config_that_does_not_parse_cannot_be_judged(path: str, text: str, fragment: str) -> None:
    reasons = config_risks(path, "", text, RULES)
    assert any(r.startswith(fragment) and "cannot be judged" in r for r in reasons), reasons


@pytest.mark.parametrize("path", ["conftest.py", "tests/conftest.py", "src/pkg/conftest.py"])
@pytest.mark.parametrize(
    ("before", "after", "state"),
    [("x = 1\n", "x = 2\n", "changed"), (None, "x = 1\n", "added"), ("x = 1\n", None, "deleted")],
)
def test_conftest_anywhere_is_tests_infra(
    path: str, before: str | None, after: str | None, state: str
) -> None:
    assert config_risks(path, before, after, RULES)[0] == (
        f"tests-infra: {path} {state} (fixtures, hooks and plugins of every test under it)"
    )


@pytest.mark.parametrize("path", ["pytest.ini", "sub/.pytest.ini"])
def test_pytest_ini_is_tests_infra(path: str) -> None:
    assert config_risks(path, None, "[pytest]\n", RULES) == [
        f"tests-infra: {path} added (pytest configuration)"
    ]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (
            "",
            "pytest_plugins = ['evil']\n",
            ["tests-infra: pytest_plugins set in tests/test_x.py:1"],
        ),
        ("x = 1\n", "x = 1\npytest_plugins: list[str] = ['evil']\n", ["test_x.py:2"]),
        ("x = 1\n", "x = 1\npytest_plugins += ['evil']\n", ["test_x.py:2"]),
        ("pytest_plugins = ['a']\n", "\n\npytest_plugins = ['a']\n", []),
        ("", "def test_add():\n    assert 1 + 1 == 2\n", []),
    ],
)
def test_pytest_plugins_assignments(before: str, after: str, expected: list[str]) -> None:
    reasons = config_risks("tests/test_x.py", before, after, RULES)
    assert len(reasons) == len(expected)
    for reason, fragment in zip(reasons, expected, strict=True):
        assert fragment in reason


@pytest.mark.parametrize(
    ("deps", "expected"),
    [
        (("pytest-randomly",), ["pytest-randomly"]),
        (("pytest_evil", "requests"), ["pytest_evil"]),
        (("pytest",), ["pytest"]),
        (("requests", "pytestify"), []),
        ((), []),
    ],
)
def test_pytest_plugin_requirements(deps: tuple[str, ...], expected: list[str]) -> None:
    reasons = config_risks("requirements-dev.txt", "a\n", "b\n", RULES, deps)
    assert reasons == [
        f"tests-infra: pytest plugin requirement {d} changed in requirements-dev.txt"
        for d in expected
    ]


def test_setup_py_pytest11_entry_point() -> None:
    before = "from setuptools import setup\nsetup(name='x')\n"
    after = "from setuptools import setup\nsetup(name='x', entry_points={'pytest11': ['e = e']})\n"
    reasons = config_risks("setup.py", before, after, RULES)
    assert "tests-infra: setup.py pytest11 entry point changed (registers a plugin)" in reasons
    assert reasons[0].startswith("config: setup.py changed")


@pytest.mark.parametrize("harness", ["autofix", "claude-code"])
@pytest.mark.parametrize("path", ["tests/test_x.py", "docs/guide.md", "src/app.py"])
def test_flagged_reasons_make_any_change_high(harness: str, path: str) -> None:
    flagged = ["content: process execution added in tests/test_x.py:3 (os.system)"]
    assessment = classify([FileChange(path, 1, 1)], harness, 0.95, RULES, flagged=flagged)
    assert assessment.tier == "high"
    assert assessment.reasons[0] == flagged[0]
    assert classify([FileChange(path, 1, 1)], harness, 0.95, RULES).tier != "high"
