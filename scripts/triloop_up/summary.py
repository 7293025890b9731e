"""The box printed once Triloop is up: where the UI is, how to log in, where the logs go."""

from __future__ import annotations

from collections import deque

from .console import say
from .plan import ADMIN_USER, Plan


def banner(plan: Plan, password: str, elapsed: float) -> None:
    all_admins = (plan.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS") or "").lower()
    login = (
        "none needed (all users are admins)"
        if all_admins == "true"
        else f"{ADMIN_USER} / {password}"
    )
    query = (
        "(TRILOOP_DB_URL)"
        if plan.env.get("TRILOOP_DB_URL")
        else f"sqlite3 {plan.factory_db} 'select * from tickets limit 10'"
    )
    rule = "=" * 78
    say(rule)
    say(f"Triloop is up ({elapsed:.0f} s)")
    say(f"  Airflow UI    {plan.ui_url}")
    say(f"  login         {login}")
    say(f"  factory DB    {plan.factory_db}")
    say(f"                {query}")
    say(f"  status        TRILOOP_HOME={plan.triloop_home} {plan.bin_dir / 'triloop'} status")
    say(f"  Airflow log   {plan.standalone_log}  (start-up steps: {plan.steps_log})")
    say("  stop          Ctrl-C (stops every process started here)")
    say(rule)
    say("recent Airflow output:")
    for line in log_tail(plan):
        say(f"    | {line[:160]}")


def log_tail(plan: Plan, lines: int = 10) -> deque[str]:
    try:
        with plan.standalone_log.open(errors="replace") as log:
            return deque((line.rstrip() for line in log), maxlen=lines)
    except OSError:
        return deque()
