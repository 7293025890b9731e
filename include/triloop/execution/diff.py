"""Reading a git diff's file headers and hunks without applying it. Pure: text in, facts out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_PATH_HEADERS = ("rename from ", "rename to ", "copy from ", "copy to ")
_NEW_MODE_HEADERS = ("new file mode ", "new mode ")
_OLD_MODE_HEADERS = ("old mode ", "deleted file mode ")


class DiffError(ValueError):
    """The diff text cannot be read; the message says which line and why."""


@dataclass
class FileChange:
    """One ``diff --git`` section: every path it names, modes it sets or keeps, lines it changes."""

    paths: list[str]
    new_modes: list[str] = field(default_factory=list)
    old_modes: list[str] = field(default_factory=list)
    binary: bool = False
    added: int = 0
    removed: int = 0

    def add_path(self, path: str) -> None:
        if path not in self.paths:
            self.paths.append(path)


def parse_diff(text: str) -> list[FileChange]:
    """The file sections of a git diff; text before the first ``diff --git`` is ignored."""
    changes: list[FileChange] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("diff --git "):
            match = _HEADER.match(line)
            if match is None:
                raise DiffError(f"unreadable diff header {line!r}")
            changes.append(FileChange(paths=[]))
            for path in match.groups():
                changes[-1].add_path(path)
            continue
        if not changes:
            if line.startswith(("--- ", "+++ ", "@@ ")):
                raise DiffError(f"{line!r} comes before any 'diff --git' header")
            continue
        current = changes[-1]
        if line.startswith("@@"):
            i = _read_hunk(lines, i, line, current)
        elif line.startswith(_PATH_HEADERS):
            current.add_path(line.split(" ", 2)[2])
        elif line.startswith(_NEW_MODE_HEADERS):
            current.new_modes.append(line.rsplit(" ", 1)[1])
        elif line.startswith(_OLD_MODE_HEADERS):
            current.old_modes.append(line.rsplit(" ", 1)[1])
        elif line.startswith("index ") and len(line.split()) == 3:  # mode kept as it was
            current.old_modes.append(line.split()[2])
        elif line == "GIT binary patch" or (
            line.startswith("Binary files ") and line.endswith(" differ")
        ):
            current.binary = True
        elif line.startswith(("--- ", "+++ ")):
            name = line[4:].split("\t", 1)[0]
            if name != "/dev/null":
                current.add_path(name[2:] if name.startswith(("a/", "b/")) else name)
    return changes


def _read_hunk(lines: list[str], i: int, header: str, change: FileChange) -> int:
    """Count one hunk's lines from its header; return the index of the line after it."""
    match = _HUNK.match(header)
    if match is None:
        raise DiffError(f"unreadable hunk header {header!r}")
    old, new = (int(n) if n is not None else 1 for n in match.groups())
    while old > 0 or new > 0:
        if i >= len(lines):
            raise DiffError(f"hunk {header!r} ends early")
        line = lines[i]
        i += 1
        if line.startswith("\\"):
            continue
        if line.startswith("-"):
            old, change.removed = old - 1, change.removed + 1
        elif line.startswith("+"):
            new, change.added = new - 1, change.added + 1
        elif line.startswith(" ") or line == "":
            old, new = old - 1, new - 1
        else:
            raise DiffError(f"hunk {header!r} has an unreadable line {line!r}")
        if old < 0 or new < 0:
            raise DiffError(f"hunk {header!r} has more lines than its header says")
    return i
