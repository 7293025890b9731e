"""An autofix PR is low risk only when governance reproduces it, byte for byte.

The ``autofix`` label is the harness's word, and a harness (or whoever pushed to its branch) may
lie. So governance reruns the deterministic fix for the ticket's rule and files on the PR's
merge base, in a sandbox (``triloop-harness fix``, the same command execution ran), and compares
the diff it leaves with the PR's own diff from that merge base. Only an identical diff keeps the
``autofix`` reading of the risk tier; anything else is judged as an agent's change.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triloop.adapters.git import GitError, git
from triloop.workspace import Workspace, open_up

REQUEST = "request.json"
MAX_PATCH_BYTES = 8 << 20
DIFF = ["diff", "--no-ext-diff", "--no-textconv", "--binary", "--src-prefix=a/", "--dst-prefix=b/"]


@dataclass(frozen=True)
class Reproduction:
    reproduced: bool
    why: str


def prepare(
    ws: Workspace, head_sha: str, base_sha: str, ticket_id: str, fix: dict[str, Any]
) -> Workspace:
    """Check the PR's merge base out in ``ws`` (writable) and leave the fix request."""
    merge_base = git("merge-base", base_sha, head_sha, cwd=ws.src).strip()
    git("checkout", "--quiet", "--force", "--detach", merge_base, cwd=ws.src)
    request = {"schema_version": 1, "harness": "autofix", "ticket_id": ticket_id, **fix}
    (ws.out / REQUEST).write_text(json.dumps(request, sort_keys=True) + "\n", encoding="utf-8")
    open_up(ws.src, writable=True)
    open_up(ws.out, writable=True)
    return ws


def pr_diff(merged: Path, base_sha: str, head_sha: str) -> bytes:
    """The PR's own diff from its merge base, as the harness writes a diff."""
    merge_base = git("merge-base", base_sha, head_sha, cwd=merged)
    argv = ["git", "-c", "safe.directory=*", *DIFF, merge_base, head_sha, "--"]
    proc = subprocess.run(argv, cwd=merged, capture_output=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise GitError(DIFF, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def compare(out: Path, merged: Path, base_sha: str, head_sha: str) -> Reproduction:
    """Did the rerun in ``out`` leave the PR's diff exactly? And if not, why not."""
    patch = out / "patch.diff"
    try:
        size = patch.stat().st_size
        if size > MAX_PATCH_BYTES:
            return Reproduction(
                False, f"the rerun's patch is {size} bytes (over {MAX_PATCH_BYTES})"
            )
        result = json.loads((out / "result.json").read_text(encoding="utf-8"))
        ours = patch.read_bytes()
    except (OSError, ValueError) as exc:
        return Reproduction(False, f"the autofix rerun left no readable result: {exc}")
    if not isinstance(result, dict) or result.get("status") != "changed":
        status = result.get("status") if isinstance(result, dict) else result
        return Reproduction(False, f"the autofix rerun on the merge base gave {status!r}")
    try:
        theirs = pr_diff(merged, base_sha, head_sha)
    except GitError as exc:
        return Reproduction(False, f"the PR's diff could not be read: {exc}")
    if ours != theirs:
        return Reproduction(
            False,
            f"the PR's diff ({len(theirs)} bytes) is not the autofix rerun's ({len(ours)} bytes)",
        )
    return Reproduction(True, f"reproduced byte for byte by rerunning autofix ({len(ours)} bytes)")
