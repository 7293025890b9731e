"""Suite-wide setup: an isolated Airflow home and Triloop home, and the plugins on sys.path.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test module imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import docker
import pytest
from docker.errors import DockerException

ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="triloop-tests-"))

os.environ.setdefault("AIRFLOW_HOME", str(_SESSION_HOME / "airflow"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("TRILOOP_HOME", str(_SESSION_HOME / "triloop"))
# Tests never reach a package index: pip (the wheelhouse staging of discovery and governance
# runs `pip download` on the host) finds only what a test puts in PIP_FIND_LINKS. The image
# builds below are bootstrapping, not tests: they get the caller's environment back.
_IMAGE_BUILD_ENV = dict(os.environ)
os.environ["PIP_NO_INDEX"] = "1"
for extra in (ROOT / "plugins", ROOT / "dags"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@pytest.fixture
def triloop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh TRILOOP_HOME (SQLite DB, forge, workspaces) for one test."""
    home = tmp_path / "triloop"
    monkeypatch.setenv("TRILOOP_HOME", str(home))
    monkeypatch.delenv("TRILOOP_DB_URL", raising=False)
    yield home


@pytest.fixture
def db_backend() -> str:
    """The database ``db_url`` and ``app`` use; a module overrides it to run on both."""
    return "sqlite"


@pytest.fixture
def db_url(db_backend: str, triloop_home: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty Triloop database of the ``db_backend`` kind for one test."""
    from triloop.store.db import engine_for

    if db_backend == "sqlite":
        url = f"sqlite:///{triloop_home / 'triloop.db'}"
        yield url
        engine_for(url).dispose()
        return
    server = request.getfixturevalue("postgres_server")
    name = server.create_database()
    url = server.url(name)
    yield url
    engine_for(url).dispose()
    server.drop_database(name)


@pytest.fixture
def app(triloop_home: Path, db_url: str):  # type: ignore[no-untyped-def]
    from triloop.bootstrap import bootstrap

    return bootstrap(home=triloop_home, db_url=db_url)


# PostgreSQL policy, as for Docker: a server that cannot be installed or started fails the
# test (always under CI=true); TRILOOP_SKIP_POSTGRES=1 skips these tests on a laptop.
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    from tests.support.postgres import PostgresUnavailable, start_server

    try:
        server = start_server()
    except PostgresUnavailable as exc:
        unavailable(f"PostgreSQL unavailable: {exc}", "PostgreSQL", "TRILOOP_SKIP_POSTGRES")
    try:
        yield server
    finally:
        server.stop()


# Docker policy: an unreachable engine fails the test (always under CI=true); a developer
# without Docker may set TRILOOP_SKIP_DOCKER=1 to skip these tests locally.
def require_docker() -> docker.DockerClient:
    """A client for a reachable engine, else fail (CI or default) or skip (opt-in locally)."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except (DockerException, OSError) as exc:
        unavailable(f"Docker engine unreachable: {exc}", "Docker", "TRILOOP_SKIP_DOCKER")


def unavailable(reason: str, what: str, skip_variable: str) -> NoReturn:
    """Fail (always under CI=true, and by default) or skip (opted in with ``skip_variable``)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: these tests need {what})")
    if os.environ.get(skip_variable) == "1":
        pytest.skip(f"{reason} ({skip_variable}=1)")
    pytest.fail(f"{reason} (set {skip_variable}=1 to skip {what} tests locally)")


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    return require_docker()


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient) -> str:
    """Build (or confirm) the sandbox image; returns its content-hash tag."""
    script = ROOT / "scripts" / "build_sandbox_image.py"
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        env=_IMAGE_BUILD_ENV,
    )
    if proc.returncode != 0:
        pytest.fail(f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    image = docker_client.images.get("triloop-sandbox:latest")
    return f"triloop-sandbox:{image.labels['io.triloop.sandbox.content-hash']}"


@pytest.fixture(scope="session")
def mini_swe_agent_image(docker_client: docker.DockerClient) -> str:
    """Build (or confirm) triloop-sandbox-mini-swe-agent with the project's build script (the
    default image first); returns its content-hash tag. A current image takes about a second."""
    script = ROOT / "scripts" / "build_sandbox_image.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--harness", "mini-swe-agent"],
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
        env=_IMAGE_BUILD_ENV,
    )
    if proc.returncode != 0:
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        pytest.fail(f"{script.name} --harness mini-swe-agent failed:\n{tail}")
    repo = "triloop-sandbox-mini-swe-agent"
    label = docker_client.images.get(f"{repo}:latest").labels["io.triloop.sandbox.content-hash"]
    return label if label.startswith(f"{repo}:") else f"{repo}:{label}"
