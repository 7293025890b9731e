"""Signals, the wait while Airflow runs, clean-up and the exit code."""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

from .console import say
from .plan import StepFailed, make_plan
from .standalone import Standalone
from .steps import start


class Stop(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signum)


def main() -> int:
    """Start Triloop and keep it running; 130 after SIGINT, 0 after SIGTERM, 1 on failure."""
    started = time.monotonic()
    try:
        plan = make_plan(os.environ)
    except StepFailed as exc:
        say(f"make up: {exc}")
        return 1
    standalone = Standalone(plan)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    code = 0
    try:
        start(plan, standalone, started)
        while True:
            standalone.check()
            time.sleep(0.5)
    except Stop as stop:
        say(f"\n{stop.args[0]} received: stopping Triloop")
        code = 130 if stop.signum == signal.SIGINT else 0
    except StepFailed as exc:
        say(f"make up: {exc}")
        code = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping = time.monotonic()
        survivors = standalone.stop(plan.timeout("TRILOOP_UP_STOP_TIMEOUT", 10))
        if standalone.proc is not None:
            if survivors:
                say("WARNING: these processes survived SIGKILL:")
                for line in survivors:
                    say(f"    {line}")
                code = code or 1
            else:
                say(
                    f"stopped in {time.monotonic() - stopping:.1f} s: "
                    "no process started by make up is left running"
                )
    return code
