"""The content and configuration reasons of a PR's diff, read from the merged checkout.

Governance's decide step passes the result to :func:`triloop.governance.risk.classify` as
``flagged``: each reason makes the tier high, whatever the harness. A file this module cannot
read (git fails, too large) is a reason too: what cannot be judged is not low risk.
"""

from __future__ import annotations

import io
import os
import subprocess
import tokenize
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from triloop.adapters.git import GitError, git
from triloop.domain.policy import protected_match
from triloop.domain.risk_rules import RiskRules
from triloop.governance.config_risk import PYTEST_FILES, config_risks
from triloop.governance.content_chars import bidi_risks, link_risks, name_risks
from triloop.governance.content_files import kind
from triloop.governance.content_risk import content_risks
from triloop.governance.risk import FileChange

MAX_BYTES = 2_000_000
"""Larger files are not parsed: their risk cannot be judged (a reason, so high)."""
_TABLE_FILES = frozenset(("pyproject.toml", "setup.cfg", "tox.ini", "conftest.py", *PYTEST_FILES))
_ABSENT = ("does not exist in", "exists on disk, but not in")


class Unreadable(RuntimeError):
    """git could not show one side of a changed file."""


def diff_risks(
    workspace: Path, base_sha: str, rules: RiskRules, changes: Sequence[FileChange]
) -> list[str]:
    """``content:``, ``config:`` and ``tests-infra:`` reasons for ``changes`` (from
    :func:`triloop.governance.diffstat.changes`) between ``base_sha`` and the checkout's HEAD.
    """
    reasons: list[str] = []
    bad_rev = _bad_rev(workspace, (base_sha, "HEAD"))
    if not bad_rev:
        reasons += link_risks(workspace, base_sha)
    for change in changes:
        path = change.path
        reasons += name_risks(path)
        if not _judged(path, rules, change):
            continue
        try:
            if bad_rev:
                raise Unreadable(bad_rev)
            before = _text(path, _blob(workspace, base_sha, path))
            after = _text(path, _blob(workspace, "HEAD", path))
            if before is None and after is None:
                raise Unreadable("absent on both sides")
        except Unreadable as exc:
            reasons.append(f"content: {path} could not be read ({exc}): its risk cannot be judged")
            continue
        large = [len(t) for t in (before, after) if t is not None and len(t) > MAX_BYTES]
        if large and kind(path, after) in ("python", "notebook"):
            reasons.append(
                f"content: {path} is {max(large)} bytes, over the {MAX_BYTES} the"
                " content rules read: its risk cannot be judged"
            )
            continue
        reasons += content_risks(path, before, after)
        reasons += bidi_risks(path, before, after)
        reasons += config_risks(path, before, after, rules, change.dependencies)
    return reasons


def _judged(path: str, rules: RiskRules, change: FileChange) -> bool:
    """Whether any content or config rule looks at ``path`` (the rest are not read)."""
    return (
        kind(path) is not None
        or PurePosixPath(path).name in _TABLE_FILES
        or protected_match(path, rules.config_paths) is not None
        or bool(change.dependencies)
    )


def _bad_rev(workspace: Path, revs: Sequence[str]) -> str | None:
    """Why one of ``revs`` is not a commit here (git show would call its files absent)."""
    for rev in revs:
        try:
            git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=workspace)
        except (GitError, OSError) as exc:
            return f"{rev} is not a commit in {workspace}: {exc}"
    return None


def _text(path: str, raw: bytes | None) -> str | None:
    """Python source as Python decodes it (PEP 263: a declared utf-7 is honoured, not hidden);
    anything else as UTF-8, else Latin-1 (every byte stays distinct)."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if kind(path, text) != "python":
        return text
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
        return raw.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise Unreadable(f"not decodable as Python source: {exc}") from exc


def _blob(workspace: Path, rev: str, path: str) -> bytes | None:
    """``path`` at ``rev``, or None where it does not exist."""
    argv = ["git", "-c", "safe.directory=*", "show", f"{rev}:{path}"]
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unreadable(f"git show {rev}:{path}: {exc}") from exc
    if proc.returncode != 0:
        error = proc.stderr.decode(errors="replace").strip()
        if any(marker in error for marker in _ABSENT):
            return None
        raise Unreadable(f"git show {rev}:{path} exited {proc.returncode}: {error[-200:]}")
    return proc.stdout
