"""SandboxOperator refusals and hardening arguments, without a Docker engine."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from docker.types import Mount
from triloop_sandbox import SandboxOperator, SandboxPolicyError
from triloop_sandbox.hardening import HardenedClient


def make(**kwargs: Any) -> SandboxOperator:
    args: dict[str, Any] = {"task_id": "t", "workspace": "/w/repo", "output_dir": "/w/out"}
    return SandboxOperator(**{**args, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"privileged": True}, r"privileged=True"),
        ({"network_mode": "host"}, r"network_mode='host'.*host networking"),
        ({"network_mode": "bridge"}, r"network_mode='bridge'.*only 'none'"),
        ({"workspace": "/var/run/docker.sock"}, r"workspace=.*Docker socket"),
        ({"output_dir": "/run/docker.sock"}, r"output_dir=.*Docker socket"),
        (
            {"mounts": [{"source": "/var/run/docker.sock", "target": "/d.sock", "type": "bind"}]},
            r"mounts=.*Docker socket",
        ),
        ({"mounts": [Mount("/data", "somevolume", type="volume")]}, r"only bind mounts"),
        ({"retrieve_output": True}, r"retrieve_output=True.*unpickles"),
        ({"cap_add": ["SYS_ADMIN"]}, r"cap_add="),
        ({"mount_tmp_dir": True}, r"mount_tmp_dir=True"),
        ({"auto_remove": "never"}, r"auto_remove='never'"),
        ({"ipc_mode": "host"}, r"ipc_mode='host'"),
        ({"cpus": 4.0}, r"cpus=4.0.*cpu_limit"),
        ({"user": "root"}, r"user='root'.*non-root"),
        ({"user": "0:0"}, r"user='0:0'"),
        ({"user": "10001:0"}, r"user='10001:0'"),
        ({"wall_clock_limit_s": 0}, r"wall_clock_limit_s=0"),
        ({"cpu_limit": 0}, r"cpu_limit=0"),
        ({"pids_limit": -1}, r"pids_limit=-1"),
    ],
)
def test_construction_refuses_unsafe_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        make(**kwargs)
    assert isinstance(caught.value, SandboxPolicyError)


def test_defaults_are_hardened() -> None:
    op = make(cpu_limit=0.5, ticket_id="{{ params.ticket }}")
    assert (op.network_mode, op.user, op.auto_remove) == ("none", "10001:10001", "force")
    assert op.mount_tmp_dir is False and op.retrieve_output is False
    assert op.wall_clock_limit_s == 900
    config = op.host_config_hardening
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges:true"]
    assert config["read_only"] is True
    assert config["tmpfs"]["/tmp"].endswith("size=512m,mode=1777")
    assert (config["pids_limit"], config["nano_cpus"]) == (256, 500_000_000)
    assert config["mem_limit"] == config["memswap_limit"] == "2g"
    assert {"workspace", "output_dir", "command", "ticket_id"} <= set(op.template_fields)


def test_run_labels_name_the_task_instance() -> None:
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", try_number=2, map_index=3)
    labels = make(ticket_id="T-1").run_labels({"ti": ti})  # type: ignore[arg-type]
    assert labels == {
        "io.triloop.sandbox": "1",
        "io.triloop.dag_id": "d",
        "io.triloop.run_id": "r",
        "io.triloop.task_id": "t",
        "io.triloop.try_number": "2",
        "io.triloop.map_index": "3",
        "io.triloop.ticket_id": "T-1",
    }


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ("root/repo", "root/out", "elsewhere"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "root/escape").symlink_to(tmp_path / "elsewhere")
    return tmp_path


@pytest.mark.parametrize(
    ("workspace", "output_dir", "root", "match"),
    [
        ("elsewhere", "root/out", "root", r"workspace=.*outside the workspace root"),
        ("root/escape", "root/out", "root", r"workspace=.*outside the workspace root"),
        ("root/repo", "elsewhere", "root", r"output_dir=.*outside the workspace root"),
        ("root/missing", "root/out", "root", r"workspace=.*does not exist"),
        ("root/repo", "root/out", "root/nope", r"workspace_root=.*existing dir"),
    ],
)
def test_execute_refuses_paths_outside_the_workspace_root(
    tree: Path, workspace: str, output_dir: str, root: str, match: str
) -> None:
    op = make(workspace=str(tree / workspace), output_dir=str(tree / output_dir))
    op.workspace_root = str(tree / root)
    with pytest.raises(SandboxPolicyError, match=match):
        op.execute({"run_id": "r"})  # type: ignore[arg-type]


def test_workspace_root_defaults_to_triloop_home_at_execute_time(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = make(workspace=str(tree / "elsewhere"), output_dir=str(tree / "root/out"))
    monkeypatch.delenv("TRILOOP_HOME", raising=False)
    with pytest.raises(SandboxPolicyError, match="TRILOOP_HOME"):
        op.execute({"run_id": "r"})  # type: ignore[arg-type]
    monkeypatch.setenv("TRILOOP_HOME", str(tree / "root"))
    (tree / "root/workspaces").mkdir()
    with pytest.raises(SandboxPolicyError, match=r"outside the workspace root .*workspaces"):
        op.execute({"run_id": "r"})  # type: ignore[arg-type]


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def create_host_config(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_host_config", kwargs))
        return {"NetworkMode": kwargs["network_mode"], "CapDrop": kwargs.get("cap_drop")}

    def create_container(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(("create_container", kwargs))
        return {"Id": "abc"}

    def start(self, container: Any) -> None:
        self.calls.append(("start", container))


def test_hardened_client_adds_settings_and_fails_closed() -> None:
    fake, started = FakeClient(), []
    client = HardenedClient(fake, make().host_config_hardening, started.append)
    client.create_host_config(network_mode="none", cap_add=None, mem_limit=None)
    sent = fake.calls[0][1]
    assert sent["cap_drop"] == ["ALL"] and sent["read_only"] is True and sent["mem_limit"] == "2g"
    with pytest.raises(SandboxPolicyError, match="unhardened container"):
        client.create_container(host_config={"NetworkMode": "none", "CapDrop": ["ALL"]})
    with pytest.raises(SandboxPolicyError, match="privileged"):
        client.create_host_config(network_mode="none", privileged=True)
    client.start({"Id": "abc"})
    assert started == ["abc"]


def test_on_kill_before_any_container_does_not_touch_docker() -> None:
    op = make()
    op.on_kill()
    assert op.container is None
    assert op.hook.client_created is False


def test_operator_survives_deepcopy_as_airflow_does() -> None:
    clone = copy.deepcopy(make(ticket_id="T-3"))
    assert clone.ticket_id == "T-3"
    assert clone.host_config_hardening == make().host_config_hardening
