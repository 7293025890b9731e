"""Every scanner discovery runs, and running them so one bad input costs only its own findings."""

from __future__ import annotations

import logging

from triloop.discovery.scanners.base import ScanContext, Scanner, ScannerError
from triloop.discovery.scanners.coverage_gaps import COVERAGE
from triloop.discovery.scanners.environment import fold
from triloop.discovery.scanners.errorlog import ERRORLOG
from triloop.discovery.scanners.licenses import LICENSES
from triloop.discovery.scanners.osv import OSV
from triloop.discovery.scanners.outdated import OUTDATED
from triloop.discovery.scanners.pytest_junit import PYTEST
from triloop.discovery.scanners.sandbox_tools import RUFF, SEMGREP
from triloop.domain.contracts import Finding

log = logging.getLogger(__name__)

# Add a scanner here (one module each under triloop.discovery.scanners).
# Host-side scanners (osv, outdated, errorlog) read data on the host and run no repository code.
# Sandbox code scanners (pytest, coverage, licenses) parse what the sandbox's scan ran.
SCANNERS: tuple[Scanner, ...] = (
    RUFF,
    SEMGREP,
    PYTEST,
    COVERAGE,
    LICENSES,
    OSV,
    OUTDATED,
    ERRORLOG,
)


def run_scanners(
    ctx: ScanContext, scanners: tuple[Scanner, ...] = SCANNERS
) -> tuple[list[Finding], dict[str, str]]:
    """(findings of every scanner that worked, {scanner: error} for those that did not).

    A test run broken by its environment becomes one ``environment`` finding (see
    :mod:`triloop.discovery.scanners.environment`).
    """
    findings: list[Finding] = []
    failures: dict[str, str] = {}
    for scanner in scanners:
        if not scanner.applies(ctx):
            continue
        try:
            found = scanner.scan(ctx)
        except ScannerError as exc:
            log.error("repo %s: %s", ctx.repo_id, exc)
            failures[scanner.name] = str(exc)
            continue
        log.info("repo %s: %s found %d", ctx.repo_id, scanner.name, len(found))
        findings.extend(found)
    return fold(ctx.repo_id, ctx.checkout, findings), failures


__all__ = ["SCANNERS", "ScanContext", "Scanner", "ScannerError", "run_scanners"]
