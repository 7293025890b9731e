"""Run the Triloop factory on this machine (``make up``).

Steps, each printed as it runs:

1. check that the Docker engine answers (every scanner and harness runs in a sandbox container)
   and that the ports Airflow needs are free;
2. ``airflow db migrate`` (SQLite in ``AIRFLOW_HOME``), then apply ``airflow_settings.yaml``;
3. ``triloop db-init`` and ``triloop onboard --sample`` (both idempotent);
4. ``airflow standalone`` in its own session, its output in ``AIRFLOW_HOME/logs/standalone.log``;
5. once the API server answers: unpause the four Triloop DAGs (waiting until the DAG processor has
   parsed them) and trigger ``triloop_discovery`` once, so work starts at once;
6. wait. Ctrl-C (SIGINT) or SIGTERM stops every process started here: SIGTERM to the whole
   process group and to every descendant seen (task processes make groups of their own), SIGKILL
   after ``TRILOOP_UP_STOP_TIMEOUT`` seconds (10), then a check that none survived. Exit code 130
   after SIGINT, 0 after SIGTERM, 1 when a step fails or Airflow dies.

Every ``AIRFLOW__*`` setting below is a default: a variable already in the environment wins, and
so do ``AIRFLOW_HOME`` and ``TRILOOP_HOME``. ``TRILOOP_UP_SKIP_ONBOARD=1`` skips step 3's onboarding
and ``TRILOOP_UP_SKIP_DOCKER_CHECK=1`` step 1's Docker check (tests of this script only).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

try:
    import psutil
except ImportError:  # run with a Python outside the project's venv
    sys.exit("scripts/up.py needs the project's venv: run `make up`")

REPO = Path(__file__).resolve().parents[1]
TRILOOP_DAGS = ("triloop_discovery", "triloop_execution", "triloop_governance", "triloop_janitor")
TRIGGERED_DAG = "triloop_discovery"
ADMIN_USER = "admin"
DEFAULT_PASSWORD = "admin"
COMPONENTS = ("scheduler", "dag-processor", "api-server", "triggerer")
CONSOLE_PATTERN = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")


class StepFailed(RuntimeError):
    """A start-up step failed; the message says which and what to do."""


class Stop(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class Plan:
    """Where everything goes and the environment every child gets."""

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
        url = self.env.get("TRILOOP_DB_URL")
        return url if url else str(self.triloop_home / "triloop.db")

    def timeout(self, name: str, default: float) -> float:
        return float(self.env.get(name) or default)


def make_plan(environ: Mapping[str, str], repo: Path = REPO, bin_dir: Path | None = None) -> Plan:
    """Build the children's environment: Triloop's defaults under whatever is already set."""
    env = dict(environ)
    bin_dir = bin_dir or Path(sys.executable).parent  # the venv's bin/, symlinks not resolved
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
    api_host = env["AIRFLOW__API__HOST"]
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
        api_host=api_host,
        api_port=api_port,
        env=env,
    )


# --------------------------------------------------------------------------- console


def say(message: str = "") -> None:
    print(message, flush=True)


def step(number: int, total: int, title: str) -> None:
    say(f"==> [{number}/{total}] {title}")


# --------------------------------------------------------------------------- preflight


def check_docker(plan: Plan) -> str:
    """Return a one-line description of the engine, or raise StepFailed saying how to fix it."""
    import docker  # the Docker SDK from requirements.txt; honours DOCKER_HOST and TLS variables

    where = plan.env.get("DOCKER_HOST") or "the local socket (DOCKER_HOST unset)"
    try:
        client = docker.DockerClient.from_env(timeout=5, environment=plan.env)
        client.ping()
        version = client.version().get("Version", "?")
    except Exception as exc:
        raise StepFailed(
            f"Docker is not reachable at {where}: {exc}\n"
            "Triloop runs every scanner and coding agent in a sandbox container, so it needs a\n"
            "Docker engine. Start it (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at\n"
            "one (DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for a remote engine), then run\n"
            "`make up` again."
        ) from exc
    image = plan.env.get("TRILOOP_SANDBOX_IMAGE") or "triloop-sandbox:latest"
    try:
        client.images.get(image)
        image_note = f"sandbox image {image} present"
    except Exception:
        image_note = f"WARNING: sandbox image {image} not found; build it with `make image`"
    finally:
        client.close()
    return f"Docker {version} at {where}; {image_note}"


def _port_owner(port: int) -> str:
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid is None:
                    return "another process"
                proc = psutil.Process(conn.pid)
                command = " ".join(" ".join(proc.cmdline()).split())[:100]
                return f"pid {conn.pid} ({command or proc.name()})"
    except (psutil.Error, OSError):
        pass
    return "another process"


def check_ports(plan: Plan) -> None:
    """Refuse to start when a port the components listen on is taken, naming who holds it."""
    wanted = [
        (plan.api_port, plan.api_host, "the Airflow UI/API server", "AIRFLOW__API__PORT"),
        (
            int(plan.env.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT") or 8793),
            "0.0.0.0",
            "the task log server",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
        ),
        (
            int(plan.env.get("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT") or 8794),
            "0.0.0.0",
            "the triggerer log server",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
        ),
    ]
    problems = []
    for port, host, purpose, variable in wanted:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                problems.append(
                    f"port {port} ({purpose}) is taken by {_port_owner(port)}; stop it or run "
                    f"`{variable}=<free port> make up`"
                )
    if problems:
        raise StepFailed("\n".join(problems))


def write_login(plan: Plan) -> str:
    """Make sure the admin user has a password file entry; return the password that works."""
    path = plan.passwords_file
    passwords: dict[str, str] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text() or "{}")
            passwords = {str(k): str(v) for k, v in loaded.items()}
        except (ValueError, AttributeError) as exc:
            raise StepFailed(f"{path} is not a JSON object of user: password ({exc})") from exc
    if ADMIN_USER not in passwords:
        passwords[ADMIN_USER] = DEFAULT_PASSWORD
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords) + "\n")
        path.chmod(0o600)
    return passwords[ADMIN_USER]


# --------------------------------------------------------------------------- steps


def run(plan: Plan, argv: Sequence[str], *, show: bool = False, timeout: float = 600) -> str:
    """Run one start-up command; its output goes to up.log (and the console if ``show``).

    The command gets a process group of its own, killed whole if we are interrupted.
    """
    with plan.steps_log.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
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
            _kill_group(proc)
            raise StepFailed(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s") from exc
        except BaseException:
            _kill_group(proc)
            raise
        log.write(output)
    if proc.returncode != 0:
        tail = "\n".join("    " + line for line in output.splitlines()[-25:])
        raise StepFailed(
            f"`{' '.join(argv)}` failed with exit code {proc.returncode}:\n{tail}\n"
            f"(full output in {plan.steps_log})"
        )
    if show:
        for line in output.splitlines():
            if line.strip():
                say(f"    {line}")
    return output


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM a step's process group, SIGKILL it if it is still there 5 s later."""
    for signum, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, signum)
        except OSError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(proc.pid, 0)
        except OSError:
            return  # the group is empty


def airflow(plan: Plan, *args: str, show: bool = False, timeout: float = 600) -> str:
    return run(plan, [str(plan.bin_dir / "airflow"), *args], show=show, timeout=timeout)


def triloop(plan: Plan, *args: str) -> str:
    return run(plan, [str(plan.bin_dir / "triloop"), *args], show=True)


def json_rows(output: str) -> list[dict[str, object]]:
    """The JSON list an ``airflow ... -o json`` command printed among its log lines."""
    for line in reversed(output.splitlines()):
        if line.startswith("[{") or line.strip() == "[]":
            try:
                rows = json.loads(line)
            except json.JSONDecodeError:
                continue
            return [row for row in rows if isinstance(row, dict)]
    return []


def registered_dags(plan: Plan) -> dict[str, bool]:
    """dag_id -> is_paused for the DAGs serialized in the metadata database."""
    out = airflow(plan, "dags", "list", "-o", "json", timeout=120)
    return {
        str(row["dag_id"]): str(row.get("is_paused")).lower() == "true"
        for row in json_rows(out)
        if "dag_id" in row
    }


def import_errors(plan: Plan) -> list[str]:
    """One line per DAG file that failed to import: the file and the error's last line."""
    out = airflow(plan, "dags", "list-import-errors", "-o", "json", timeout=120)
    lines = []
    for row in json_rows(out):
        error = str(row.get("error") or "").strip().splitlines() or ["?"]
        lines.append(f"{row.get('filepath')}: {error[-1]}")
    return lines


def activate_dags(plan: Plan, standalone: Standalone, deadline: float) -> list[str]:
    """Unpause the Triloop DAGs once parsed, trigger discovery once; return problems found."""
    known: dict[str, bool] = {}
    while True:
        known = registered_dags(plan)
        missing = [dag for dag in TRILOOP_DAGS if dag not in known]
        if not missing or time.monotonic() > deadline:
            break
        say(f"    waiting for the DAG processor to parse: {', '.join(missing)}")
        standalone.check()
        time.sleep(3)
    problems = []
    for dag_id in TRILOOP_DAGS:
        if dag_id not in known:
            problems.append(f"{dag_id} is not in the metadata database, so it was not unpaused")
        elif known[dag_id]:
            airflow(plan, "dags", "unpause", dag_id, timeout=120)
            say(f"    unpaused {dag_id}")
        else:
            say(f"    {dag_id} already unpaused")
    if TRIGGERED_DAG in known:
        airflow(plan, "dags", "trigger", TRIGGERED_DAG, timeout=120)
        say(f"    triggered {TRIGGERED_DAG}")
    if problems:
        errors = import_errors(plan)
        problems.append(
            "DAG import errors (fix the file; the DAG processor re-reads it within seconds):"
            + "".join(f"\n      {line}" for line in errors or ["none reported yet"])
        )
    return problems


# --------------------------------------------------------------------------- Airflow itself


class Standalone:
    """``airflow standalone`` in its own session, its output in a log, its descendants tracked."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: dict[int, float] = {}  # pid -> create_time of every descendant ever seen
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
        self.seen[self.proc.pid] = psutil.Process(self.proc.pid).create_time()
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

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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
        try:
            parent = psutil.Process(self.pid)
            direct = parent.children()
            children = parent.children(recursive=True)
        except psutil.Error:
            direct, children = [], []
        for child in children:
            try:
                self.seen.setdefault(child.pid, child.create_time())
            except psutil.Error:
                continue
        for child in direct:  # `airflow scheduler`, `airflow api-server`, ...
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
        if not self.running():
            raise StepFailed(self._died("airflow standalone", ""))
        for name, (pid, created) in list(self.components.items()):
            if not _alive(pid, created):
                raise StepFailed(self._died(f"Airflow's {name}", f"{name} "))

    def _died(self, what: str, prefix: str) -> str:
        lines = [line for line in self.tail if line.startswith(prefix)][-30:]
        shown = "\n".join(f"    | {line}" for line in lines)
        return f"{what} stopped; its last lines:\n{shown}\n(full log: {self.plan.standalone_log})"

    def survivors(self) -> list[psutil.Process]:
        """Live processes this run started: descendants seen, the session, the process group."""
        found: dict[int, psutil.Process] = {}
        for pid, created in list(self.seen.items()):
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created:
                    found[pid] = proc
            except psutil.Error:
                continue
        for proc in psutil.process_iter():
            try:
                if os.getsid(proc.pid) == self.pid or os.getpgid(proc.pid) == self.pid:
                    found[proc.pid] = proc
            except (OSError, psutil.Error):
                continue
        alive = []
        for proc in found.values():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.Error:
                continue
        return alive

    def stop(self, grace: float) -> list[str]:
        """SIGTERM everything, SIGKILL what is left after ``grace`` s; return what survived."""
        if self.proc is None:
            return []
        self._remember_descendants()
        self._stop_tracking.set()
        self._signal_all(signal.SIGTERM)
        if not self._wait_gone(grace):
            say(f"    still running after {grace:.0f} s; sending SIGKILL")
            self._signal_all(signal.SIGKILL)
            self._wait_gone(5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for thread in self._threads:
            thread.join(timeout=2)
        return [f"pid {p.pid} {' '.join(_cmdline(p))[:120]}" for p in self.survivors()]

    def _signal_all(self, signum: signal.Signals) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signum)
        for proc in self.survivors():
            try:
                proc.send_signal(signum)
            except psutil.Error:
                continue

    def _wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc is not None:
                self.proc.poll()  # reap our direct child so it does not linger as a zombie
            if not self.survivors():
                return True
            time.sleep(0.2)
        return not self.survivors()


def _alive(pid: int, created: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return bool(proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline() or [proc.name()]
    except psutil.Error:
        return ["?"]


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


# --------------------------------------------------------------------------- main


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signum)


def start(plan: Plan, standalone: Standalone, started: float) -> None:
    total = 6
    step(1, total, "checking Docker and ports")
    if plan.env.get("TRILOOP_UP_SKIP_DOCKER_CHECK") == "1":
        say("    Docker check skipped (TRILOOP_UP_SKIP_DOCKER_CHECK=1)")
    else:
        say(f"    {check_docker(plan)}")
    check_ports(plan)
    say(f"    ports free: {plan.api_port} (UI/API), task and triggerer log servers")

    step(2, total, f"preparing the Airflow database in {plan.airflow_home}")
    for folder in (plan.airflow_home, plan.log_dir, plan.triloop_home):
        folder.mkdir(parents=True, exist_ok=True)
    password = write_login(plan)
    airflow(plan, "db", "migrate")
    say("    airflow db migrate: done")
    run(plan, [sys.executable, str(plan.repo / "scripts/apply_airflow_settings.py")], show=True)

    step(3, total, f"preparing the factory database in {plan.triloop_home}")
    triloop(plan, "db-init")
    if plan.env.get("TRILOOP_UP_SKIP_ONBOARD") == "1":
        say("    onboarding skipped (TRILOOP_UP_SKIP_ONBOARD=1)")
    else:
        triloop(plan, "onboard", "--sample")

    step(4, total, f"starting Airflow (log: {plan.standalone_log})")
    standalone.start()
    say(f"    airflow standalone: pid {standalone.pid}")
    wait_for_api(plan, standalone, time.monotonic() + plan.timeout("TRILOOP_UP_READY_TIMEOUT", 300))
    say(
        f"    the Airflow UI is reachable at {plan.ui_url} "
        f"({time.monotonic() - started:.0f} s after start)"
    )

    step(5, total, "unpausing the Triloop DAGs and triggering discovery")
    deadline = time.monotonic() + plan.timeout("TRILOOP_UP_DAG_TIMEOUT", 180)
    problems = activate_dags(plan, standalone, deadline)
    for problem in problems:
        say(f"    WARNING: {problem}")

    step(6, total, "running")
    banner(plan, password, time.monotonic() - started)


def banner(plan: Plan, password: str, elapsed: float) -> None:
    all_admins = (plan.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS") or "").lower()
    login = (
        "none needed (all users are admins)"
        if all_admins == "true"
        else (f"{ADMIN_USER} / {password}")
    )
    factory_db = plan.factory_db
    query = (
        f"sqlite3 {factory_db} 'select * from tickets limit 10'"
        if not plan.env.get("TRILOOP_DB_URL")
        else "(TRILOOP_DB_URL)"
    )
    rule = "=" * 78
    say(rule)
    say(f"Triloop is up ({elapsed:.0f} s)")
    say(f"  Airflow UI    {plan.ui_url}")
    say(f"  login         {login}")
    say(f"  factory DB    {factory_db}")
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


def main() -> int:
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


if __name__ == "__main__":
    sys.exit(main())
