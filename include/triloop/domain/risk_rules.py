"""Policy ``risk:``: how governance grades a pull request's diff and what may merge unasked.

The protected paths themselves (CI, containers, Triloop's policy) stay in ``patch.protected_paths``;
these rules add the other high-risk paths, the size thresholds and the confidence gate.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_SECURITY_PATHS = (
    "**/auth/**",
    "**/*auth*.py",
    "**/crypto/**",
    "**/*crypt*.py",
    "**/permissions/**",
    "**/*permission*.py",
    "**/security/**",
    "**/*secret*",
)
DEFAULT_DEPENDENCY_FILES = (
    "**/*requirements*.txt",
    "**/*requirements*.in",
    "**/requirements/**",
    "**/*constraints*.txt",
    "**/pyproject.toml",
    "**/setup.py",
    "**/setup.cfg",
    "**/Pipfile",
    "**/*.lock",
    "**/pylock*.toml",
)
DEFAULT_LOW_PATHS = (
    "tests/**",
    "test/**",
    "**/tests/**",
    "**/test_*.py",
    "**/*_test.py",
    "docs/**",
    "**/*.md",
    "**/*.rst",
)

# Files that configure a check, a build, the tests or CI: any change is high risk (``config:``).
# pyproject.toml and setup.cfg are judged by table/section instead (a version bump is not
# config), conftest.py and pytest's own settings always (``tests-infra:``).
DEFAULT_CONFIG_PATHS = (
    ".github/**",
    ".gitlab-ci.yml",
    ".gitlab/**",
    ".circleci/**",
    "**/Jenkinsfile",
    ".travis.yml",
    "azure-pipelines.yml",
    ".azure-pipelines/**",
    "bitbucket-pipelines.yml",
    ".buildkite/**",
    ".drone.yml",
    "appveyor.yml",
    ".woodpecker.yml",
    ".woodpecker/**",
    "**/.pre-commit-config.yaml",
    "**/.pre-commit-hooks.yaml",
    "**/Makefile",
    "**/makefile",
    "**/GNUmakefile",
    "**/*.mk",
    "**/justfile",
    "**/Justfile",
    "**/.justfile",
    "**/tox.ini",
    "**/noxfile.py",
    "**/setup.py",
    "**/MANIFEST.in",
    "**/hatch.toml",
    "**/ruff.toml",
    "**/.ruff.toml",
    "**/mypy.ini",
    "**/.mypy.ini",
    "**/.flake8",
    "**/.pylintrc",
    "**/pylintrc",
    "**/.isort.cfg",
    "**/.pydocstyle",
    "**/.pydocstyle.ini",
    "**/.pycodestyle",
    "**/pyrightconfig.json",
    "**/.coveragerc",
    "**/.codecov.yml",
    "**/codecov.yml",
    "**/.bandit",
    "**/.semgrepignore",
    "**/.semgrep.yml",
    "**/.semgrep.yaml",
    "**/.semgrep/**",
    "**/.secrets.baseline",
    "**/.gitleaks.toml",
    "**/.gitleaksignore",
    "**/.trivyignore",
    "**/.yamllint",
    "**/.yamllint.yml",
    "**/.yamllint.yaml",
    "**/.gitignore",
    "**/.ignore",
    "**/.gitattributes",
    "**/.gitmodules",
    "**/.dockerignore",
    "**/renovate.json",
    "**/renovate.json5",
    "**/.renovaterc",
    "**/.renovaterc.json",
    "**/.renovaterc.json5",
    "**/.python-version",
    "**/uv.toml",
    "**/poetry.toml",
    "**/pdm.toml",
    "**/.pdm.toml",
    "**/pip.conf",
    "**/pip.ini",
    "**/.readthedocs.yml",
    "**/.readthedocs.yaml",
    "**/.devcontainer/**",
)


class RiskRules(BaseModel):
    """Risk tiers from a diff (paths, size, dependencies, harness) and the auto-merge gate."""

    model_config = ConfigDict(extra="forbid")
    security_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SECURITY_PATHS),
        description="Globs of security-sensitive code (auth, crypto, permissions): high risk",
    )
    dependency_files: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DEPENDENCY_FILES),
        description="Globs of dependency manifests and lock files: high risk (a pyproject.toml"
        " only when its dependency tables change)",
    )
    low_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LOW_PATHS),
        description="Globs of tests and docs: low risk; any other path is source (medium)",
    )
    config_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CONFIG_PATHS),
        description="Globs of files that configure a check, a build, the tests or CI (lint,"
        " type, test and coverage settings, ignore files, pre-commit, Makefile, tox, nox,"
        " setup.py, .gitattributes, .github/**): any change is high risk (pyproject.toml's"
        " [tool.*]/[build-system] tables and setup.cfg's sections are judged apart)",
    )
    autofix_low_lines: int = Field(
        default=40,
        ge=0,
        description="A deterministic autofix change of at most this many lines is low risk",
    )
    medium_lines: int = Field(
        default=200, ge=1, description="More changed lines (added plus removed): at least medium"
    )
    medium_files: int = Field(default=10, ge=1, description="More changed files: at least medium")
    high_lines: int = Field(default=500, ge=1, description="More changed lines: high risk")
    high_files: int = Field(default=25, ge=1, description="More changed files: high risk")
    low_confidence: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="A ticket confidence below this raises an agent's change one tier",
    )
    auto_merge_min_confidence: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Auto-merge also needs the ticket's confidence above this (and every check"
        " green, and the tier allowed by the repository's autonomy level)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RiskRules:
        if self.medium_lines > self.high_lines or self.medium_files > self.high_files:
            raise ValueError("risk thresholds: medium_lines/files must not exceed high_lines/files")
        return self
