"""Dependency trust: every requirement a PR adds or changes, checked on the host.

Reads every dependency declaration of the base and merged checkouts as text (requirements and
constraints files of any name, pyproject.toml, setup.cfg, setup.py through ``ast``, Pipfile and
the uv, poetry, Pipfile and pylock lock files: triloop.domain.manifests, read by
triloop.discovery.dependencies; no repository code runs) and asks the policy's package index
about each added or changed requirement. Rule ids:

- ``deptrust.unparsable``: a declaration the PR adds that cannot be vetted (does not parse, an
  option pip does not read, a path out of the repository, a setup.py value that is not a
  literal, a ``${VAR}`` expanded at install time);
- ``deptrust.source``: a declaration the PR adds that changes where packages come from (an
  index, find-links or trusted-host option or table other than the default index, a direct URL,
  a VCS reference, a local path, a lock entry from another index or host); the base's own are
  counted in the summary, not failed;
- ``deptrust.typosquat``: the name imitates a popular or already-used one, or is a popular name
  imitating a far more popular one (domain.typosquat);
- ``deptrust.unpinned``: not an ``==`` pin; ``deptrust.semver``: a pin moved to another major;
- ``deptrust.unknown-package`` / ``deptrust.unknown-version`` / ``deptrust.yanked``: the index
  does not have it (or only yanked files of that version);
- ``deptrust.too-new``: the pinned release was uploaded less than ``min_release_age_days`` ago;
  ``deptrust.release-age-unknown``: the index gave no upload time (PEP 700 ``upload-time`` comes
  with the PEP 691 JSON page: over http(s) it is asked for first; a file:// index is a directory
  of ``<project>/index.json`` pages, or ``<project>/index.html`` pages without upload times).

A requirement with a URL, VCS or path origin is vetted for its name only: the source rule says
the rest. Reproduce: ``TRILOOP_POLICY_PATH=<policy> python -m triloop.governance.deptrust BASE
MERGED``.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

from triloop.discovery.dependencies import read_declarations
from triloop.discovery.simple_index import IndexFile, IndexPageError, parse_project_json
from triloop.discovery.simple_index import parse_project_page as parse_project_html
from triloop.domain.contracts import CheckResult, ReviewRequest
from triloop.domain.policy import Policy
from triloop.governance.deptrust_rules import (
    Names,
    assess,
    changed_requirements,
    new_problems,
    new_sources,
    popular_names,
)

if TYPE_CHECKING:
    from triloop.bootstrap import App

__all__ = ["dependency_trust", "index_files", "popular_names", "trust_checks"]
CHECK_ID = "dependency-trust"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2"
MAX_PAGE_BYTES = 64 * 1024 * 1024


class IndexUnavailable(RuntimeError):
    """The package index could not be asked (unreachable, HTTP error, unreadable file)."""


def _in(place: str, path: str) -> str:
    """`` (in [table] key)`` when the place says more than the file."""
    rest = place.removeprefix(path).strip()
    return f" (in {rest})" if rest else ""


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
    trusted = (index,) if index else ()
    lines: list[str] = []
    rule_ids: set[str] = set()
    try:
        before = read_declarations(base, indexes=trusted)
        after = read_declarations(merged, indexes=trusted)
        for bad in new_problems(before.problems, after.problems):
            rule_ids.add("deptrust.unparsable")
            lines.append(f"{bad.path}:{bad.line}: {bad.text}: deptrust.unparsable: {bad.why}")
        added, kept = new_sources(before.sources, after.sources)
        for source in added:
            rule_ids.add("deptrust.source")
            why = f"changes where packages come from: {source.origin}"
            where = _in(source.place, source.path)
            lines.append(
                f"{source.path}:{source.line}: {source.text}: deptrust.source: {why}{where}"
            )
        changed = changed_requirements(before.dependencies, after.dependencies)
        names = Names.of(rules, before.dependencies)
        pages: dict[str, list[IndexFile]] = {}
        for dep in changed:
            files = None
            if index is not None and dep.origin is None:
                if dep.name not in pages:
                    timeout = policy.host_scanners.index_timeout_s
                    pages[dep.name] = index_files(index, dep.name, timeout) or []
                files = pages[dep.name]
            for rule, why in assess(
                dep, before.dependencies, names, files, rules, now or datetime.now(UTC)
            ):
                rule_ids.add(rule)
                where = _in(dep.place, dep.path)
                lines.append(f"{dep.path}:{dep.line}: {dep.text}: {rule}: {why}{where}")
    except (OSError, IndexPageError, IndexUnavailable) as exc:
        return CheckResult(
            check_id=CHECK_ID,
            status="error",
            command=command,
            excerpt=str(exc),
            duration_s=round(time.monotonic() - start, 3),
        )
    summary = f"{len(changed)} added or changed requirement(s)"
    summary += f"; {len(after.files)} declaration file(s) read"
    if kept:
        summary += f"; {kept} source declaration(s) already on the base, not this PR's"
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
