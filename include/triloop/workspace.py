"""Per-run directories that sandboxes mount: a checkout (``src``) and an output dir (``out``).

The sandbox runs as uid 10001, so the control plane opens up what it must read or write.
Paths derive from stable ids, so a re-run task lands in the same place.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from triloop.adapters.git import fresh_checkout
from triloop.adapters.protocols import CloneSource

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """A filesystem-safe, collision-resistant name for ``text`` (e.g. an Airflow run id)."""
    slug = _UNSAFE.sub("_", text).strip("._")[:60]
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def out(self) -> Path:
        return self.root / "out"


def make_workspace(
    workspaces_dir: Path, *parts: str, remote: str | CloneSource, ref: str, writable_src: bool
) -> tuple[Workspace, str]:
    """Check ``ref`` of ``remote`` out into a fresh workspace; return it and the commit sha.

    ``remote`` is a URL or path, or the forge's :class:`CloneSource` (``forge.clone_source``),
    whose environment (credentials) reaches only the host's git fetch, never the workspace.
    """
    source = remote if isinstance(remote, CloneSource) else CloneSource(remote)
    ws = Workspace(workspaces_dir.joinpath(*(safe_name(p) for p in parts)))
    if ws.out.exists():
        shutil.rmtree(ws.out)
    ws.out.mkdir(parents=True)
    sha = fresh_checkout(source.url, ref, ws.src, source.env)
    open_up(ws.out, writable=True)
    open_up(ws.src, writable=writable_src)
    return ws, sha


def open_up(path: Path, *, writable: bool) -> None:
    """Let the sandbox user read (and, if asked, write) everything under ``path``."""
    dir_mode = 0o777 if writable else 0o755
    file_bits = 0o666 if writable else 0o444
    for dirpath, _dirs, files in os.walk(path):
        os.chmod(dirpath, dir_mode)
        for name in files:
            file = Path(dirpath, name)
            if not file.is_symlink():
                file.chmod(file.stat().st_mode | file_bits)


def remove_workspace(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
