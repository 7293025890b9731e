"""Stopping what ``make up`` started: a command's process group, or a whole process tree.

Task processes put themselves in process groups of their own, so signalling the group of
``airflow standalone`` is not enough: every descendant ever seen is remembered (pid and start
time, so a reused pid is never signalled) and signalled too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import psutil

from .console import say


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM a step's process group, SIGKILL it if it is still there 5 s later."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, signum)
        except OSError:
            return
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(proc.pid, 0)
        except OSError:
            return  # the group is empty


def _running(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def alive(pid: int, created: float) -> bool:
    """Whether the process ``pid`` that started at ``created`` still runs."""
    try:
        proc = psutil.Process(pid)
        return bool(proc.create_time() == created) and _running(proc)
    except psutil.Error:
        return False


def describe(proc: psutil.Process) -> str:
    try:
        argv = proc.cmdline() or [proc.name()]
    except psutil.Error:
        argv = ["?"]
    return f"pid {proc.pid} {' '.join(argv)[:120]}"


class ProcessTree:
    """A session leader and every descendant seen: pid -> create_time."""

    def __init__(self, leader: subprocess.Popen[bytes]) -> None:
        self.leader = leader
        self.seen: dict[int, float] = {leader.pid: psutil.Process(leader.pid).create_time()}

    def remember(self) -> list[psutil.Process]:
        """Record the leader's descendants as they are now; return its direct children."""
        try:
            parent = psutil.Process(self.leader.pid)
            direct = parent.children()
            children = parent.children(recursive=True)
        except psutil.Error:
            return []
        for child in children:
            with contextlib.suppress(psutil.Error):
                self.seen.setdefault(child.pid, child.create_time())
        return direct

    def survivors(self) -> list[psutil.Process]:
        """Live processes of the tree: descendants seen, the session, the process group."""
        found: dict[int, psutil.Process] = {}
        for pid, created in list(self.seen.items()):
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.create_time() == created:
                    found[pid] = proc
        leader = self.leader.pid
        for proc in psutil.process_iter():
            with contextlib.suppress(OSError, psutil.Error):
                if os.getsid(proc.pid) == leader or os.getpgid(proc.pid) == leader:
                    found[proc.pid] = proc
        return [proc for proc in found.values() if _running(proc)]

    def terminate(self, grace: float) -> None:
        """SIGTERM everything, SIGKILL what is left after ``grace`` s, reap the leader."""
        self._signal_all(signal.SIGTERM)
        if not self._wait_gone(grace):
            say(f"    still running after {grace:.0f} s; sending SIGKILL")
            self._signal_all(signal.SIGKILL)
            self._wait_gone(5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.leader.wait(timeout=5)

    def _signal_all(self, signum: signal.Signals) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.leader.pid, signum)
        for proc in self.survivors():
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signum)

    def _wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.leader.poll()  # reap our direct child so it does not linger as a zombie
            if not self.survivors():
                return True
            time.sleep(0.2)
        return not self.survivors()
