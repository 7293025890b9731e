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
    "**/requirements*.txt",
    "**/requirements*.in",
    "**/requirements/**",
    "**/constraints*.txt",
    "**/pyproject.toml",
    "**/setup.py",
    "**/setup.cfg",
    "**/Pipfile",
    "**/*.lock",
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
