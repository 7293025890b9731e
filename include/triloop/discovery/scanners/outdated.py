"""Outdated pins: each ``==V`` requirement against the newest release on a PEP 503 simple index.

The index URL is the policy's ``host_scanners.package_index`` (https://, http:// or file://; a
file index is a directory with ``<project>/index.html`` pages). The newest release is the
highest final version with a file that is not yanked (PEP 592) and, if the policy names a
``python_version``, whose ``data-requires-python`` allows it. Ranges are not checked: a
resolver already takes the newest release they allow. A project the index does not have is
skipped (a private package); a page that is not HTML fails this scanner only. The rule is
``outdated-<gap>`` (major, minor, patch), so bumps of one kind in one file are one ticket by
default; group_key ``pypi:<package>`` joins them with the package's advisories.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from packaging.version import InvalidVersion, Version

from triloop.discovery.dependencies import Dependency, DependencyError, declared_dependencies
from triloop.discovery.scanners.base import ScanContext, ScannerError
from triloop.discovery.simple_index import (
    IndexFile,
    IndexPageError,
    newest_release,
    parse_project_page,
    version_gap,
)
from triloop.domain.contracts import Finding, Severity
from triloop.domain.fingerprint import finding_fingerprint

log = logging.getLogger(__name__)
NAME = "outdated"
GAP_SEVERITY: dict[str, Severity] = {"major": "medium", "minor": "low", "patch": "info"}
MAX_PAGE_BYTES = 64 * 1024 * 1024
ACCEPT = "application/vnd.pypi.simple.v1+html, text/html;q=0.1"


def project_url(index: str, project: str) -> str:
    return f"{index.rstrip('/')}/{project}/"


def fetch_page(url: str, timeout: float) -> bytes | None:
    """The page at ``url``; None if the index has no such project (404, no file)."""
    split = urlsplit(url)
    if split.scheme == "file":
        path = Path(url2pathname(split.path))
        path = path / "index.html" if path.is_dir() else path
        try:
            return path.read_bytes()[:MAX_PAGE_BYTES]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ScannerError(NAME, f"index page {url} is not readable: {exc}") from exc
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_PAGE_BYTES)
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ScannerError(NAME, f"index page {url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ScannerError(NAME, f"index page {url} is unreachable: {exc}") from exc


def outdated_findings(
    repo_id: str,
    deps: list[Dependency],
    pages: dict[str, list[IndexFile] | None],
    gaps: list[str],
    python: Version | None = None,
) -> list[Finding]:
    """A finding per pin behind the newest release by a gap the policy reports."""
    findings: list[Finding] = []
    for dep in deps:
        pinned, files = dep.pinned, pages.get(dep.name)
        if pinned is None or not files:
            continue
        newest = newest_release(files, python)
        gap = version_gap(pinned, newest) if newest is not None else None
        if gap is None or gap not in gaps:
            continue
        rule = f"outdated-{gap}"
        findings.append(
            Finding(
                tool="outdated",
                rule=rule,
                path=dep.path,
                line=dep.line,
                message=f"{dep.name} {pinned} is pinned; {newest} is out ({gap} update)",
                severity=GAP_SEVERITY[gap],
                symbol=dep.name,
                code=dep.text,
                fingerprint=finding_fingerprint(repo_id, rule, dep.path, dep.name, dep.text),
                group_key=f"pypi:{dep.name}",
                data={
                    "package": dep.name,
                    "installed": str(pinned),
                    "latest": str(newest),
                    "gap": gap,
                },
            )
        )
    return findings


class OutdatedScanner:
    name = NAME

    def applies(self, ctx: ScanContext) -> bool:
        return ctx.policy.host_scanners.package_index is not None

    def scan(self, ctx: ScanContext) -> list[Finding]:
        rules = ctx.policy.host_scanners
        index = str(rules.package_index)
        try:
            deps = declared_dependencies(ctx.checkout)
            python = Version(rules.python_version) if rules.python_version else None
        except (DependencyError, InvalidVersion) as exc:
            raise ScannerError(NAME, str(exc)) from exc
        pages: dict[str, list[IndexFile] | None] = {}
        for name in sorted({d.name for d in deps if d.pinned is not None}):
            url = project_url(index, name)
            page = fetch_page(url, rules.index_timeout_s)
            if page is None:
                log.info("repo %s: %s is not on the index %s; skipped", ctx.repo_id, name, index)
                continue
            try:
                pages[name] = parse_project_page(page, name, url)
            except IndexPageError as exc:
                raise ScannerError(NAME, str(exc)) from exc
        return outdated_findings(ctx.repo_id, deps, pages, list(rules.outdated_gaps), python)


OUTDATED = OutdatedScanner()
