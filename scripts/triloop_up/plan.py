"""Where everything goes and the environment every child gets."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ADMIN_USER = "admin"
DEFAULT_PASSWORD = "admin"


class StepFailed(RuntimeError):
    """A start-up step failed; the message says which and what to do."""


@dataclass(frozen=True)
class Plan:
    """Folders, the API server's address and the children's environment."""

    repo: Path
    airflow_home: Path
    triloop_home: Path
    bin_dir: Path
    api_host: str
    api_port: int
    env: dict[str, str]

    @property
    def log_dir(self) -> Path:
        return self.airflow_home / "logs"

    @property
    def standalone_log(self) -> Path:
        return self.log_dir / "standalone.log"

    @property
    def steps_log(self) -> Path:
        return self.log_dir / "up.log"

    @property
    def passwords_file(self) -> Path:
        return Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])

    @property
    def ui_url(self) -> str:
        host = (
            "localhost" if self.api_host in {"0.0.0.0", "127.0.0.1", "::", "::1"} else self.api_host
        )
        return f"http://{host}:{self.api_port}"

    @property
    def probe_url(self) -> str:
        host = "127.0.0.1" if self.api_host in {"0.0.0.0", "localhost", "::"} else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def factory_db(self) -> str:
        return self.env.get("TRILOOP_DB_URL") or str(self.triloop_home / "triloop.db")

    def timeout(self, name: str, default: float) -> float:
        return float(self.env.get(name) or default)


def make_plan(environ: Mapping[str, str], repo: Path = REPO) -> Plan:
    """Build the children's environment: Triloop's defaults under whatever is already set."""
    env = dict(environ)
    bin_dir = Path(sys.executable).parent  # the venv's bin/, symlinks not resolved
    airflow_home = Path(env.get("AIRFLOW_HOME") or repo / ".airflow").absolute()
    triloop_home = Path(env.get("TRILOOP_HOME") or repo / ".triloop").absolute()
    defaults = {
        "AIRFLOW_HOME": str(airflow_home),
        "TRILOOP_HOME": str(triloop_home),
        "TRILOOP_PROJECT_ROOT": str(repo),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(repo / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        # Two cores: a few task processes at a time; the pools bound sandboxes further.
        "AIRFLOW__CORE__PARALLELISM": "8",
        # A fixed login for the demo (SimpleAuthManager: "user:role", passwords in a JSON file).
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
            airflow_home / "simple_auth_manager_passwords.json"
        ),
        # Loopback only by default: the login is fixed. Set AIRFLOW__API__HOST=0.0.0.0 to share.
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": "8080",
        # New and changed DAG files are picked up within seconds rather than minutes.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "15",
        "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "5",
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "10",
        # The scheduler loop creates asset-triggered and newly unpaused runs each heartbeat.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "30",
        "PYTHONUNBUFFERED": "1",
    }
    for key, value in defaults.items():
        if not env.get(key):
            env[key] = value
    try:
        api_port = int(env["AIRFLOW__API__PORT"])
    except ValueError as exc:
        raise StepFailed(f"AIRFLOW__API__PORT={env['AIRFLOW__API__PORT']!r} is not a port") from exc
    # Task processes reach the API server here; Airflow's default assumes port 8080.
    env.setdefault(
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://localhost:{api_port}/execution/"
    )
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", os.defpath)])
    return Plan(
        repo=repo,
        airflow_home=airflow_home,
        triloop_home=triloop_home,
        bin_dir=bin_dir,
        api_host=env["AIRFLOW__API__HOST"],
        api_port=api_port,
        env=env,
    )
