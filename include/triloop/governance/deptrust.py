"""Dependency trust: every requirement a PR adds or changes, checked on the host.

Reads the requirement files of the base and merged checkouts as text (no repository code runs)
and asks the policy's package index about each added or changed requirement. Rule ids:

- ``deptrust.unparsable``: a line the PR adds that cannot be vetted (does not parse, an option
  pip does not read, a path out of the repository; triloop.governance.deptrust_lines);
- ``deptrust.typosquat``: the name imitates a popular or already-used one (domain.typosquat);
- ``deptrust.unpinned``: not an ``==`` pin; ``deptrust.semver``: a pin moved to another major;
- ``deptrust.unknown-package`` / ``deptrust.unknown-version`` / ``deptrust.yanked``: the index
  does not have it (or only yanked files of that version);
- ``deptrust.too-new``: the pinned release was uploaded less than ``min_release_age_days`` ago;
  ``deptrust.release-age-unknown``: the index gave no upload time (PEP 700 ``upload-time`` comes
  with the PEP 691 JSON page: over http(s) it is asked for first; a file:// index is a directory
  of ``<project>/index.json`` pages, or ``<project>/index.html`` pages without upload times).

Reproduce: ``TRILOOP_POLICY_PATH=<policy> python -m triloop.governance.deptrust BASE MERGED``.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from triloop.discovery.dependencies import Dependency, DependencyError
from triloop.discovery.simple_index import IndexFile, IndexPageError, parse_project_json
from triloop.discovery.simple_index import parse_project_page as parse_project_html
from triloop.domain.contracts import CheckResult, ReviewRequest
from triloop.domain.dependency_trust_policy import DependencyTrustPolicy
from triloop.domain.policy import Policy
from triloop.domain.typosquat import known_names, typosquat_of
from triloop.governance.deptrust_lines import read_tree

if TYPE_CHECKING:
    from triloop.bootstrap import App

CHECK_ID = "dependency-trust"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2"
MAX_PAGE_BYTES = 64 * 1024 * 1024


class IndexUnavailable(RuntimeError):
    """The package index could not be asked (unreachable, HTTP error, unreadable file)."""


def popular_names() -> list[str]:
    """The shipped list of the most downloaded PyPI projects, most downloaded first."""
    text = resources.files("triloop").joinpath("data/popular-pypi-names.txt").read_text("utf-8")
    return known_names(text.splitlines())


def changed_requirements(base: list[Dependency], merged: list[Dependency]) -> list[Dependency]:
    """Merged requirements whose name is new, or whose specifier the base never declared."""
    declared = {(d.name, str(d.specifier)) for d in base}
    return [d for d in merged if (d.name, str(d.specifier)) not in declared]


def index_files(index: str, project: str, timeout: float) -> list[IndexFile] | None:
    """The project's files on the index (JSON page preferred); None if it has no such project."""
    url = f"{index.rstrip('/')}/{project}/"
    if urlsplit(url).scheme == "file":
        folder = Path(url2pathname(urlsplit(url).path))
        for page, parse in (("index.json", parse_project_json), ("index.html", parse_project_html)):
            try:
                body = (folder / page).read_bytes()[:MAX_PAGE_BYTES]
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise IndexUnavailable(
                    f"index page {folder / page} is not readable: {exc}"
                ) from exc
            return parse(body, project, str(folder / page))
        return None
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body, kind = response.read(MAX_PAGE_BYTES), response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise IndexUnavailable(f"index page {url}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise IndexUnavailable(f"index page {url} is unreachable: {exc}") from exc
    json_page = kind.endswith("json")
    return (parse_project_json if json_page else parse_project_html)(body, project, url)


def assess(
    dep: Dependency,
    base: list[Dependency],
    known: list[str],
    files: list[IndexFile] | None,
    rules: DependencyTrustPolicy,
    now: datetime,
) -> list[tuple[str, str]]:
    """(rule id, reason) for each way one added or changed requirement breaks the policy.

    ``files`` is None when no index is configured (existence and age are then not checked).
    """
    problems: list[tuple[str, str]] = []
    squat = typosquat_of(dep.name, known, rules.max_edit_distance)
    if squat is not None:
        problems.append(("deptrust.typosquat", f"looks like {squat.target!r} ({squat.how})"))
    pinned = dep.pinned
    if pinned is None:
        if rules.require_pins:
            problems.append(("deptrust.unpinned", f"{dep.specifier or 'any version'} is not =="))
    else:
        before = [d.pinned for d in base if d.name == dep.name and d.pinned is not None]
        jumps = [v for v in before if v is not None and v.major != pinned.major]
        if jumps and not rules.allow_major_upgrades:
            problems.append(("deptrust.semver", f"major version change from {jumps[0]}"))
    if files is None or squat is not None:
        return problems  # no index, or a typosquat: nothing about a lookalike is worth asking
    if not files:
        return [*problems, ("deptrust.unknown-package", "not on the package index")]
    if pinned is None:
        return problems
    release = [f for f in files if f.version == pinned]
    if not release:
        return [*problems, ("deptrust.unknown-version", f"{pinned} is not on the index")]
    if all(f.yanked for f in release):
        problems.append(("deptrust.yanked", f"every file of {pinned} is yanked"))
    if rules.min_release_age_days > 0:
        stamps = [f.upload_time for f in release if f.upload_time is not None]
        if not stamps:
            problems.append(("deptrust.release-age-unknown", "the index gives no upload-time"))
        elif now - min(stamps) < timedelta(days=rules.min_release_age_days):
            age = (now - min(stamps)).total_seconds() / 86400
            minimum = rules.min_release_age_days
            problems.append(("deptrust.too-new", f"uploaded {age:.1f} days ago (< {minimum:g})"))
    return problems


def dependency_trust(
    base: Path,
    merged: Path,
    policy: Policy,
    *,
    policy_path: Path | None = None,
    now: datetime | None = None,
) -> CheckResult:
    """The ``dependency-trust`` evidence for the change from ``base`` to ``merged``."""
    start = time.monotonic()
    prefix = f"TRILOOP_POLICY_PATH={policy_path} " if policy_path else ""
    command = f"{prefix}python -m triloop.governance.deptrust {base} {merged}"
    rules = policy.dependency_trust
    index = rules.package_index or policy.host_scanners.package_index
    lines: list[str] = []
    rule_ids: set[str] = set()
    try:
        before, broken = read_tree(base)
        after, unreadable = read_tree(merged)
        known_bad = {(b.path, b.text) for b in broken}  # the base's: not this PR's to fix
        for bad in (b for b in unreadable if (b.path, b.text) not in known_bad):
            rule_ids.add("deptrust.unparsable")
            lines.append(f"{bad.path}:{bad.line}: {bad.text}: deptrust.unparsable: {bad.why}")
        changed = changed_requirements(before, after)
        known = known_names(
            rules.allowed_names,
            popular_names(),
            rules.extra_popular_names,
            (d.name for d in before),
        )
        for dep in changed:
            files = None
            if index is not None:
                files = index_files(index, dep.name, policy.host_scanners.index_timeout_s) or []
            for rule, why in assess(dep, before, known, files, rules, now or datetime.now(UTC)):
                rule_ids.add(rule)
                lines.append(f"{dep.path}:{dep.line}: {dep.text}: {rule}: {why}")
    except (DependencyError, IndexPageError, IndexUnavailable) as exc:
        return CheckResult(
            check_id=CHECK_ID,
            status="error",
            command=command,
            excerpt=str(exc),
            duration_s=round(time.monotonic() - start, 3),
        )
    summary = f"{len(changed)} added or changed requirement(s)"
    if index is None:
        summary += "; no package index configured: existence and release age not checked"
    return CheckResult(
        check_id=CHECK_ID,
        status="failed" if rule_ids else "passed",
        command=command,
        excerpt="\n".join([summary, *lines]),
        rule_ids=sorted(rule_ids),
        duration_s=round(time.monotonic() - start, 3),
    )


def trust_checks(app: App, review: ReviewRequest) -> list[CheckResult]:
    """Governance's call: the check on the review's host checkouts, if the policy enables it."""
    if not app.policy.dependency_trust.enabled:
        return []
    base, merged = Path(review.base_workspace), Path(review.merged_workspace)
    return [dependency_trust(base, merged, app.policy, policy_path=app.settings.policy_path)]


def main(argv: list[str] | None = None) -> int:
    """Rerun the check on two checkouts (policy: TRILOOP_POLICY_PATH); exit 1 unless passed."""
    from triloop.config import load_settings
    from triloop.domain.policy import load_policy

    parser = argparse.ArgumentParser(prog="python -m triloop.governance.deptrust")
    parser.add_argument("base", type=Path, help="checkout of the base branch")
    parser.add_argument("merged", type=Path, help="checkout of the PR merged into the base")
    args = parser.parse_args(argv)
    settings = load_settings()
    result = dependency_trust(
        args.base, args.merged, load_policy(settings.policy_path), policy_path=settings.policy_path
    )
    print(json.dumps(result.model_dump(mode="json"), indent=2))
    return 0 if result.status == "passed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
