"""Licenses: one Finding per installed dependency whose license the policy does not accept.

Reads pip-licenses' JSON (``[{"Name", "Version", "License"}]``) for the dependency set the
sandbox installed from the host's wheelhouse. Licenses are compared as SPDX ids (policy entries
may be fnmatch globs, case-insensitive: ``GPL-*``): trove
classifier names are mapped (``MIT License`` -> ``MIT``), several classifiers (``; ``) and
``OR`` are alternatives, ``AND`` needs every part. A dependency is a finding when every
alternative has a denied part (``license-denied``), or, with an allow list set, when no
alternative is entirely allowed (``license-not-allowed``; an unknown license included). The
path is the requirements file declaring it (the first one for a transitive dependency).
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch
from pathlib import Path

from triloop.discovery.dependencies import (
    Dependency,
    DependencyError,
    declared_dependencies,
    normalise_name,
)
from triloop.discovery.scanners.base import ScanContext, ScannerError
from triloop.discovery.scanners.sandbox_reports import SandboxReportScanner
from triloop.domain.code_scan_policy import LicenseRules
from triloop.domain.contracts import Finding
from triloop.domain.fingerprint import finding_fingerprint

CLASSIFIER_SPDX = {
    "mit license": "MIT",
    "mit": "MIT",
    "bsd license": "BSD-3-Clause",
    "apache software license": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "isc license (iscl)": "ISC",
    "python software foundation license": "PSF-2.0",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "gnu affero general public license v3": "AGPL-3.0-only",
    "gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    "the unlicense (unlicense)": "Unlicense",
    "eclipse public license 2.0 (epl-2.0)": "EPL-2.0",
    "zope public license": "ZPL-2.1",
    # Classifiers naming no version: a LicenseRef of the family (deny "LicenseRef-GPL" or "*GPL*")
    "gnu general public license (gpl)": "LicenseRef-GPL",
    "gnu library or lesser general public license (lgpl)": "LicenseRef-LGPL",
    "artistic license": "LicenseRef-Artistic",
}
UNKNOWN = ("", "unknown", "other/proprietary license")
_OR = re.compile(r"\s+OR\s+|;\s*")  # SPDX operators are upper case
_AND = re.compile(r"\s+AND\s+")


def _unwrap(text: str) -> str:
    text = text.strip()
    return text[1:-1].strip() if text.startswith("(") and text.endswith(")") else text


def _matches(spdx: str, patterns: list[str]) -> bool:
    return any(fnmatch(spdx.lower(), pattern.lower()) for pattern in patterns)


def spdx_alternatives(license_text: str) -> list[list[str]]:
    """``MIT License; Apache Software License`` -> [["MIT"], ["Apache-2.0"]]; [] if unknown."""
    alternatives = []
    for option in _OR.split(_unwrap(license_text)):
        parts = [_unwrap(p) for p in _AND.split(option)]
        ids = [CLASSIFIER_SPDX.get(p.lower(), p) for p in parts if p.lower() not in UNKNOWN]
        if ids:
            alternatives.append(ids)
    return alternatives


def verdict(license_text: str, rules: LicenseRules) -> str | None:
    """``license-denied``, ``license-not-allowed`` or None (accepted)."""
    alternatives = spdx_alternatives(license_text)
    if alternatives and all(any(_matches(p, rules.deny) for p in alt) for alt in alternatives):
        return "license-denied"
    allowed = any(all(_matches(p, rules.allow) for p in alt) for alt in alternatives)
    if rules.allow and not allowed:
        return "license-not-allowed"
    return None


class LicenseScanner(SandboxReportScanner):
    name = "licenses"
    report = "licenses.json"

    def enabled(self, ctx: ScanContext) -> bool:
        rules = ctx.policy.code_scans.licenses
        return bool(rules.deny or rules.allow)

    def parse(self, ctx: ScanContext, path: Path) -> list[Finding]:
        try:
            rows = json.loads(self.read(path))
        except ValueError as exc:
            raise self.fail(path, f"is not valid JSON: {exc}") from exc
        if not isinstance(rows, list):
            raise self.fail(path, "expected pip-licenses' JSON list of packages")
        try:
            declared = declared_dependencies(ctx.checkout)
        except DependencyError as exc:
            raise ScannerError(self.name, f"declared dependencies: {exc}") from exc
        where: dict[str, Dependency] = {}
        for declaration in reversed(declared):  # the first declaration wins
            where[declaration.name] = declaration
        fallback = declared[0].path if declared else "requirements.txt"
        rules = ctx.policy.code_scans.licenses
        findings = []
        for row in rows:
            if not isinstance(row, dict) or not all(
                isinstance(row.get(k), str) for k in ("Name", "Version", "License")
            ):
                raise self.fail(path, f"malformed package entry: {row!r}"[:300])
            rule = verdict(row["License"], rules)
            if rule is None:
                continue
            name = normalise_name(row["Name"])
            dep = where.get(name)
            file = dep.path if dep else fallback
            how = "" if dep else " (a transitive dependency)"
            license_text = row["License"] or "UNKNOWN"
            why = "denied by the policy" if rule == "license-denied" else "not on the allow list"
            findings.append(
                Finding(
                    tool="licenses",
                    rule=rule,
                    path=file,
                    line=dep.line if dep else 0,
                    message=f"{name} {row['Version']}{how} is licensed {license_text}: {why}",
                    severity="high" if rule == "license-denied" else "medium",
                    symbol=name,
                    code=dep.text if dep else "",
                    fingerprint=finding_fingerprint(ctx.repo_id, rule, file, name, ""),
                    group_key=f"license:{name}",
                    data={"package": name, "version": row["Version"], "license": row["License"]},
                )
            )
        return findings


LICENSES = LicenseScanner()
