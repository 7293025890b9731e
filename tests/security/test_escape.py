"""Escape suite: every attempt to leave the sandbox fails and the host is left unchanged.

Each attempt runs inside a container that ``SandboxOperator`` itself creates against the real
engine, so the suite exercises the hardened settings exactly as production tasks get them. The
script under test prints one JSON line last; the operator returns that line. Network rule: the
tests aim traffic only at loopback and at the network and server container they create.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from airflow.sdk.exceptions import AirflowFailException
from triloop_sandbox import SandboxOperator, SandboxTimeout
from triloop_sandbox.exceptions import SandboxOutOfMemory

from tests.integration.conftest import SANDBOX_UID, give_to_sandbox

pytestmark = [pytest.mark.docker]

RunScript = Callable[..., dict[str, Any]]

# A DNS query (id 0x7431, recursion desired, one question, type A, class IN) built by hand so
# the sandbox can ask resolvers on loopback without going through /etc/resolv.conf, whose
# nameserver is an address these tests must not aim at.
DNS_PROBE = """
import errno, socket
def dns_query(name):
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
    return bytes.fromhex("743101000001000000000000") + qname + bytes.fromhex("00010001")
def ask(server, name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.connect((server, 53))
        s.send(dns_query(name))
        return "answer:" + s.recv(512).hex()
    except socket.timeout:
        return "timeout"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))
    finally:
        s.close()
"""


def containers_of(client: docker.DockerClient, run_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"io.triloop.run_id={run_id}"})


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under root with its (size, mtime_ns): what the host sees."""
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.fixture
def run_id(docker_client: docker.DockerClient) -> Iterator[str]:
    run_id = f"escape-{uuid.uuid4().hex[:12]}"
    yield run_id
    for leftover in containers_of(docker_client, run_id):  # only on a failed assertion
        leftover.remove(force=True)


@pytest.fixture
def workspace_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for sub in ("workspace", "out"):
        (root / sub).mkdir(parents=True)
    (root / "workspace" / "README").write_text("read-only input\n")
    give_to_sandbox(root / "workspace", root / "out")
    return root


@pytest.fixture
def operator_for(workspace_root: Path, sandbox_image: str) -> Callable[..., SandboxOperator]:
    def build(script: str, **kwargs: Any) -> SandboxOperator:
        return SandboxOperator(
            task_id="escape",
            workspace=str(workspace_root / "workspace"),
            output_dir=str(workspace_root / "out"),
            workspace_root=str(workspace_root),
            image=sandbox_image,
            entrypoint=["python3", "-c"],
            command=[script],
            **{"wall_clock_limit_s": 60, **kwargs},
        )

    return build


@pytest.fixture
def run_script(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> RunScript:
    """Run a Python script in the sandbox; return its last line as JSON; check the cleanup."""

    def run(script: str, **kwargs: Any) -> dict[str, Any]:
        line = operator_for(script, **kwargs).execute({"run_id": run_id})
        assert containers_of(docker_client, run_id) == [], "the sandbox container was left"
        found = dict(json.loads(line))
        print(json.dumps(found))  # shown by pytest -rP / on failure: what the sandbox saw
        return found

    return run


def test_the_docker_socket_is_absent_and_no_engine_api_answers(run_script: RunScript) -> None:
    found = run_script("""
import errno, json, os, socket, stat
paths = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
         "/var/run/docker", "/run/docker"]
sockets = []
for top in ("/run", "/var/run", "/tmp", "/workspace", "/out", "/dev"):
    for dirpath, dirs, files in os.walk(top):
        for name in files + dirs:
            path = os.path.join(dirpath, name)
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                sockets.append(path)
tcp = {}
for host, port in (("127.0.0.1", 2375), ("127.0.0.1", 2376), ("::1", 2375)):
    try:
        socket.create_connection((host, port), timeout=2).close()
        tcp[f"{host}:{port}"] = "connected"
    except OSError as exc:
        tcp[f"{host}:{port}"] = errno.errorcode.get(exc.errno, str(exc))
mountinfo = open("/proc/self/mountinfo").read()
print(json.dumps({
    "present": [p for p in paths if os.path.lexists(p)],
    "sockets": sockets,
    "mounted": [w for w in ("docker.sock", "containerd") if w in mountinfo],
    "tcp": tcp,
    "env": sorted(k for k in os.environ if k.startswith("DOCKER")),
}))
""")
    assert found["present"] == [] and found["sockets"] == [] and found["mounted"] == []
    assert set(found["tcp"].values()) <= {"ECONNREFUSED", "EADDRNOTAVAIL"}, found["tcp"]
    assert found["env"] == []


def test_network_none_leaves_only_loopback_and_no_route_or_resolver(
    run_script: RunScript,
) -> None:
    found = run_script(
        DNS_PROBE
        + """
import json, os, socket
def routes(path, device_field):
    rows = [line.split() for line in open(path).read().splitlines()]
    return [row for row in rows if row and row[device_field] not in ("lo", "Iface")]
nameservers = [line.split()[1] for line in open("/etc/resolv.conf")
               if line.startswith("nameserver")]
print(json.dumps({
    "interfaces": sorted(os.listdir("/sys/class/net")),
    "routes": routes("/proc/net/route", 0),
    "routes6": routes("/proc/net/ipv6_route", -1),
    "nameservers": nameservers,
    "loopback_resolvers": {s: ask(s, "example.com") for s in ("127.0.0.1", "127.0.0.11")},
    "localhost": sorted({a[4][0] for a in socket.getaddrinfo("localhost", 80)}),
}))
"""
    )
    assert found["interfaces"] == ["lo"]
    assert found["routes"] == [] and found["routes6"] == []
    # No resolver listens on loopback, and every configured nameserver is off loopback with
    # no route to it: no name can be resolved (asked without sending anything to it).
    assert not any(v.startswith("answer") for v in found["loopback_resolvers"].values())
    assert not any(ns.startswith(("127.", "::1")) for ns in found["nameservers"])
    assert set(found["localhost"]) <= {"127.0.0.1", "::1"}, "the hosts file still works"


@pytest.fixture
def server_on_test_network(
    docker_client: docker.DockerClient, sandbox_image: str, run_id: str
) -> Iterator[tuple[str, str]]:
    """An HTTP server in a container on a bridge network this test creates: (name, ip)."""
    labels = {"io.triloop.test": "escape", "io.triloop.escape_run": run_id}
    network = docker_client.networks.create(
        f"{run_id}-net", driver="bridge", internal=True, labels=labels
    )
    server = None
    try:
        server = docker_client.containers.run(
            sandbox_image,
            ["-m", "http.server", "8000", "--bind", "0.0.0.0"],
            entrypoint=["python3"],
            name=f"{run_id}-server",
            network=network.name,
            user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            labels=labels,
            detach=True,
        )
        server.reload()
        ip = server.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        assert ip, "the server container got no address on the test network"
        yield server.name, ip
    finally:
        if server is not None:
            server.remove(force=True)
        network.remove()


def test_sandbox_cannot_reach_a_server_that_a_peer_on_its_network_can(
    docker_client: docker.DockerClient,
    sandbox_image: str,
    server_on_test_network: tuple[str, str],
    run_script: RunScript,
    run_id: str,
) -> None:
    name, ip = server_on_test_network
    # Positive control: a container on the test network reaches the server by name and IP.
    probe = (
        "import time, urllib.request as u\n"
        "for _ in range(100):\n"
        "    try:\n"
        f"        print(u.urlopen('http://{name}:8000/', timeout=2).status,"
        f" u.urlopen('http://{ip}:8000/', timeout=2).status); break\n"
        "    except OSError: time.sleep(0.1)\n"
    )
    peer = docker_client.containers.run(
        sandbox_image,
        ["-c", probe],
        entrypoint=["python3"],
        network=f"{run_id}-net",
        user=f"{SANDBOX_UID}:{SANDBOX_UID}",
        labels={"io.triloop.test": "escape"},
        detach=True,
    )
    try:
        peer.wait(timeout=60)
        assert peer.logs().decode().split() == ["200", "200"], peer.logs().decode()
    finally:
        peer.remove(force=True)

    found = run_script(
        DNS_PROBE
        + f"""
import json, urllib.request
def connect(host):
    try:
        socket.create_connection((host, 8000), timeout=3).close()
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))
try:
    urllib.request.urlopen("http://{ip}:8000/", timeout=3)
    http = "ok"
except OSError as exc:
    http = type(exc).__name__ + ": " + str(exc)
print(json.dumps({{
    "tcp": connect("{ip}"),
    "http": http,
    "embedded_dns": ask("127.0.0.11", "{name}"),
}}))
"""
    )
    assert found["tcp"] in {"ENETUNREACH", "EHOSTUNREACH"}, found
    assert "unreachable" in found["http"], found
    assert not found["embedded_dns"].startswith("answer"), found


def test_fork_bomb_hits_the_pids_limit_and_the_sandbox_survives(run_script: RunScript) -> None:
    found = run_script("""
import errno, json, os, signal, time
children, error = [], None
for _ in range(1000):
    try:
        pid = os.fork()
    except OSError as exc:
        error = errno.errorcode.get(exc.errno, str(exc))
        break
    if pid == 0:
        time.sleep(120)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(json.dumps({"forked": len(children), "error": error}))
""")
    assert found["error"] == "EAGAIN", found
    assert 0 < found["forked"] < 256  # the operator's default pids_limit, PID 1 included


def test_memory_bomb_is_oom_killed_and_the_task_fails_naming_the_limit(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    bomb = "chunks = []\nfor _ in range(64):\n    chunks.append(b'x' * (16 << 20))\nprint('{}')\n"
    op = operator_for(bomb, mem_limit="128m")
    with pytest.raises(SandboxOutOfMemory, match=r"OOM killer.*memory limit of 128m") as caught:
        op.execute({"run_id": run_id})
    assert isinstance(caught.value, AirflowFailException), "an OOM is not retried"
    assert caught.value.mem_limit == "128m" and caught.value.container_id
    assert containers_of(docker_client, run_id) == []


def test_filling_tmp_stops_at_its_tmpfs_size_with_enospc(run_script: RunScript) -> None:
    found = run_script(
        """
import errno, json
def fill(path, chunks):
    written = 0
    try:
        with open(path, "wb") as f:
            for _ in range(chunks):
                f.write(b"x" * (1 << 20))
                f.flush()
                written += 1
        return {"written_mb": written, "error": None}
    except OSError as exc:
        return {"written_mb": written, "error": errno.errorcode.get(exc.errno, str(exc))}
print(json.dumps({"tmp": fill("/tmp/fill", 64), "shm": fill("/dev/shm/fill", 256)}))
""",
        tmpfs_size="16m",
    )
    assert found["tmp"]["error"] == "ENOSPC" and found["tmp"]["written_mb"] <= 16, found
    # /dev/shm is Docker's own 64 MiB tmpfs, charged to the memory limit: bounded too.
    assert found["shm"]["error"] == "ENOSPC" and found["shm"]["written_mb"] <= 64, found


def test_writes_outside_the_output_dir_fail_and_the_host_is_unchanged(
    run_script: RunScript, workspace_root: Path, run_id: str
) -> None:
    before = snapshot(workspace_root)
    found = run_script(f"""
import errno, json, os
def attempt(action, path):
    try:
        action(path)
        return "written"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc))
write = lambda path: open(path, "w").write("escape")
targets = ["/", "/etc/", "/usr/", "/usr/local/bin/", "/opt/", "/var/", "/home/", "/root/",
           "/workspace/", "/workspace/../", "/out/../"]
print(json.dumps({{
    "writes": {{t: attempt(write, t + "{run_id}") for t in targets}},
    "mkdir": attempt(os.mkdir, "/etc/{run_id}.d"),
    "overwrite": attempt(write, "/workspace/README"),
    "chmod": attempt(lambda p: os.chmod(p, 0o777), "/etc/passwd"),
    "tmp": attempt(write, "/tmp/{run_id}"),
    "out": attempt(write, "/out/{run_id}"),
}}))
""")
    allowed = {"EROFS", "EACCES", "EPERM"}
    assert set(found["writes"].values()) <= allowed, found["writes"]
    assert {found["mkdir"], found["overwrite"], found["chmod"]} <= allowed, found
    assert found["tmp"] == "written" and found["out"] == "written", "the writable places work"
    after = snapshot(workspace_root)
    new = {path for path in after if path not in before}
    changed = {path for path in before if path in after and before[path] != after[path]}
    assert new == {f"out/{run_id}"}, new
    assert changed <= {"out"}, changed  # only the output dir's own mtime moved
    assert not Path(f"/{run_id}").exists() and not Path(f"/etc/{run_id}").exists()


def test_a_process_ignoring_sigterm_with_a_child_is_still_killed_at_the_limit(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    """The plain case is test_wall_clock_limit_kills_the_container_and_raises (integration)."""
    forever = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    op = operator_for(forever, wall_clock_limit_s=2)
    started = time.monotonic()
    with pytest.raises(SandboxTimeout, match="wall-clock limit of 2s"):
        op.execute({"run_id": run_id})
    assert time.monotonic() - started < 30
    assert containers_of(docker_client, run_id) == []


SETUID_PROBE = """
import json, os, stat, subprocess
def status(pid="self"):
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
    keys = ("Uid", "Gid", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs")
    return {k: fields[k].split() for k in keys}
setuid = []
for top in ("/bin", "/sbin", "/usr"):
    for dirpath, dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and info.st_mode & stat.S_ISUID and info.st_uid == 0:
                setuid.append(path)
ran = {}
for path in ("/usr/bin/passwd", "/usr/bin/su", "/usr/bin/newgrp", "/usr/bin/chsh"):
    if path in setuid:  # read the child's ids right after exec, before it can exit or be reaped
        child = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        ran[path] = status(child.pid)
        child.kill()
        child.wait()
su = subprocess.run(["su", "-c", "id -u", "root"], input=b"\\n", capture_output=True)
try:
    os.setuid(0)
    setuid0 = "became root"
except PermissionError:
    setuid0 = "EPERM"
print(json.dumps({"self": status(), "setuid": setuid, "ran": ran,
                  "su": [su.returncode, su.stdout.decode()], "setuid0": setuid0}))
"""


def test_the_setuid_probe_sees_root_without_no_new_privileges(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    """Control: the probe below would catch an escalation (here no-new-privileges is off)."""
    loose = docker_client.containers.run(
        sandbox_image,
        ["-c", SETUID_PROBE],
        entrypoint=["python3"],
        network_mode="none",
        user=f"{SANDBOX_UID}:{SANDBOX_UID}",
        labels={"io.triloop.test": "escape"},
        detach=True,
    )
    try:
        loose.wait(timeout=60)
        found = json.loads(loose.logs(stderr=False).decode().strip().splitlines()[-1])
    finally:
        loose.remove(force=True)
    assert found["self"]["NoNewPrivs"] == ["0"]
    assert found["ran"]["/usr/bin/passwd"]["Uid"][1] == "0", "passwd should run as euid 0 here"


def test_setuid_root_binaries_do_not_raise_privileges(run_script: RunScript) -> None:
    found = run_script(SETUID_PROBE)
    uid, zero = str(SANDBOX_UID), "0000000000000000"
    me = found["self"]
    assert me["NoNewPrivs"] == ["1"]
    assert me["Uid"] == [uid] * 4 and me["Gid"] == [uid] * 4
    assert me["CapEff"] == me["CapPrm"] == me["CapBnd"] == [zero]
    assert "/usr/bin/passwd" in found["setuid"], "the image should still carry setuid binaries"
    assert found["ran"], "no setuid-root binary was executed"
    for path, child in found["ran"].items():
        assert child["Uid"] == [uid] * 4, f"{path} ran with uids {child['Uid']}"
        assert child["CapEff"] == [zero], f"{path} gained capabilities"
    assert found["su"][0] != 0 and found["su"][1].strip() != "0"
    assert found["setuid0"] == "EPERM"


def test_only_the_harness_key_enters_the_sandbox_never_forge_or_push_credentials(
    run_script: RunScript, workspace_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an Airflow worker holds: forge and push tokens, the factory DB, connections.
    secrets = {
        "GITHUB_TOKEN": "ghp_forge_token_must_not_leak",
        "GIT_ASKPASS": "/usr/local/bin/triloop-askpass",
        "TRILOOP_DB_URL": "postgresql+psycopg2://triloop:db_password@db/triloop",
        "AIRFLOW_CONN_GITHUB_DEFAULT": "github://:gh_conn_token@",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    found = run_script(
        """
import json, os
mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
print(json.dumps({
    "env": dict(os.environ),
    "mounts": [m for m in mounts if m not in ("/", "/proc", "/sys", "/dev") and
               not m.startswith(("/proc/", "/sys/", "/dev/", "/etc/"))],
}))
""",
        private_environment={"OPENAI_API_KEY": "sk-harness-key"},
    )
    assert found["env"]["OPENAI_API_KEY"] == "sk-harness-key"  # what the harness needs
    leaked = [k for k, v in found["env"].items() if k in secrets or v in secrets.values()]
    assert leaked == []
    blob = json.dumps(found["env"])
    assert not any(word in blob for word in ("ghp_", "db_password", "gh_conn_token"))
    # Only the workspace, the output folder and the tmpfs: no home, no credential store.
    assert sorted(found["mounts"]) == ["/out", "/tmp", "/workspace"]
    assert not any(p.name in (".git-credentials", ".netrc") for p in workspace_root.rglob("*"))
