"""The numbered start-up steps, from the Docker check to the summary box."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

from .commands import airflow, run, triloop
from .console import say, step
from .dags import activate_dags
from .plan import Plan, StepFailed
from .preflight import check_docker, check_ports, write_login
from .standalone import Standalone
from .summary import banner

TOTAL = 6


def wait_for_api(plan: Plan, standalone: Standalone, deadline: float) -> None:
    url = f"{plan.probe_url}/api/v2/monitor/health"
    while time.monotonic() < deadline:
        standalone.check()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise StepFailed(f"the API server did not answer on {url} in time")


def start(plan: Plan, standalone: Standalone, started: float) -> None:
    """Run steps 1 to 6; Airflow is up and the summary printed when this returns."""
    step(1, TOTAL, "checking Docker and ports")
    if plan.env.get("TRILOOP_UP_SKIP_DOCKER_CHECK") == "1":
        say("    Docker check skipped (TRILOOP_UP_SKIP_DOCKER_CHECK=1)")
    else:
        say(f"    {check_docker(plan)}")
    check_ports(plan)
    say(f"    ports free: {plan.api_port} (UI/API), task and triggerer log servers")

    step(2, TOTAL, f"preparing the Airflow database in {plan.airflow_home}")
    for folder in (plan.airflow_home, plan.log_dir, plan.triloop_home):
        folder.mkdir(parents=True, exist_ok=True)
    password = write_login(plan)
    airflow(plan, "db", "migrate")
    say("    airflow db migrate: done")
    run(plan, [sys.executable, str(plan.repo / "scripts/apply_airflow_settings.py")], show=True)

    step(3, TOTAL, f"preparing the factory database in {plan.triloop_home}")
    triloop(plan, "db-init")
    if plan.env.get("TRILOOP_UP_SKIP_ONBOARD") == "1":
        say("    onboarding skipped (TRILOOP_UP_SKIP_ONBOARD=1)")
    else:
        triloop(plan, "onboard", "--sample")

    step(4, TOTAL, f"starting Airflow (log: {plan.standalone_log})")
    standalone.start()
    say(f"    airflow standalone: pid {standalone.pid}")
    wait_for_api(plan, standalone, time.monotonic() + plan.timeout("TRILOOP_UP_READY_TIMEOUT", 300))
    say(
        f"    the Airflow UI is reachable at {plan.ui_url} "
        f"({time.monotonic() - started:.0f} s after start)"
    )

    step(5, TOTAL, "unpausing the Triloop DAGs and triggering discovery")
    deadline = time.monotonic() + plan.timeout("TRILOOP_UP_DAG_TIMEOUT", 180)
    for problem in activate_dags(plan, standalone, deadline):
        say(f"    WARNING: {problem}")

    step(6, TOTAL, "running")
    banner(plan, password, time.monotonic() - started)
