"""Disk budgets of a sandbox's writable bind mounts, enforced from the host while it runs.

Docker cannot size-limit a bind mount, so the operator watches them. Walking a checkout of
100,000 files takes about 0.4 s, too slow to do ten times a second, so the watcher polls the
mounts' filesystems instead (one ``statvfs`` each, every ``disk_poll_s``): what a mount gained
since it was last walked is at most what its filesystem gained, and only when that bound reaches
a budget is the mount walked to see what it really holds. Mounts on one filesystem are walked
smallest first, and what a walk finds is taken off the bound of the others, so a flood into a
small /out never waits for a walk of a large workspace. Each mount is also walked every
``FULL_EVERY_S`` or 25 times its last walk's duration, whichever is longer (another process
freeing space on the same filesystem could hide growth from the bound), and no mount is walked
more than half the time. The kernel backs this up for single
files: the container's ``RLIMIT_FSIZE`` is the largest budget (see ``resources``).

Walks never follow a symlink (each directory is opened with ``O_NOFOLLOW`` relative to its
parent's descriptor), count allocated blocks (a sparse file costs what it uses), count a file with
several links once, and stop at ``MAX_DEPTH``. What cannot be measured (a directory the host may
not read, or deeper than that) is a breach when the bound says the mount could be over budget.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_DEPTH = 128
FULL_EVERY_S = 10.0
PERIODIC_COST_FACTOR = 25  # a periodic walk takes at most 4% of the time
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MB = 1024 * 1024


@dataclass(frozen=True)
class Usage:
    """What a walk of one tree found: allocated bytes, inodes, and what it could not measure."""

    bytes: int
    inodes: int
    unmeasured: str = ""


def measure(path: str, max_depth: int = MAX_DEPTH) -> Usage:
    """Allocated bytes and inodes under ``path`` (itself included), never following a link."""
    total, inodes, unmeasured = 0, 0, ""
    seen: set[int] = set()  # inodes with several links, counted once
    top = os.open(path, DIR_FLAGS)
    info = os.fstat(top)
    total, inodes = info.st_blocks * 512, 1
    frames: list[tuple[int, list[str]]] = []
    fd: int | None = top
    while fd is not None or frames:
        if fd is not None:
            subdirs: list[str] = []
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:  # removed while we walk
                            continue
                        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                            if st.st_ino in seen:
                                continue
                            seen.add(st.st_ino)
                        total += st.st_blocks * 512
                        inodes += 1
                        if stat.S_ISDIR(st.st_mode):
                            subdirs.append(entry.name)
            except OSError as exc:  # listable but not searchable (mode 0644 on a directory)
                unmeasured = unmeasured or f"a directory cannot be walked: {exc.strerror}"
            frames.append((fd, subdirs))
            fd = None
        parent, pending = frames[-1]
        if not pending:
            os.close(parent)
            frames.pop()
            continue
        name = pending.pop()
        if len(frames) > max_depth:
            unmeasured = unmeasured or f"{name!r} is nested deeper than {max_depth} directories"
            continue
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        except OSError as exc:  # unreadable (mode 000) or replaced while walking
            unmeasured = unmeasured or f"{name!r} cannot be read: {exc.strerror}"
    return Usage(total, inodes, unmeasured)


def filesystem_used(path: str) -> tuple[int, int | None]:
    """Bytes and inodes in use on the filesystem holding ``path`` (inodes None if untracked)."""
    fs = os.statvfs(path)
    inodes = fs.f_files - fs.f_ffree if fs.f_files else None
    return (fs.f_blocks - fs.f_bfree) * fs.f_frsize, inodes


@dataclass(frozen=True)
class WatchedMount:
    """One writable bind mount: where it is in the container and on the host, and its budget."""

    target: str
    source: str
    budget_bytes: int
    setting: str  # the policy field the budget comes from, for the error message


@dataclass(frozen=True)
class Breach:
    """A mount over its budget (``kind`` disk, files or unmeasured) and what was seen."""

    mount: WatchedMount
    kind: str
    seen_bytes: int
    new_files: int
    max_new_files: int
    detail: str = ""

    def message(self) -> str:
        m = self.mount
        where = f"{m.target} ({m.source})"
        budget = f"its disk budget of {m.budget_bytes / MB:.0f} MB ({m.setting})"
        if self.kind == "files":
            return (
                f"sandbox created {self.new_files} files in {where}, over its budget of"
                f" {self.max_new_files} (sandbox_resources.max_new_files)"
            )
        if self.kind == "unmeasured":
            return f"sandbox made {where} unmeasurable ({self.detail}), so it may be over {budget}"
        return f"sandbox wrote {self.seen_bytes / MB:.0f} MB to {where}, over {budget}"


@dataclass
class _State:
    mount: WatchedMount
    base: Usage
    grown: int = 0  # bytes over the baseline at the last walk
    new: int = 0  # inodes over the baseline at the last walk
    slack_bytes: int = 0  # growth its filesystem showed since then that no walk explained
    slack_inodes: int = 0
    cost_s: float = 0.0
    walked_at: float = 0.0
    next_walk: float = 0.0


@dataclass
class _Filesystem:
    states: list[_State]
    used: int = 0
    inodes: int | None = None


@dataclass
class DiskWatcher:
    """Watch ``mounts`` while one container runs; ``kill`` it on the first breach."""

    mounts: list[WatchedMount]
    max_new_files: int
    poll_s: float
    clock: Callable[[], float] = time.monotonic
    breach: Breach | None = None
    walks: int = 0
    walk_s: float = 0.0
    polls: int = 0
    _filesystems: dict[int, _Filesystem] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _final: bool = False

    def baseline(self) -> None:
        """Walk every mount and note its filesystem's use; call before the container starts."""
        for mount in self.mounts:
            started = self.clock()
            state = _State(mount, measure(mount.source))
            state.cost_s, state.walked_at = self.clock() - started, started
            fs = self._filesystems.setdefault(os.stat(mount.source).st_dev, _Filesystem([]))
            fs.states.append(state)
        for fs in self._filesystems.values():
            fs.used, fs.inodes = filesystem_used(fs.states[0].mount.source)

    def start(self, kill: Callable[[str], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(kill,), daemon=True)
        self._thread.start()

    def _run(self, kill: Callable[[str], None]) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                breach = self.check()
            except OSError:  # a mount went away under us: the final check decides
                continue
            if breach is not None:
                kill(breach.message())
                return

    def check(self, final: bool = False) -> Breach | None:
        """One poll: walk the mounts whose bound reaches a budget (all of them if ``final``)."""
        self.polls += 1
        now = self.clock()
        for fs in self._filesystems.values():
            used, inodes = filesystem_used(fs.states[0].mount.source)
            spare_bytes = max(0, used - fs.used)
            spare_inodes = 0
            if inodes is not None and fs.inodes is not None:
                spare_inodes = max(0, inodes - fs.inodes)
            for state in sorted(fs.states, key=lambda s: s.cost_s):
                bytes_bound = state.grown + state.slack_bytes + spare_bytes
                inode_bound = state.new + state.slack_inodes + spare_inodes
                could_be_over = (
                    bytes_bound >= state.mount.budget_bytes or inode_bound > self.max_new_files
                )
                every = max(FULL_EVERY_S, PERIODIC_COST_FACTOR * state.cost_s)
                periodic = now - state.walked_at >= every
                if not (final or ((could_be_over or periodic) and now >= state.next_walk)):
                    state.slack_bytes += spare_bytes
                    state.slack_inodes += spare_inodes
                    continue
                before_bytes, before_new = state.grown + state.slack_bytes, state.new
                before_slack_inodes = state.slack_inodes
                breach = self._walk(state, could_be_over)
                if breach is not None:
                    self.breach = self.breach or breach
                    return breach
                spare_bytes = max(0, spare_bytes - max(0, state.grown - before_bytes))
                found_inodes = state.new - before_new - before_slack_inodes
                spare_inodes = max(0, spare_inodes - max(0, found_inodes))
            fs.used, fs.inodes = used, inodes
        return None

    def _walk(self, state: _State, could_be_over: bool) -> Breach | None:
        started = self.clock()
        usage = measure(state.mount.source)
        done = self.clock()
        self.walks += 1
        self.walk_s += done - started
        state.cost_s, state.walked_at, state.next_walk = (
            done - started,
            started,
            done + (done - started),
        )
        state.grown = usage.bytes - state.base.bytes
        state.new = usage.inodes - state.base.inodes
        state.slack_bytes = state.slack_inodes = 0
        kind = ""
        if state.grown > state.mount.budget_bytes:
            kind = "disk"
        elif state.new > self.max_new_files:
            kind = "files"
        elif usage.unmeasured and could_be_over:
            kind = "unmeasured"
        if not kind:
            return None
        return Breach(
            state.mount, kind, max(0, state.grown), state.new, self.max_new_files, usage.unmeasured
        )

    def finish(self) -> Breach | None:
        """Stop watching and walk every mount once more (the container has exited)."""
        self.stop()
        if not self._final:
            self._final = True
            with contextlib.suppress(OSError):  # a mount removed meanwhile: nothing to see
                self.check(final=True)
        return self.breach

    def stop(self) -> None:
        """Stop the polling thread (from any thread; on_kill may call it before it started)."""
        self._stop.set()
        thread = self._thread
        if (
            thread is not None
            and thread.ident is not None
            and thread is not threading.current_thread()
        ):
            thread.join(timeout=30)
