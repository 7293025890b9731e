"""Content reasons where what a reader sees is not what is there: names, links, bidi text.

- A changed file whose name holds a control, line-separator or bidi character: a newline in a
  name forges lines wherever names are listed (a prompt, a log, a review), and bidi controls
  make it read otherwise (:mod:`triloop.domain.unsafe_chars`).
- A symbolic link the PR adds or retargets: whoever reads the checkout (a tool, a test, the
  host) follows it, out of the repository too. A submodule the PR adds or moves brings code
  from another repository. git stores both as modes, so ``git diff --raw`` shows them.
- Bidi controls added to a text file ("Trojan Source", CVE-2021-42574): the code displays in
  another order than it runs.

Each is a ``content:`` reason, so high risk: a human looks at what the bytes are.
"""

from __future__ import annotations

from pathlib import Path

from triloop.adapters.git import git
from triloop.domain.unsafe_chars import BIDI, escape_name, escaped, first_unsafe_in_name

LINK, GITLINK = "120000", "160000"
MAX_TARGET = 200
MAX_LINK = 4096  # PATH_MAX: a longer link target is no path, and is not read


def name_risks(path: str) -> list[str]:
    """A reason when the changed file's name holds a character a name may not hold."""
    char = first_unsafe_in_name(path)
    if char is None:
        return []
    return [
        f"content: file name {escape_name(path)} holds {escaped(char)} (a control or"
        " bidirectional character: the name reads otherwise than it is)"
    ]


def link_risks(workspace: Path, base_sha: str) -> list[str]:
    """Reasons for the symbolic links and submodules the merge adds or changes."""
    raw = git("diff", "--raw", "-z", "--no-renames", "--no-abbrev", base_sha, "HEAD", cwd=workspace)
    fields = raw.split("\0")
    reasons = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(":"):
            continue
        old_mode, new_mode, _, new_sha, _ = meta[1:].split(" ", 4)
        name = escape_name(path)
        if new_mode == LINK:
            size = int(git("cat-file", "-s", new_sha, cwd=workspace).strip() or 0)
            raw = git("cat-file", "blob", new_sha, cwd=workspace) if size <= MAX_LINK else ""
            target = escape_name(raw[:MAX_TARGET]) if raw else f"<{size} bytes, not read>"
            how = "retargeted" if old_mode == LINK else "added"
            reasons.append(
                f"content: symbolic link {name} -> {target} {how} (whoever reads the checkout"
                " follows it, out of the repository too)"
            )
        elif new_mode == GITLINK:
            reasons.append(
                f"content: submodule {name} at {new_sha[:12]} added or moved (code from another"
                " repository)"
            )
    return reasons


def bidi_risks(path: str, before: str | None, after: str | None) -> list[str]:
    """A reason when the change adds lines holding bidi controls to a text file."""
    if after is None or BIDI.search(after) is None:
        return []
    old = {line for line in (before or "").split("\n") if BIDI.search(line)}
    added = [
        n for n, line in enumerate(after.split("\n"), 1) if BIDI.search(line) and line not in old
    ]
    if not added:
        return []
    return [
        f"content: bidirectional control characters added in {escape_name(path)}:{added[0]}"
        f" ({len(added)} line(s): the text displays in another order than it runs)"
    ]
