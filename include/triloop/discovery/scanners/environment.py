"""An environment that cannot run the tests is one problem, not a ticket per test module.

When the repository's test run fails because its environment is incomplete (a dependency was
never installed, a generated module such as ``pkg/_version.py`` of hatch-vcs or setuptools-scm
does not exist without a build), every test module that imports it errors at collection. Those
errors say nothing about the code, and neither does a coverage report of a run that imported
nothing. So :func:`fold` replaces that run's pytest and coverage findings with one
``environment`` finding for the repository (rule ``environment-broken``, its message naming
the missing modules and how many test modules they broke), with a fingerprint that stays the
same from scan to scan: at most one ticket, which no harness takes (status says why).

An environment is judged broken when the collection errors are import errors (ModuleNotFoundError,
ImportError) and a missing module is not the repository's own code (a third-party package, or a
generated ``_version`` module), or one missing module breaks at least ``SHARED`` test modules. A
single test module importing a name its own repository lost stays a ``test-error`` ticket.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from triloop.domain.contracts import Finding
from triloop.domain.fingerprint import finding_fingerprint

RULE = "environment-broken"
SHARED = 2
_MISSING = re.compile(r"(?:ModuleNotFoundError|ImportError): (?:No module named|cannot import name)"
                      r" '([\w.]+)'")  # fmt: skip
_GENERATED = re.compile(r"(^|\.)_?version$")


def _missing(finding: Finding) -> str | None:
    """The module a collection error could not import, or None (not an import error)."""
    if finding.tool != "pytest" or finding.rule != "test-error" or finding.symbol != "<module>":
        return None
    match = _MISSING.search(finding.message)
    return match.group(1) if match else None


def _own(checkout: Path, module: str) -> bool:
    """Whether ``module`` is the repository's own code (its file or package is in the tree)."""
    parts = module.split(".")
    for root in (checkout, checkout / "src"):
        base = root.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def _outside(checkout: Path, module: str) -> bool:
    """Missing, but not a name the repository's own code lost: third party, or generated."""
    top = module.split(".")[0]
    if not _own(checkout, top):
        return True  # a package the environment should have installed
    return bool(_GENERATED.search(module)) and not _own(checkout, module)


def fold(repo_id: str, checkout: Path, findings: Sequence[Finding]) -> list[Finding]:
    """``findings`` with a broken environment's pytest and coverage findings folded into one."""
    missing = Counter(m for f in findings if (m := _missing(f)) is not None)
    broken = sorted(m for m, n in missing.items() if n >= SHARED or _outside(checkout, m))
    if not broken:
        return list(findings)
    kept = [f for f in findings if f.tool not in ("pytest", "coverage")]
    modules = sum(missing[m] for m in broken)
    shown = ", ".join(broken[:5]) + (" ..." if len(broken) > 5 else "")
    problem = Finding(
        tool="environment",
        rule=RULE,
        path=".",
        line=0,
        message=(
            f"the test environment is incomplete: {shown} cannot be imported, so {modules} test"
            " module(s) could not be collected; no test or coverage ticket comes from this run"
        ),
        severity="high",
        symbol="",
        fingerprint=finding_fingerprint(repo_id, RULE, ".", "", ""),
        data={"missing_modules": ", ".join(broken), "test_modules": modules},
    )
    return [*kept, problem]
