"""SandboxOperator on a "remote" engine over mutual TLS, credentials from an Airflow connection.

The remote engine is tests/support/tls_engine.TlsForwarder: mutual TLS on 127.0.0.1 (client
certificate required, signed by a throwaway CA) in front of the real local engine, standing in
for ``dockerd --tlsverify``. The local socket is hidden from the operator (``DOCKER_HOST`` points
nowhere), so every container below was created through the TLS connection.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from triloop_sandbox import SandboxOperator
from triloop_sandbox.engine import SandboxEngineHook, sandbox_docker_client
from triloop_sandbox.exceptions import SandboxEngineError, SandboxEngineUnreachable

from tests.support.tls_engine import Ca, Issued, TlsForwarder

pytestmark = pytest.mark.docker

CONN_ID = "triloop_sandbox_engine_test"
SERVER_NAME = "sandbox-host.test"  # a name only the second forwarder's certificate carries


@pytest.fixture(scope="module")
def ca() -> Ca:
    return Ca("triloop test CA")


@pytest.fixture(scope="module")
def client_cert(ca: Ca) -> Issued:
    return ca.issue("airflow-worker", server=False)


@pytest.fixture
def forwarder(docker_client: docker.DockerClient, ca: Ca, tmp_path: Path) -> Iterator[TlsForwarder]:
    server = ca.issue("sandbox-host", server=True, hosts=("127.0.0.1", "localhost"))
    with TlsForwarder(ca, server, tmp_path / "server-tls") as running:
        yield running


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Define the engine connection (AIRFLOW_CONN_..., JSON) and hide the local socket."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    def define(host: str, **extra: Any) -> None:
        conn = {"conn_type": "generic", "host": host, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))

    return define


def tls_extra(ca: Ca, client: Issued) -> dict[str, str]:
    return {
        "tls_ca_cert": ca.cert_pem,
        "tls_client_cert": client.cert_pem,
        "tls_client_key": client.key_pem,
    }


def containers_of(client: docker.DockerClient, run_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"io.triloop.run_id={run_id}"})


@pytest.fixture
def run_id() -> str:
    return f"itest-remote-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def operator_for(
    tmp_path: Path, out_dir: Path, sandbox_image: str, make_repo: Callable[..., Path]
) -> Callable[..., SandboxOperator]:
    repo = make_repo({"app/__init__.py": ""})

    def build(**kwargs: Any) -> SandboxOperator:
        defaults: dict[str, Any] = {
            "task_id": "remote_sandbox_test",
            "workspace": str(repo),
            "output_dir": str(out_dir),
            "workspace_root": str(tmp_path),
            "image": sandbox_image,
            "ticket_id": "T-7",
            "engine_conn_id": CONN_ID,
        }
        return SandboxOperator(**{**defaults, **kwargs})

    return build


def test_sandbox_runs_hardened_on_the_remote_engine_and_is_removed(
    docker_client: docker.DockerClient,
    forwarder: TlsForwarder,
    connect: Callable[..., None],
    ca: Ca,
    client_cert: Issued,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    connect(f"tcp://127.0.0.1:{forwarder.port}", **tls_extra(ca, client_cert))
    op = operator_for(entrypoint=["sh", "-c"], command=["echo started; sleep 6; echo last-line"])
    results: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(op.execute({"run_id": run_id}))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    attrs: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not attrs.get("State", {}).get("Running"):
        found = containers_of(docker_client, run_id)
        attrs = docker_client.api.inspect_container(found[0].id) if found else {}
        time.sleep(0.2)
    worker.join(timeout=120)

    assert attrs.get("State", {}).get("Running"), "the sandbox never ran"
    assert not errors, errors
    assert results == ["last-line"]
    assert op.hook.engine.base_url == f"https://127.0.0.1:{forwarder.port}"
    assert forwarder.forwarded >= 1 and forwarder.refused == []
    host, config = attrs["HostConfig"], attrs["Config"]
    assert host["NetworkMode"] == "none" and host["Privileged"] is False
    assert config["User"] == "10001:10001"
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert any(opt.startswith("no-new-privileges") for opt in host["SecurityOpt"])
    assert host["PidsLimit"] == 256 and host["NanoCpus"] == 1_000_000_000
    assert host["Memory"] == 2 * 1024**3 and "size=512m" in host["Tmpfs"]["/tmp"]
    assert config["Labels"]["io.triloop.ticket_id"] == "T-7"
    assert {m["Destination"] for m in attrs["Mounts"]} == {"/workspace", "/out"}
    assert not any("docker.sock" in m["Source"] for m in attrs["Mounts"])
    assert containers_of(docker_client, run_id) == []


def test_a_client_certificate_from_another_ca_is_refused_and_nothing_runs(
    docker_client: docker.DockerClient,
    forwarder: TlsForwarder,
    connect: Callable[..., None],
    ca: Ca,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    stranger = Ca("another CA").issue("airflow-worker", server=False)
    connect(f"tcp://127.0.0.1:{forwarder.port}", **tls_extra(ca, stranger))
    op = operator_for(entrypoint=["true"])

    with pytest.raises(
        SandboxEngineUnreachable,
        match=rf"'{CONN_ID}'.*TLS handshake failed: the engine refused this client",
    ):
        op.execute({"run_id": run_id})
    assert forwarder.forwarded == 0
    refused = forwarder.refusals()
    assert refused and "certificate" in refused[0].lower()
    assert containers_of(docker_client, run_id) == []


def test_the_forwarder_requires_a_client_certificate(
    forwarder: TlsForwarder, ca: Ca, client_cert: Issued, tmp_path: Path
) -> None:
    def ping(context: ssl.SSLContext) -> bytes:
        raw = socket.create_connection(("127.0.0.1", forwarder.port), timeout=10)
        with raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            return tls.recv(4096)

    without_cert = ssl.create_default_context(cadata=ca.cert_pem)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        ping(without_cert)
    assert len(forwarder.refusals()) == 1 and forwarder.forwarded == 0

    with_cert = ssl.create_default_context(cadata=ca.cert_pem)
    (tmp_path / "c.pem").write_text(client_cert.cert_pem)
    (tmp_path / "k.pem").write_text(client_cert.key_pem)
    with_cert.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    assert ping(with_cert).startswith(b"HTTP/1.1 200 OK")
    assert forwarder.forwarded == 1


def test_a_connection_without_tls_material_is_refused_at_execute(
    docker_client: docker.DockerClient,
    forwarder: TlsForwarder,
    connect: Callable[..., None],
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    connect(f"tcp://127.0.0.1:{forwarder.port}")
    op = operator_for(entrypoint=["true"])  # constructing it reads no connection

    with pytest.raises(SandboxEngineError, match=rf"'{CONN_ID}': extra.tls_ca_cert: missing"):
        op.execute({"run_id": run_id})
    assert forwarder.forwarded == 0 and forwarder.refused == []
    assert containers_of(docker_client, run_id) == []


def test_the_engine_host_name_is_checked_unless_tls_hostname_names_it(
    docker_client: docker.DockerClient,
    connect: Callable[..., None],
    ca: Ca,
    client_cert: Issued,
    tmp_path: Path,
) -> None:
    server = ca.issue("sandbox-host", server=True, hosts=(SERVER_NAME,))
    with TlsForwarder(ca, server, tmp_path / "named-tls") as named:
        connect(f"tcp://127.0.0.1:{named.port}", **tls_extra(ca, client_cert))
        ok, message = SandboxEngineHook(CONN_ID).test_connection()
        assert not ok and "TLS handshake failed" in message
        assert "IP address mismatch, certificate is not valid for '127.0.0.1'" in message

        connect(
            f"tcp://127.0.0.1:{named.port}", tls_hostname=SERVER_NAME, **tls_extra(ca, client_cert)
        )
        ok, message = SandboxEngineHook(CONN_ID).test_connection()
        assert ok, message
        assert message.startswith("Docker ")


def test_the_janitor_client_lists_sandboxes_through_the_engine_connection(
    docker_client: docker.DockerClient,
    forwarder: TlsForwarder,
    connect: Callable[..., None],
    ca: Ca,
    client_cert: Issued,
    sandbox_image: str,
) -> None:
    connect(f"tcp://127.0.0.1:{forwarder.port}", **tls_extra(ca, client_cert))
    label = f"io.triloop.test=remote-{uuid.uuid4().hex[:8]}"
    made = docker_client.containers.create(
        sandbox_image, ["true"], labels=dict([label.split("=")]), network_mode="none"
    )
    try:
        client = sandbox_docker_client(CONN_ID)
        try:
            seen = client.containers.list(all=True, filters={"label": label})
        finally:
            client.close()
    finally:
        made.remove(force=True)
    assert [c.id for c in seen] == [made.id]
    assert forwarder.forwarded >= 1
