"""Validating the patch a harness left behind, before the control plane commits anything."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from triloop.adapters.git import GitError, git

MAX_PATCH_BYTES = 1_000_000
_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$")


class PatchRejected(ValueError):
    """The patch is malformed or breaks a rule; the message names the patch and the rule."""


def changed_files(patch: str, source: str) -> list[str]:
    files: list[str] = []
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            match = _HEADER.match(line)
            if match is None:
                raise PatchRejected(f"{source}: unreadable diff header {line!r}")
            files.extend(p for p in match.groups() if p not in files)
    return files


def validate_patch(patch_path: Path, clean_checkout: Path, allowed: list[str]) -> list[str]:
    """Check ``patch_path`` applies to ``clean_checkout`` and touches only ``allowed`` files."""
    source = str(patch_path)
    try:
        raw = patch_path.read_bytes()
    except FileNotFoundError as exc:
        raise PatchRejected(f"{source}: the harness wrote no patch") from exc
    if len(raw) > MAX_PATCH_BYTES:
        raise PatchRejected(f"{source}: {len(raw)} bytes is over the {MAX_PATCH_BYTES} limit")
    try:
        patch = raw.decode()
    except UnicodeDecodeError as exc:
        raise PatchRejected(f"{source}: not UTF-8 text") from exc
    if "GIT binary patch" in patch:
        raise PatchRejected(f"{source}: binary changes are not accepted")
    files = changed_files(patch, source)
    if not files:
        raise PatchRejected(f"{source}: no file changes in the patch")
    for name in files:
        parts = PurePosixPath(name).parts
        if name.startswith("/") or ".." in parts or ".git" in parts:
            raise PatchRejected(f"{source}: path {name!r} escapes the repository")
        if name not in allowed:
            raise PatchRejected(f"{source}: changes {name!r}, outside the ticket's files {allowed}")
    try:
        git(
            "apply", "--check", "--whitespace=nowarn", str(patch_path.resolve()), cwd=clean_checkout
        )
    except GitError as exc:
        raise PatchRejected(f"{source}: does not apply to the base commit: {exc}") from exc
    return files
