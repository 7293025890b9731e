"""Reading, on the host, a file a sandbox wrote: refused by its size before a byte is read.

Whatever ran in the sandbox chose what its output directory holds, so a file there may be huge
(a 3 GB sparse ``patch.diff`` costs no disk), or a symlink to ``/dev/zero`` or to a host secret,
or a FIFO that blocks the reader forever. :func:`read_sandbox_file` opens it without following a
symlink and without blocking, accepts only a regular file, checks its size with ``fstat``
before reading, and reads at most ``limit`` bytes. Each refusal is a :class:`SandboxFileError`
naming the file, its size and the limit; callers turn it into their own typed error (a rejected
patch, a malformed harness result, a scanner error) and record it where they record those.

The path's last component is opened with ``O_NOFOLLOW``; the directories above it are the
host's (an output directory and the fixed names in it), not the sandbox's.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class SandboxFileError(ValueError):
    """A sandbox-written file too large to read, or not a regular file; names it."""

    def __init__(
        self, message: str, *, path: Path, size: int | None = None, limit: int | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.size = size
        self.limit = limit


def read_sandbox_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Raises FileNotFoundError when it does not exist, SandboxFileError when it is too large, is
    a symlink, a directory, a FIFO or a device, or cannot be read.
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        why = "is a symlink" if exc.errno == errno.ELOOP else f"cannot be opened: {exc.strerror}"
        raise SandboxFileError(f"{path} {why}; refused", path=path, limit=limit) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SandboxFileError(
            f"{path} is not a regular file (mode {stat.filemode(info.st_mode)}); refused",
            path=path,
            limit=limit,
        )
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise SandboxFileError(
                f"{path} is {info.st_size} bytes, over the limit of {limit} bytes; not read",
                path=path,
                size=info.st_size,
                limit=limit,
            )
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after the fstat
        raise SandboxFileError(
            f"{path} grew past the limit of {limit} bytes while it was read; refused",
            path=path,
            size=len(data),
            limit=limit,
        )
    return data
