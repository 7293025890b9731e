"""One start-up command at a time: output to ``up.log``, failures explained, Ctrl-C obeyed."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from .console import say
from .plan import Plan, StepFailed
from .processes import kill_group


def run(plan: Plan, argv: Sequence[str], *, show: bool = False, timeout: float = 600) -> str:
    """Run one start-up command; its output goes to up.log (and the console if ``show``).

    The command gets a process group of its own, killed whole if we are interrupted.
    """
    command = " ".join(argv)
    with plan.steps_log.open("a") as log:
        log.write(f"\n$ {command}\n")
        log.flush()
        try:
            proc = subprocess.Popen(
                list(argv),
                env=plan.env,
                cwd=plan.repo,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise StepFailed(f"`{argv[0]}` is not installed ({exc}); run `make venv`") from exc
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill_group(proc)
            raise StepFailed(f"`{command}` did not finish within {timeout:.0f} s") from exc
        except BaseException:
            kill_group(proc)
            raise
        log.write(output)
    if proc.returncode != 0:
        tail = "\n".join("    " + line for line in output.splitlines()[-25:])
        raise StepFailed(
            f"`{command}` failed with exit code {proc.returncode}:\n{tail}\n"
            f"(full output in {plan.steps_log})"
        )
    if show:
        for line in output.splitlines():
            if line.strip():
                say(f"    {line}")
    return output


def airflow(plan: Plan, *args: str, timeout: float = 600) -> str:
    return run(plan, [str(plan.bin_dir / "airflow"), *args], timeout=timeout)


def triloop(plan: Plan, *args: str) -> None:
    run(plan, [str(plan.bin_dir / "triloop"), *args], show=True)
