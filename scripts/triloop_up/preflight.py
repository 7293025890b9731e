"""Step 1 and the login: the Docker engine answers, the ports are free, the admin can log in."""

from __future__ import annotations

import json
import socket

import psutil

from .plan import ADMIN_USER, DEFAULT_PASSWORD, Plan, StepFailed


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
    wanted = [(plan.api_port, plan.api_host, "the Airflow UI/API server", "AIRFLOW__API__PORT")]
    for variable, default, purpose in (
        ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", 8793, "the task log server"),
        ("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", 8794, "the triggerer log server"),
    ):
        wanted.append((int(plan.env.get(variable) or default), "0.0.0.0", purpose, variable))
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
