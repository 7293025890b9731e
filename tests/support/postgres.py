"""A private PostgreSQL server for tests and benchmarks: Debian's binaries, a temp directory,
a free loopback port, stopped (and its directory deleted) when done.

When the server binaries are missing and we are root with apt-get, ``postgresql`` is installed
from the Debian packages first. initdb refuses to run as root, so as root the cluster belongs to
the ``postgres`` account that the package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be installed or started here; the message says why."""


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` that has initdb, or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def install_server() -> Path:
    """Find the server binaries, installing Debian's ``postgresql`` when they are missing."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries not found under /usr/lib/postgresql and this user cannot "
            "install them: apt-get install postgresql"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
    ):
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"`{' '.join(argv)}` failed: {proc.stderr[-1500:]}")
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("apt-get installed postgresql but no initdb was found")
    return bindir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One running cluster; ``url(db)`` gives a SQLAlchemy URL for a database in it."""

    root: Path
    port: int
    bindir: Path
    user: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        conn.autocommit = True
        return conn

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with contextlib.closing(self._admin()) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.closing(self._admin()) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            user=self.user,
            cwd=self.root,
        )
        if check and proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{tool} failed ({proc.returncode}): {proc.stderr[-1500:]}\n{tail}"
            )
        return proc


def start_server(max_connections: int = 120) -> PostgresServer:
    """initdb and start a cluster on a free loopback port in a new temp directory."""
    bindir = install_server()
    root = Path(tempfile.mkdtemp(prefix="triloop-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        account = pwd.getpwnam(user)
        os.chown(root, account.pw_uid, account.pw_gid)
    root.chmod(0o700)
    server = PostgresServer(root=root, port=_free_port(), bindir=bindir, user=user)
    try:
        data = root / "data"
        server._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
        options = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={max_connections} -c shared_buffers=128MB"
        )
        log = str(root / "server.log")
        server._run("pg_ctl", "-D", str(data), "-l", log, "-o", options, "-w", "-t", "60", "start")
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def running_server(max_connections: int = 120) -> Iterator[PostgresServer]:
    server = start_server(max_connections)
    try:
        yield server
    finally:
        server.stop()
