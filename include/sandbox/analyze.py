"""``triloop-harness analyze``: governance's analyzers, where no repository code runs.

ruff, semgrep, the secret scanner, pip-licenses and the SBOM read the checkout; nothing here
runs the repository's tests, imports its modules or builds it (its dependencies install from
wheels only, so no build hook runs either). The repository's tests run in another container
(``triloop-harness test``) with another output directory, so nothing they write is read as
one of these results.

The pull request cannot configure these analyzers:
- ruff runs with the configuration the host took from the base (``/out/analysis/``), or with
  ruff's defaults when the base has none (``--isolated``); ``--ignore-noqa`` and
  ``--no-respect-gitignore`` on both trees, so suppressions and ignore files the PR adds do
  nothing (the base's findings are the same on both sides and are not the PR's);
- semgrep scans a copy of the tracked files in /tmp without any ``.semgrepignore``,
  ``.gitignore`` or ``.ignore`` and with Triloop's own empty ``.semgrepignore`` at its root
  (so not even semgrep's default skip of ``tests/`` applies), ``--disable-nosem`` and
  ``--no-git-ignore``.
"""

from __future__ import annotations

import logging
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("triloop-harness")
COPY = Path(tempfile.gettempdir()) / "triloop-analysis"
IGNORE_FILES = frozenset({".semgrepignore", ".gitignore", ".ignore", ".rgignore"})
RUFF_CONFIG_NAMES = (".ruff.toml", "ruff.toml", "pyproject.toml")  # ruff's precedence
MAX_TARGET_BYTES = "5MB"  # semgrep's default (1 MB) would skip larger files unseen
OWN_SEMGREPIGNORE = "# Triloop: nothing is ignored; the repository's ignore files are not read\n"


def ruff_argv(out: Path) -> list[str]:
    """ruff on the checkout with the base's configuration (or none), no suppressions."""
    argv = ["ruff", "check", "--output-format", "json", "--exit-zero", "--no-cache", "--no-fix"]
    argv += ["--ignore-noqa", "--no-respect-gitignore"]
    config = [out / "analysis" / name for name in RUFF_CONFIG_NAMES]
    found = [c for c in config if c.is_file()]
    argv += ["--config", str(found[0])] if found else ["--isolated"]
    return [*argv, "."]


def semgrep_argv(rules: str) -> list[str]:
    argv = ["semgrep", "scan", "--config", rules, "--json", "--metrics=off"]
    argv += ["--disable-version-check", "--quiet", "--no-git-ignore", "--disable-nosem"]
    return [*argv, "--max-target-bytes", MAX_TARGET_BYTES, "."]


def tracked_copy(workspace: Path, env: dict[str, str]) -> tuple[Path, list[str]]:
    """The checkout's tracked regular files under /tmp, without ignore files; what was left out.

    Symlinks are not followed (a link out of the checkout is not the repository's content),
    and neither are files git does not track.
    """
    shutil.rmtree(COPY, ignore_errors=True)
    COPY.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "-c", "safe.directory=*", "ls-files", "-z"],
        cwd=workspace,
        env=env,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "surrogateescape")
    left_out = []
    for name in filter(None, listed.split("\x00")):
        source = workspace / name
        if Path(name).name in IGNORE_FILES:
            left_out.append(f"{name}: an ignore file, not honoured")
            continue
        try:
            mode = source.lstat().st_mode
        except OSError as exc:
            left_out.append(f"{name}: {exc.strerror}")
            continue
        if not stat.S_ISREG(mode):
            left_out.append(f"{name}: not a regular file")
            continue
        target = COPY / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target, follow_symlinks=False)
    (COPY / ".semgrepignore").write_text(OWN_SEMGREPIGNORE, encoding="utf-8")
    return COPY, left_out


def run_semgrep(workspace: Path, env: dict[str, str], rules: str) -> dict[str, Any]:
    """semgrep on the tracked copy: (its result meta, its stdout) as the harness's Run has."""
    start = time.monotonic()
    argv = semgrep_argv(rules)
    try:
        copy, left_out = tracked_copy(workspace, env)
    except (OSError, subprocess.CalledProcessError) as exc:
        return {"argv": argv, "exit_code": -1, "stdout": b"", "error": f"copy failed: {exc}"}
    proc = subprocess.run(argv, cwd=copy, env=env, capture_output=True, check=False)
    meta: dict[str, Any] = {"argv": argv, "exit_code": proc.returncode, "stdout": proc.stdout}
    meta["stderr"] = proc.stderr
    meta["left_out"] = left_out[:200]
    meta["duration_s"] = round(time.monotonic() - start, 3)
    shutil.rmtree(copy, ignore_errors=True)
    log.info("semgrep on the tracked copy: exit %s in %.1fs", proc.returncode, meta["duration_s"])
    return meta


def run_secrets(workspace: Path, out: Path) -> dict[str, Any]:
    """The secret scanner (secret_scan.py beside this file): its status entry."""
    try:
        from secret_scan import scan_secrets  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        return {"argv": ["secret_scan"], "exit_code": -1, "error": f"not in the image: {exc}"}
    status: dict[str, Any] = scan_secrets(workspace, out)
    return status
