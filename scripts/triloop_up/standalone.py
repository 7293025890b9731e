"""``airflow standalone`` in its own session, its output in a log, its descendants tracked."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import deque
from typing import IO

import psutil

from .console import say
from .plan import Plan, StepFailed
from .processes import ProcessTree, alive, describe

COMPONENTS = ("scheduler", "dag-processor", "api-server", "triggerer")
CONSOLE_PATTERN = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")


class Standalone:
    """Start, watch and stop ``airflow standalone`` and everything it starts."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree: ProcessTree | None = None
        self.tail: deque[str] = deque(maxlen=400)
        self.components: dict[str, tuple[int, float]] = {}  # name -> (pid, create_time)
        self._stop_tracking = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.plan.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.plan.standalone_log.open("ab")
        started = time.strftime("%F %T %z")
        log.write(f"\n===== airflow standalone, started {started} =====\n".encode())
        self.proc = subprocess.Popen(
            [str(self.plan.bin_dir / "airflow"), "standalone"],
            env=self.plan.env,
            cwd=self.plan.repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group, away from the terminal
        )
        self.tree = ProcessTree(self.proc)
        self._threads = [
            threading.Thread(target=self._pump, args=(log,), name="standalone-log", daemon=True),
            threading.Thread(target=self._track, name="standalone-tracker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _pump(self, log: IO[bytes]) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with log:
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip()
                self.tail.append(line)
                if CONSOLE_PATTERN.search(line):  # the rest stays in the log
                    say(f"    | {line[:300]}")

    def _track(self) -> None:
        while not self._stop_tracking.is_set():
            self._remember_descendants()
            self._stop_tracking.wait(1.0)

    def _remember_descendants(self) -> None:
        assert self.tree is not None
        for child in self.tree.remember():  # `airflow scheduler`, `airflow api-server`, ...
            try:
                title = " ".join(child.cmdline()).replace("_", "-")  # api-server retitles itself
                for name in COMPONENTS:
                    if f"airflow {name}" in title:
                        self.components.setdefault(name, (child.pid, child.create_time()))
            except psutil.Error:
                continue

    def check(self) -> None:
        """Raise StepFailed if Airflow or one of its components has exited.

        ``airflow standalone`` neither restarts nor reports a component that dies, so a crashed
        scheduler would otherwise leave a UI that never runs anything.
        """
        if self.proc is None or self.proc.poll() is not None:
            raise StepFailed(self._died("airflow standalone", ""))
        for name, (pid, created) in list(self.components.items()):
            if not alive(pid, created):
                raise StepFailed(self._died(f"Airflow's {name}", f"{name} "))

    def _died(self, what: str, prefix: str) -> str:
        lines = [line for line in self.tail if line.startswith(prefix)][-30:]
        shown = "\n".join(f"    | {line}" for line in lines)
        return f"{what} stopped; its last lines:\n{shown}\n(full log: {self.plan.standalone_log})"

    def stop(self, grace: float) -> list[str]:
        """SIGTERM everything, SIGKILL what is left after ``grace`` s; return what survived."""
        if self.tree is None:
            return []
        self._remember_descendants()
        self._stop_tracking.set()
        self.tree.terminate(grace)
        for thread in self._threads:
            thread.join(timeout=2)
        return [describe(proc) for proc in self.tree.survivors()]
