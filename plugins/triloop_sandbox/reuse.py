"""Reusing the outputs of an identical sandbox run instead of running it again.

Governance checks the base of every pull request, and a burst of PRs against one repository
shares one base: the same commit, the same image, the same inputs, the same result. A task that
opts in (``SandboxOperator(reuse_results=True)``: governance's ``analyze_base`` and
``tests_base``) is keyed by everything its container could see:

- the image's ID (not its tag: a rebuilt image is another key);
- the command, the user and the environment variables (names and values);
- the workspace's git commit (only a read-only workspace is keyed; a checkout with local
  changes, or one git cannot read, is never reused);
- every file the host put into the output directory before the run (path, mode and content:
  the check request, the analysis configuration, the staged wheelhouse); a symlink or special
  file there turns reuse off.

A run that exited 0 stores what it added to the output directory under
``<workspaces root>/.sandbox-results/<key>/`` (files only, no links; written to a partial
directory and renamed, so a reader never sees half an entry). A later run with the same key
copies them back and starts no container; its task log says so and names the entry. Entries
older than the policy's ``sandbox_resources.result_reuse_hours`` are ignored and pruned; 0
turns reuse off.

Only runs on trusted input opt in: a PR's merged checkout is its own commit, so nothing a PR
writes is ever another run's result.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CACHE_DIR = ".sandbox-results"  # under the workspaces root
COMPLETE = ".complete"
MAX_INPUT_BYTES = 1 << 30  # an output directory holding more than this is not hashed


@dataclass(frozen=True)
class Inputs:
    """What a run could see, as :func:`key` hashes it."""

    image_id: str
    command: Sequence[str] | str
    user: str
    environment: Mapping[str, str]
    workspace: str
    output_dir: str


def _commit(workspace: str) -> str | None:
    """The checkout's commit, or None when it is not a clean git checkout.

    Only read-only workspaces are keyed (see the operator): no sandbox could write their
    ``.git``, so git may read it whoever owns it; no fsmonitor hook runs.
    """
    git = ["git", "-c", f"safe.directory={workspace}", "-c", "core.fsmonitor=false"]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "HEAD^{commit}"],
            cwd=workspace,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=all", "--ignored=matching"],
            cwd=workspace,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit if commit and not dirty else None


def listing(output_dir: str) -> dict[str, str] | None:
    """{relative path: mode and sha256} of the regular files there; None if anything else is."""
    found: dict[str, str] = {}
    total = 0
    for root, dirs, files in os.walk(output_dir):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                return None
            total += info.st_size
            if total > MAX_INPUT_BYTES:
                return None
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            rel = os.path.relpath(path, output_dir)
            found[rel] = f"{stat.S_IMODE(info.st_mode):o}:{digest.hexdigest()}"
    return found


def key(inputs: Inputs, before: Mapping[str, str] | None) -> str | None:
    """The run's key, or None when it cannot be reused (no clean checkout, odd output files)."""
    commit = _commit(inputs.workspace)
    if commit is None or before is None:
        return None
    seen = {
        "image": inputs.image_id,
        "command": inputs.command,
        "user": inputs.user,
        "environment": dict(sorted(inputs.environment.items())),
        "commit": commit,
        "outputs": dict(sorted(before.items())),
    }
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:32]


def lookup(cache: Path, run_key: str, max_age_s: float) -> Path | None:
    """The complete entry for ``run_key`` if it is younger than ``max_age_s``."""
    entry = cache / run_key
    try:
        done = (entry / COMPLETE).stat()
    except OSError:
        return None
    return entry if time.time() - done.st_mtime < max_age_s else None


def restore(entry: Path, output_dir: str) -> int:
    """Copy an entry's files into the output directory; how many.

    They get the modes a sandbox run leaves (files 0666, directories 0777 like the output
    directory itself), so a cleared and re-run task's sandbox can overwrite them.
    """
    copied = 0
    for path in sorted(p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(entry)
        if str(rel) == COMPLETE:
            continue
        target = Path(output_dir, rel)
        for parent in reversed(target.relative_to(output_dir).parents[:-1]):
            folder = Path(output_dir, parent)
            if not folder.is_dir():
                folder.mkdir()
                folder.chmod(0o777)
        target.unlink(missing_ok=True)
        shutil.copyfile(path, target)
        target.chmod(0o666)
        copied += 1
    return copied


def store(
    cache: Path, run_key: str, output_dir: str, before: Mapping[str, str], max_age_s: float
) -> int:
    """Keep what the run added or changed in the output directory (regular files only).

    Returns how many files were kept; prunes entries older than ``max_age_s`` on the way.
    """
    after = listing(output_dir)
    if after is None:
        return 0
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{run_key}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    kept = 0
    for rel, seen in after.items():
        if before.get(rel) == seen:
            continue
        target = partial / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(output_dir, rel), target)
        kept += 1
    partial.mkdir(parents=True, exist_ok=True)
    (partial / COMPLETE).touch()
    entry = cache / run_key
    shutil.rmtree(entry, ignore_errors=True)
    try:
        partial.rename(entry)  # another worker may have won the race: either entry is whole
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    prune(cache, max_age_s)
    return kept


def prune(cache: Path, max_age_s: float) -> None:
    """Remove entries (and leftover partial directories) older than ``max_age_s``."""
    now = time.time()
    for entry in cache.iterdir():
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if age > max_age_s and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
