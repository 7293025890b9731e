"""Risk from changes to what configures the gates: checks, builds, CI and the tests' machinery.

A pull request must not configure the checks that judge it, so each of these changes is high
risk and names its rule: ``config:`` for a file under ``risk.config_paths`` or a changed
``[tool.*]``/``[build-system]`` table of pyproject.toml (a ``[project]`` version bump is not
one), a changed setup.cfg section other than ``[metadata]``; ``tests-infra:`` for conftest.py,
pytest's configuration in any file, a ``pytest_plugins`` assignment, a pytest11 entry point, a
pytest plugin requirement. Pure: the caller reads both sides of the file.
"""

from __future__ import annotations

import ast
import configparser
import tomllib
from collections import Counter
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any

from triloop.domain.policy import protected_match
from triloop.domain.risk_rules import RiskRules
from triloop.governance.content_files import added_lines, kind

PYTEST_FILES = frozenset(("pytest.ini", ".pytest.ini"))
PYTEST_SECTIONS = frozenset(("pytest", "tool:pytest"))
# Release metadata and dependencies inside [tool.*] (the dependency rule judges the latter).
TOOL_METADATA = (
    *(f"poetry.{k}" for k in ("name", "version", "description", "readme", "license")),
    *(f"poetry.{k}" for k in ("authors", "maintainers", "keywords", "classifiers")),
    *(f"poetry.{k}" for k in ("homepage", "repository", "documentation", "urls.*")),
    "poetry.dependencies.*",
    "poetry.dev-dependencies.*",
    "poetry.group.*.dependencies.*",
    "bumpversion.current_version",
    "commitizen.version",
)
SETUP_CFG_METADATA = (
    "metadata.*",
    "options.install_requires",
    "options.python_requires",
    "options.extras_require.*",
)
_MISSING = object()


def config_risks(
    path: str,
    before: str | None,
    after: str | None,
    rules: RiskRules,
    dependencies: Sequence[str] | None = None,
) -> list[str]:
    """Reasons for ``path``'s change; ``before``/``after`` None where the file is absent."""
    name = PurePosixPath(path).name
    state = "added" if before is None else "deleted" if after is None else "changed"
    reasons = []
    if name == "conftest.py":
        reasons.append(
            f"tests-infra: {path} {state} (fixtures, hooks and plugins of every test under it)"
        )
    if name in PYTEST_FILES:
        reasons.append(f"tests-infra: {path} {state} (pytest configuration)")
    if (glob := protected_match(path, rules.config_paths)) is not None:
        reasons.append(f"config: {path} {state} (configures checks, builds or CI: {glob})")
    if name == "pyproject.toml":
        reasons += _pyproject(path, before, after)
    elif name in ("setup.cfg", "tox.ini"):
        reasons += _ini(path, before, after, name == "setup.cfg")
    if name == "setup.py" and any("pytest11" in line for line in _new_lines(before, after)):
        reasons.append(f"tests-infra: {path} pytest11 entry point changed (registers a plugin)")
    if kind(path, after) == "python" and after is not None:
        reasons += _pytest_plugins(path, before or "", after)
    for dep in dependencies or ():
        normal = dep.lower().replace("_", "-")
        if normal == "pytest" or normal.startswith("pytest-"):
            reasons.append(f"tests-infra: pytest plugin requirement {dep} changed in {path}")
    return reasons


def _pyproject(path: str, before: str | None, after: str | None) -> list[str]:
    try:
        new = tomllib.loads(after or "")
    except tomllib.TOMLDecodeError as exc:
        return [
            f"config: {path} does not parse ({exc}): its [tool.*] and [build-system] tables"
            " cannot be judged"
        ]
    try:
        old = tomllib.loads(before or "")
    except tomllib.TOMLDecodeError:
        old = {}
    tables: dict[tuple[str, str], list[str]] = {}
    for parts in _diffs(old, new):
        if parts[0] == "build-system":
            depth, rule = 1, "config"
        elif parts[0] == "tool" and len(parts) > 1:
            rest = ".".join(parts[1:])
            if any(fnmatchcase(rest, p) for p in TOOL_METADATA):
                continue
            pytest = parts[1] == "pytest" or rest.startswith("poetry.plugins.pytest11")
            depth = 3 if parts[1] in ("pytest", "poetry") else 2
            rule = "tests-infra" if pytest else "config"
        elif parts[:2] == ("project", "entry-points") and len(parts) > 2:
            depth = 3
            rule = "tests-infra" if parts[2] == "pytest11" else "config"
        else:
            continue
        table, key = ".".join(parts[:depth]), ".".join(parts[depth:])
        tables.setdefault((rule, table), []).append(key or table)
    return [
        f"{rule}: {path} [{table}] changed ({_some(keys)})"
        for (rule, table), keys in tables.items()
    ]


def _ini(path: str, before: str | None, after: str | None, setup_cfg: bool) -> list[str]:
    try:
        new = _sections(after or "")
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        return [f"config: {path} does not parse ({first}): its sections cannot be judged"]
    try:
        old = _sections(before or "")
    except configparser.Error:
        old = {}
    found: dict[tuple[str, str], list[str]] = {}
    for parts in _diffs(old, new):
        section, option = parts[0], ".".join(parts[1:])
        key = f"{section}.{option}"
        if section in PYTEST_SECTIONS or (section, option) == ("options.entry_points", "pytest11"):
            found.setdefault(("tests-infra", section), []).append(option)
        elif setup_cfg and not any(fnmatchcase(key, p) for p in SETUP_CFG_METADATA):
            found.setdefault(("config", section), []).append(option)
    return [
        f"{rule}: {path} [{section}] changed ({_some(options)})"
        for (rule, section), options in found.items()
    ]


def _sections(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    out = {s: {k: v for k, v in parser.items(s, raw=True)} for s in parser.sections()}
    return {**out, "DEFAULT": dict(parser.defaults())}


def _pytest_plugins(path: str, before: str, after: str) -> list[str]:
    old, new = _plugin_assignments(before), _plugin_assignments(after)
    known = Counter(dump for dump, _ in old)
    out = []
    for dump, line in new:
        if known[dump] > 0:
            known[dump] -= 1
        else:
            out.append(
                f"tests-infra: pytest_plugins set in {path}:{line} (loads plugins into every test)"
            )
    return out


def _plugin_assignments(text: str) -> list[tuple[str, int]]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []  # the content rule reports it
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            if "pytest_plugins" in names:
                out.append((ast.dump(node), node.lineno))
    return out


def _diffs(old: Any, new: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of the leaves that differ between two parsed documents."""
    if isinstance(old, dict) or isinstance(new, dict):
        old = old if isinstance(old, dict) else {} if old is _MISSING else {"": old}
        new = new if isinstance(new, dict) else {} if new is _MISSING else {"": new}
        out = []
        for key in sorted(old.keys() | new.keys(), key=str):
            sub = (*prefix, str(key)) if key != "" else prefix
            out += _diffs(old.get(key, _MISSING), new.get(key, _MISSING), sub)
        return out
    return [] if old == new else [prefix]


def _new_lines(before: str | None, after: str | None) -> list[str]:
    lines = (after or "").splitlines()
    return [lines[i - 1] for i in added_lines(before or "", after or "")]


def _some(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
