"""What governance prepares so that the change it judges cannot reach what judges it.

Each check runs in its own container with its own output directory (see the governance DAG):
the analyzers (``analyze``, no repository code) apart from the tests (``test``); the tests
three times: the base's tests on the base (the reference counts), the PR's tests on the merged
code, and the base's tests and test configuration on the merged code (the guard, which the PR
cannot edit). This module builds the guard's checkout, the analysis configuration taken from
the base, and the directories each sandbox mounts.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from triloop.adapters.git import git
from triloop.domain.policy import protected_match
from triloop.lint_config import ruff_config, write_default
from triloop.workspace import open_up

log = logging.getLogger(__name__)
TEST_PATHS = (
    "tests/**",
    "test/**",
    "testing/**",
    "**/tests/**",
    "**/test/**",
    "**/test_*.py",
    "**/*_test.py",
    "**/conftest.py",
)
"""Files the guard takes from the base: tests and the test harness around them."""
TEST_CONFIG = (
    "**/pytest.ini",
    "**/.pytest.ini",
    "**/tox.ini",
    "**/setup.cfg",
    "**/pyproject.toml",
    "**/noxfile.py",
    "**/.coveragerc",
)
"""Files that configure how pytest collects and runs: the guard takes them from the base too."""


def output_dir(path: Path) -> Path:
    """A fresh output directory the sandbox user may write."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    path.chmod(0o777)
    return path


def guard_paths(workspace: Path, base_sha: str) -> list[str]:
    """Paths the merge changes that are tests or test configuration."""
    listed = git("diff", "--name-only", "--no-renames", "-z", base_sha, "HEAD", cwd=workspace)
    return [
        name
        for name in listed.split("\x00")
        if name
        and (
            protected_match(name, TEST_PATHS) is not None
            or protected_match(name, TEST_CONFIG) is not None
        )
    ]


def restore_base_tests(workspace: Path, base_sha: str, env: dict[str, str]) -> list[str]:
    """Put the base's tests and test configuration back into the merged checkout; commit.

    A file the PR added there is removed, one it changed or deleted comes back as the base has
    it. Returns the paths restored (empty: the PR does not touch tests; the guard is then the
    same run as the PR's own tests, and still runs).
    """
    paths = guard_paths(workspace, base_sha)
    for name in paths:
        exists = git("ls-tree", "--name-only", base_sha, "--", name, cwd=workspace).strip()
        if exists:
            git("checkout", base_sha, "--", name, cwd=workspace)
        else:
            git("rm", "--quiet", "--force", "--", name, cwd=workspace)
    if paths:
        git("add", "--all", cwd=workspace)
        message = "triloop: the base's tests and test configuration (governance guard)"
        git("-c", "user.name=triloop", "-c", "user.email=triloop@localhost", "commit",
            "--quiet", "--no-verify", "-m", message, cwd=workspace, env=env)  # fmt: skip
    open_up(workspace, writable=False)
    log.info("guard checkout %s: %d test paths from the base", workspace, len(paths))
    return paths


def write_analysis_config(base: Path, *outs: Path, default_select: Sequence[str]) -> str:
    """Put the base's root ruff configuration (or, when it has none, the policy's rule set, as
    discovery scans it) into each ``out/analysis/``; the evidence's note."""
    config = ruff_config(base)
    for out in outs:
        target = out / "analysis"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        if config is not None:
            shutil.copyfile(config, target / config.name)
            os.chmod(target / config.name, 0o644)
        else:
            write_default(out, list(default_select))
        target.chmod(0o755)
    if config is None:
        rules = ", ".join(default_select)
        return (
            "ruff ran with the policy's rule set on both trees (code_scans.lint.default_select:"
            f" {rules}; the base has no ruff configuration); noqa comments not honoured"
        )
    return f"ruff ran with the base's {config.name} on both trees; noqa comments not honoured"


def link_wheelhouse(source_out: Path, *targets: Path) -> None:
    """The wheelhouse staged in ``source_out`` for each target's test run, hard-linked."""
    wheelhouse = source_out / "wheelhouse"
    if not wheelhouse.is_dir():
        return
    for target in targets:
        dest = target / "wheelhouse"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(wheelhouse, dest, copy_function=_link_or_copy)
        open_up(dest, writable=False)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
