"""Validating the patch a harness left behind, before the control plane commits anything."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from triloop.adapters.git import GitError, git
from triloop.domain.policy import PatchRules
from triloop.domain.sandbox_resources import SandboxResources
from triloop.execution.diff import DiffError, FileChange, parse_diff
from triloop.sandbox_files import SandboxFileError, read_sandbox_file

MAX_PATCH_BYTES = SandboxResources().patch_max_bytes
"""The default of the policy's ``sandbox_resources.patch_max_kb``, in bytes."""
SYMLINK, GITLINK, EXECUTABLE = "120000", "160000", "100755"


class PatchRejected(ValueError):
    """The patch is malformed or breaks a rule; the message names the patch and the rule."""


def check_patch_text(
    patch: str, source: str, allowed: list[str], rules: PatchRules | None = None
) -> list[str]:
    """Every rule that needs only the patch text; returns the files it touches.

    Pure: ``source`` names the patch in messages, ``allowed`` are the ticket's files.
    """
    rules = rules or PatchRules()
    try:
        changes = parse_diff(patch)
    except DiffError as exc:
        raise PatchRejected(f"{source}: {exc}") from exc
    if not changes:
        raise PatchRejected(f"{source}: no file changes in the patch")
    if len(changes) > rules.max_files:
        raise PatchRejected(
            f"{source}: changes {len(changes)} files, over the limit of {rules.max_files}"
        )
    lines = sum(c.added + c.removed for c in changes)
    if lines > rules.max_lines:
        raise PatchRejected(f"{source}: changes {lines} lines, over the limit of {rules.max_lines}")
    files: list[str] = []
    for change in changes:
        _check_change(change, source, rules)
        for name in change.paths:
            _check_path(name, source, allowed)
            if name not in files:
                files.append(name)
    return files


def _check_change(change: FileChange, source: str, rules: PatchRules) -> None:
    name, modes = change.paths[-1], change.new_modes + change.old_modes
    if change.binary:
        raise PatchRejected(f"{source}: binary change to {name!r}; binary files are not accepted")
    if SYMLINK in modes:
        raise PatchRejected(f"{source}: {name!r} is a symlink; symlinks are not accepted")
    if GITLINK in modes:
        raise PatchRejected(f"{source}: {name!r} is a submodule; submodules are not accepted")
    if EXECUTABLE in change.new_modes and not rules.allow_executable:
        raise PatchRejected(
            f"{source}: makes {name!r} executable (mode {EXECUTABLE}); the policy forbids it"
        )


def _check_path(name: str, source: str, allowed: list[str]) -> None:
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or ".." in parts or ".git" in parts:
        raise PatchRejected(f"{source}: path {name!r} escapes the repository")
    if name not in allowed:
        raise PatchRejected(f"{source}: changes {name!r}, outside the ticket's files {allowed}")


def validate_patch(
    patch_path: Path,
    clean_checkout: Path,
    allowed: list[str],
    rules: PatchRules | None = None,
    max_bytes: int = MAX_PATCH_BYTES,
) -> list[str]:
    """Check ``patch_path`` keeps the ``rules``, touches only ``allowed`` files and applies to
    ``clean_checkout``; return the files it changes.

    Its size is checked before it is read: one over ``max_bytes`` (the policy's
    ``sandbox_resources.patch_max_kb``) is refused without reading it."""
    source = str(patch_path)
    try:
        raw = read_sandbox_file(patch_path, max_bytes)
    except FileNotFoundError as exc:
        raise PatchRejected(f"{source}: the harness wrote no patch") from exc
    except SandboxFileError as exc:
        raise PatchRejected(f"{exc} (sandbox_resources.patch_max_kb)") from exc
    try:
        patch = raw.decode()
    except UnicodeDecodeError as exc:
        raise PatchRejected(f"{source}: not UTF-8 text") from exc
    files = check_patch_text(patch, source, allowed, rules)
    try:
        git(
            "apply", "--check", "--whitespace=nowarn", str(patch_path.resolve()), cwd=clean_checkout
        )
    except GitError as exc:
        raise PatchRejected(f"{source}: does not apply to the base commit: {exc}") from exc
    return files
