"""What a pull request changes, read from the merged checkout: the input of the risk tier."""

from __future__ import annotations

from pathlib import Path

from triloop.adapters.git import GitError, git
from triloop.domain.policy import protected_match
from triloop.domain.risk_rules import RiskRules
from triloop.governance.risk import FileChange, dependency_edits


def _show(rev: str, path: str, cwd: Path) -> str:
    try:
        return git("show", f"{rev}:{path}", cwd=cwd)
    except GitError:  # added or deleted on this side
        return ""


def changes(workspace: Path, base_sha: str, rules: RiskRules) -> list[FileChange]:
    """Every file the merge changes against ``base_sha``; manifests with their dependency edits.

    Binary files count one line each side (git prints ``-`` for their line counts). Paths are
    raw: show them through :func:`triloop.domain.unsafe_chars.escape_name`.
    """
    out: list[FileChange] = []
    # -z: paths exactly as in the tree (never C-quoted), so every glob sees the real name
    stat = git("diff", "--numstat", "-z", "--no-renames", base_sha, "HEAD", cwd=workspace)
    for row in filter(None, stat.split("\0")):
        added, removed, path = row.split("\t", 2)
        deps = None
        if protected_match(path, rules.dependency_files) is not None:
            before, after = _show(base_sha, path, workspace), _show("HEAD", path, workspace)
            deps = dependency_edits(path, before, after)
        out.append(
            FileChange(
                path=path,
                added=int(added) if added.isdigit() else 1,
                removed=int(removed) if removed.isdigit() else 1,
                dependencies=deps,
            )
        )
    return out
