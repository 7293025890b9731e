"""Egress sandboxes against the real engine: the allowlisting proxy is the only way out.

Each test creates its own upstream network (internal, so nothing on it reaches further) and two
HTTP server containers on it, then runs a script through ``SandboxOperator`` with only the first
server on its ``egress_allowlist``. Network rule: traffic is aimed only at loopback and at the
networks and containers these tests (or the operator under test) create.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import re
import socket
import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest
from airflow.providers.docker.exceptions import DockerContainerFailedException
from docker.errors import NotFound
from triloop.janitor.egress import remove_finished_egress
from triloop_sandbox import SandboxOperator, SandboxPolicyError
from triloop_sandbox.egress import EgressGateway

from tests.integration.conftest import SANDBOX_UID, give_to_sandbox

pytestmark = [pytest.mark.docker]
PORT = 8000
METER_KEYS = {
    "schema_version",
    "requests",
    "tokens",
    "prompt_tokens",
    "completion_tokens",
    "refused",
    "over_budget",
}
# An OpenAI-ish server: every answer is JSON naming the server, with a usage of 7 tokens.
SERVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"server": sys.argv[1], "path": self.path, "usage":
            {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""
# Inside the sandbox: plain HTTP through the proxy (urllib reads HTTP_PROXY), a raw CONNECT,
# direct TCP and name resolution.
PROBES = """
import errno, json, os, socket, urllib.error, urllib.request
def http(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return {"status": answer.status, "body": json.loads(answer.read())}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": json.loads(exc.read() or b"{}")}
    except OSError as exc:
        return {"error": str(exc)}
def tunnel(target):
    host, port = os.environ["HTTP_PROXY"].rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
        head = s.recv(65536).decode()
        if head.startswith("HTTP/1.1 200"):
            s.sendall(b"GET /tunnelled HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")
            while chunk := s.recv(65536):
                head += chunk.decode()
        return head
def tcp(ip):
    try:
        socket.create_connection((ip, 8000), timeout=6).close()
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))
def resolve(name):
    try:
        return sorted({a[4][0] for a in socket.getaddrinfo(name, 8000)})
    except socket.gaierror as exc:
        return f"gaierror {exc.errno}"
"""


@dataclass
class Upstream:
    network: str
    allowed: tuple[str, str]  # (container name, IP on the upstream network)
    other: tuple[str, str]


@pytest.fixture
def run_id(docker_client: docker.DockerClient) -> Iterator[str]:
    run_id = f"egress-{uuid.uuid4().hex[:12]}"
    yield run_id
    label = {"label": f"io.triloop.run_id={run_id}"}
    for leftover in docker_client.containers.list(all=True, filters=label):
        leftover.remove(force=True)  # only after a failed assertion
    for network in docker_client.networks.list(filters=label):
        network.remove()


@pytest.fixture
def upstream(
    docker_client: docker.DockerClient, sandbox_image: str, run_id: str
) -> Iterator[Upstream]:
    """The test's upstream network with two servers; a peer on it reaches both (control)."""
    labels = {"io.triloop.test": "egress", "io.triloop.egress_test": run_id}
    network = docker_client.networks.create(
        f"{run_id}-up", driver="bridge", internal=True, labels=labels
    )
    started: list[Any] = []
    try:
        for role in ("allowed", "other"):
            started.append(
                docker_client.containers.run(
                    sandbox_image,
                    ["-c", SERVER, role],
                    entrypoint=["python3"],
                    name=f"{run_id}-{role}",
                    network=network.name,
                    user=f"{SANDBOX_UID}:{SANDBOX_UID}",
                    labels=labels,
                    cap_drop=["ALL"],
                    read_only=True,
                    detach=True,
                )
            )
        addresses = []
        for server in started:
            server.reload()
            addresses.append(server.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"])
        names = [server.name for server in started]
        probe = (
            "import json, time, urllib.request as u\n"
            f"for _ in range(200):\n"
            "    try:\n"
            f"        print(json.dumps([json.load(u.urlopen(f'http://{{n}}:{PORT}/', timeout=2))"
            f"['server'] for n in {names!r}])); break\n"
            "    except OSError: time.sleep(0.1)\n"
        )
        peer = docker_client.containers.run(
            sandbox_image,
            ["-c", probe],
            entrypoint=["python3"],
            network=network.name,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            labels=labels,
            detach=True,
        )
        try:
            peer.wait(timeout=60)
            assert peer.logs().decode().strip() == '["allowed", "other"]', peer.logs().decode()
        finally:
            peer.remove(force=True)
        yield Upstream(network.name, (names[0], addresses[0]), (names[1], addresses[1]))
    finally:
        for server in started:
            server.remove(force=True)
        network.remove()


@pytest.fixture
def workspace_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for sub in ("workspace", "out"):
        (root / sub).mkdir(parents=True)
    give_to_sandbox(root / "workspace", root / "out")
    return root


@pytest.fixture
def egress_operator(
    workspace_root: Path, sandbox_image: str, upstream: Upstream
) -> Callable[..., SandboxOperator]:
    def build(script: str, **kwargs: Any) -> SandboxOperator:
        return SandboxOperator(
            task_id="egress",
            workspace=str(workspace_root / "workspace"),
            output_dir=str(workspace_root / "out"),
            workspace_root=str(workspace_root),
            image=sandbox_image,
            entrypoint=["python3", "-c"],
            command=[script],
            wall_clock_limit_s=120,
            **{
                "egress_allowlist": [f"{upstream.allowed[0]}:{PORT}"],
                "egress_upstream_network": upstream.network,
                **kwargs,
            },
        )

    return build


def host_ipv4(interface: str) -> str | None:
    """The IPv4 address of a host interface (SIOCGIFADDR), None if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", interface.encode()))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return None
            raise
    return socket.inet_ntoa(packed[20:24])


def leftovers(client: docker.DockerClient, run_id: str) -> list[str]:
    """Containers and networks labelled with this run: none may survive the run."""
    label = {"label": f"io.triloop.run_id={run_id}"}
    found = [c.name for c in client.containers.list(all=True, filters=label)]
    return found + [n.name for n in client.networks.list(filters=label)]


def meter_of(workspace_root: Path) -> dict[str, Any]:
    meter = dict(json.loads((workspace_root / "out" / "egress" / "usage.json").read_text()))
    print("meter:", json.dumps(meter))
    assert set(meter) == METER_KEYS and meter["schema_version"] == 1
    return meter


def test_only_the_allowlisted_server_is_reachable_and_only_through_the_proxy(
    docker_client: docker.DockerClient,
    egress_operator: Callable[..., SandboxOperator],
    upstream: Upstream,
    workspace_root: Path,
    run_id: str,
) -> None:
    (allowed, allowed_ip), (other, other_ip) = upstream.allowed, upstream.other
    script = (
        PROBES
        + f"""
def ipv6_addresses():
    try:
        return open("/proc/net/if_inet6").read().split("\\n")[:-1]
    except OSError:
        return []
try:
    open("/out/egress/usage.json", "a").close()
    meter_write = "written"
except OSError as exc:
    meter_write = errno.errorcode.get(exc.errno, str(exc))
routes = [line.split() for line in open("/proc/net/route").read().splitlines()[1:]]
print(json.dumps({{
    "allowed": http("http://{allowed}:{PORT}/v1/models"),
    "other": http("http://{other}:{PORT}/"),
    "other_by_ip": http("http://{other_ip}:{PORT}/"),
    "tunnel_allowed": tunnel("{allowed}:{PORT}"),
    "tunnel_other": tunnel("{other}:{PORT}"),
    "tcp": {{"allowed": tcp("{allowed_ip}"), "other": tcp("{other_ip}")}},
    "resolve": {{"allowed": resolve("{allowed}"), "other": resolve("{other}")}},
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "gateways": sorted({{row[2] for row in routes}}),
    "ipv6": ipv6_addresses(),
    "proxy": [os.environ.get(k) for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                                          "https_proxy")],
    "meter_write": meter_write,
}}))
"""
    )
    op = egress_operator(script)
    seen: dict[str, Any] = {}

    def inspect_while_running(container_id: str) -> None:
        seen["sandbox"] = docker_client.api.inspect_container(container_id)
        proxies = docker_client.containers.list(
            filters={"label": ["io.triloop.egress=1", f"io.triloop.run_id={run_id}"]}
        )
        seen["proxies"] = [docker_client.api.inspect_container(p.id) for p in proxies]
        network = next(iter(seen["sandbox"]["NetworkSettings"]["Networks"]))
        seen["network"] = docker_client.api.inspect_network(network)
        seen["bridge_ipv4"] = host_ipv4(f"br-{seen['network']['Id'][:12]}")
        start(container_id)

    start, op._on_start = op._on_start, inspect_while_running  # type: ignore[method-assign]
    found = json.loads(op.execute({"run_id": run_id}))
    print(json.dumps(found))
    assert leftovers(docker_client, run_id) == [], "sandbox, proxy or network left behind"

    assert found["allowed"]["status"] == 200 and found["allowed"]["body"]["server"] == "allowed"
    for key, target in (("other", other), ("other_by_ip", other_ip)):
        assert found[key]["status"] == 403, found[key]
        assert found[key]["body"]["error"]["type"] == "egress_refused"
        assert f"{target}:{PORT} is not on the egress allowlist" in str(found[key]["body"])
    assert found["tunnel_allowed"].startswith("HTTP/1.1 200 Connection established")
    assert '"server": "allowed"' in found["tunnel_allowed"]
    assert found["tunnel_other"].startswith("HTTP/1.1 403 Forbidden")
    # No route reaches the servers' network (timeout: the gateway address does not answer ARP)
    assert set(found["tcp"].values()) <= {"ENETUNREACH", "EHOSTUNREACH", "timeout"}, found["tcp"]
    assert all(str(r).startswith("gaierror") for r in found["resolve"].values()), found["resolve"]
    assert found["interfaces"] == ["eth0", "lo"]
    assert found["ipv6"] == [], "IPv6 is off: no link-local path to the host's bridge"
    proxy_url = found["proxy"][0]
    assert re.fullmatch(r"http://\d+\.\d+\.\d+\.\d+:3128", proxy_url) and set(found["proxy"]) == {
        proxy_url
    }
    assert found["meter_write"] == "EROFS", "the sandbox cannot rewrite its own meter"

    sandbox, network = seen["sandbox"], seen["network"]
    assert list(sandbox["NetworkSettings"]["Networks"]) == [network["Name"]]
    assert sandbox["HostConfig"]["NetworkMode"] == network["Name"]
    assert network["Internal"] is True and network["Labels"]["io.triloop.egress"] == "1"
    # Docker still gives the sandbox a default route via the network's gateway address, but
    # with inhibit_ipv4 nobody holds that address: not the host's bridge, not a container.
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    assert found["gateways"] == sorted({"00000000", socket.inet_aton(gateway)[::-1].hex().upper()})
    assert network["Options"]["com.docker.network.bridge.inhibit_ipv4"] == "true"
    assert seen["bridge_ipv4"] is None, "the host's bridge has no address on the network"
    held = [c["IPv4Address"].split("/")[0] for c in network["Containers"].values()]
    assert gateway not in held
    assert sandbox["HostConfig"]["Dns"] == ["127.0.0.1"]
    assert sandbox["HostConfig"]["CapDrop"] == ["ALL"] and sandbox["HostConfig"]["ReadonlyRootfs"]
    [proxy] = seen["proxies"]
    assert set(proxy["NetworkSettings"]["Networks"]) == {network["Name"], upstream.network}
    proxy_ip = proxy["NetworkSettings"]["Networks"][network["Name"]]["IPAddress"]
    assert proxy_url == f"http://{proxy_ip}:3128"
    host = proxy["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True
    assert host["SecurityOpt"] == ["no-new-privileges:true"] and not host["Privileged"]
    assert host["PidsLimit"] > 0 and host["Memory"] > 0 and "/tmp" in host["Tmpfs"]
    assert proxy["Config"]["User"] == f"{SANDBOX_UID}:{SANDBOX_UID}"
    assert not any("docker.sock" in m["Source"] for m in proxy["Mounts"])

    meter = meter_of(workspace_root)
    assert (meter["requests"], meter["tokens"], meter["over_budget"]) == (2, 7, "")
    assert (meter["prompt_tokens"], meter["completion_tokens"]) == (3, 4)
    assert sorted((r["host"], r["port"]) for r in meter["refused"]) == sorted(
        [(other, PORT), (other_ip, PORT), (other, PORT)]
    )


def test_token_budget_stops_calls_with_429_and_the_meter_says_so(
    docker_client: docker.DockerClient,
    egress_operator: Callable[..., SandboxOperator],
    upstream: Upstream,
    workspace_root: Path,
    run_id: str,
) -> None:
    url = f"http://{upstream.allowed[0]}:{PORT}/v1/chat/completions"
    script = PROBES + f"print(json.dumps([http({url!r}) for _ in range(4)]))\n"
    calls = json.loads(egress_operator(script, egress_max_tokens=10).execute({"run_id": run_id}))
    assert [call["status"] for call in calls] == [200, 200, 429, 429]  # 7, then 14 >= 10
    error = calls[2]["body"]["error"]
    assert error["type"] == "token_budget_exceeded"
    assert "token budget of 10 exhausted (14 used)" in error["message"]
    meter = meter_of(workspace_root)
    assert (meter["requests"], meter["tokens"], meter["over_budget"]) == (2, 14, "tokens")
    assert [r["reason"] for r in meter["refused"]] == [error["message"]] * 2
    assert leftovers(docker_client, run_id) == []


def test_a_failing_sandbox_still_takes_its_proxy_and_network_down(
    docker_client: docker.DockerClient,
    egress_operator: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    with pytest.raises(DockerContainerFailedException):
        egress_operator("raise SystemExit(3)").execute({"run_id": run_id})
    assert leftovers(docker_client, run_id) == []


def test_a_missing_upstream_network_fails_before_anything_starts(
    docker_client: docker.DockerClient,
    egress_operator: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    op = egress_operator("print('{}')", egress_upstream_network=f"{run_id}-missing")
    with pytest.raises(SandboxPolicyError, match=r"egress_upstream_network .*does not exist"):
        op.execute({"run_id": run_id})
    assert leftovers(docker_client, run_id) == []


def test_janitor_removes_a_gateway_no_running_sandbox_uses(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    upstream: Upstream,
    workspace_root: Path,
    run_id: str,
) -> None:
    labels = {"io.triloop.run_id": run_id, "io.triloop.dag_id": "egress-janitor"}
    gateway = EgressGateway(
        docker_client.api,
        image=sandbox_image,
        allowlist=[f"{upstream.allowed[0]}:{PORT}"],
        output_dir=str(workspace_root / "out"),
        labels=labels,
        upstream_network=upstream.network,
    )
    later = datetime.now(UTC) + timedelta(minutes=10)

    def janitor(now: datetime) -> list[str]:  # scoped to this run: other gateways may be live
        return remove_finished_egress(docker_client, now, labels=[f"io.triloop.run_id={run_id}"])

    with gateway:  # a worker that died here would leave the proxy and network behind
        sandbox = docker_client.containers.run(
            sandbox_image,
            ["-c", "import time; time.sleep(60)"],
            entrypoint=["python3"],
            network=gateway.network,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            labels={**labels, "io.triloop.sandbox": "1"},
            detach=True,
        )
        try:
            assert janitor(later) == [], "a running sandbox still uses the gateway"
            sandbox.remove(force=True)
            assert janitor(datetime.now(UTC)) == [], "a young gateway is spared"
            removed = janitor(later)
        finally:
            with contextlib.suppress(NotFound):
                sandbox.remove(force=True)
        assert sorted(removed) == sorted([gateway.proxy_name, gateway.network])
        assert leftovers(docker_client, run_id) == []
    # The gateway's own teardown tolerated what the janitor had already removed.
    assert leftovers(docker_client, run_id) == []
