"""Policy for the scanners that run in the sandbox: tests, coverage, licenses, and the lint
rule set of a repository with no ruff configuration (``code_scans`` in the policy file).
Defaults keep discovery quiet: failing tests are always findings, coverage gaps are capped, and
an empty deny list finds no license problem."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_TEST_GLOBS = [
    "tests/*",
    "*/tests/*",
    "test_*.py",
    "*/test_*.py",
    "*_test.py",
    "conftest.py",
]


class TestScanRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    __test__ = False  # not a pytest test class
    enabled: bool = Field(default=True, description="Failing tests become findings")


class CoverageRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="Coverage gaps become findings")
    top_n: int = Field(default=5, ge=0, description="Most findings one scan reports (worst first)")
    max_percent: float = Field(
        default=80.0, ge=0, le=100, description="Files covered at least this much are no gap"
    )
    min_missing: int = Field(
        default=5, ge=1, description="Uncovered statements a file needs before it is a gap"
    )
    churn_window_days: int = Field(
        default=90, ge=1, description="How far back git log counts a file's recent commits"
    )
    churn_weight: float = Field(
        default=0.5,
        ge=0,
        description="Score = missing statements x (1 + churn_weight x commits in the window)",
    )
    omit: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TEST_GLOBS),
        description="fnmatch globs of files never reported (tests measure, they are not gaps)",
    )


DEFAULT_LINT_SELECT = ["E4", "E7", "E9", "F", "I", "UP", "W"]


class LintRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_select: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LINT_SELECT),
        min_length=1,
        description="Ruff rules (codes or prefixes) for a repository with no ruff configuration;"
        " one that configures ruff is scanned with its own configuration",
    )

    @field_validator("default_select")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not code.isascii() or not code.isalnum() or not code[:1].isalpha():
                raise ValueError(f"{code!r} is not a ruff rule code or prefix (F, E4, UP032)")
        return codes


class LicenseRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deny: list[str] = Field(
        default_factory=list, description="SPDX ids (or globs) no dependency may be licensed under"
    )
    allow: list[str] = Field(
        default_factory=list,
        description="SPDX ids allowed; when set, anything else (unknown too) is a finding",
    )

    @field_validator("deny", "allow")
    @classmethod
    def _spdx_ids(cls, ids: list[str]) -> list[str]:
        for spdx in ids:
            if not spdx.strip() or " " in spdx.strip():
                raise ValueError(
                    f"{spdx!r} is not an SPDX license id or glob (GPL-3.0-only, GPL-*)"
                )
        return [spdx.strip() for spdx in ids]


class CodeScanPolicy(BaseModel):
    """``code_scans``: what the sandbox-run tests, coverage and licenses scanners report."""

    model_config = ConfigDict(extra="forbid")
    tests: TestScanRules = Field(default_factory=TestScanRules)
    coverage: CoverageRules = Field(default_factory=CoverageRules)
    licenses: LicenseRules = Field(default_factory=LicenseRules)
    lint: LintRules = Field(default_factory=LintRules)
