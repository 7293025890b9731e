"""Run the Triloop factory on this machine (``make up``).

Steps, each printed as it runs:

1. check that the Docker engine answers (every scanner and harness runs in a sandbox container)
   and that the ports Airflow needs are free;
2. ``airflow db migrate`` (SQLite in ``AIRFLOW_HOME``), then apply ``airflow_settings.yaml``;
3. ``triloop db-init`` and ``triloop onboard --sample`` (both idempotent);
4. ``airflow standalone`` in its own session, its output in ``AIRFLOW_HOME/logs/standalone.log``;
5. once the API server answers: unpause the five Triloop DAGs (discovery, execution, governance,
   verification, janitor; waiting until the DAG processor has parsed them) and trigger
   ``triloop_discovery`` once, so work starts at once;
6. wait. Ctrl-C (SIGINT) or SIGTERM stops every process started here: SIGTERM to the whole
   process group and to every descendant seen (task processes make groups of their own), SIGKILL
   after ``TRILOOP_UP_STOP_TIMEOUT`` seconds (10), then a check that none survived. Exit code 130
   after SIGINT, 0 after SIGTERM, 1 when a step fails or Airflow dies.

Every ``AIRFLOW__*`` setting below is a default: a variable already in the environment wins, and
so do ``AIRFLOW_HOME`` and ``TRILOOP_HOME``. ``TRILOOP_UP_SKIP_ONBOARD=1`` skips step 3's onboarding
and ``TRILOOP_UP_SKIP_DOCKER_CHECK=1`` step 1's Docker check (tests of this script only).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The package lives beside this file; find it however Python was started (even with -P).
_SCRIPTS = str(Path(__file__).resolve().parent)
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)

try:
    from triloop_up.main import main
except ModuleNotFoundError as exc:  # run with a Python outside the project's venv
    if exc.name != "psutil":
        raise
    sys.exit("scripts/up.py needs the project's venv: run `make up`")

if __name__ == "__main__":
    sys.exit(main())
