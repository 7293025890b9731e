"""SandboxOperator against the real engine: hardening seen by `docker inspect`, limits, cleanup."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest
from airflow.providers.docker.exceptions import DockerContainerFailedException
from airflow.sdk.exceptions import AirflowFailException
from triloop_sandbox import SandboxOperator, SandboxPolicyError, SandboxTimeout
from triloop_sandbox.exceptions import SandboxHarnessFailed

pytestmark = pytest.mark.docker

REPO = {"app/__init__.py": "", "app/util.py": "import os\n"}


def containers_of(client: docker.DockerClient, run_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"io.triloop.run_id={run_id}"})


@pytest.fixture
def run_id() -> str:
    return f"itest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def operator_for(
    tmp_path: Path,
    out_dir: Path,
    sandbox_image: str,
    make_repo: Callable[[dict[str, str]], Path],
) -> Callable[..., SandboxOperator]:
    repo = make_repo(REPO)

    def build(**kwargs: Any) -> SandboxOperator:
        defaults: dict[str, Any] = {
            "task_id": "sandbox_test",
            "workspace": str(repo),
            "output_dir": str(out_dir),
            "workspace_root": str(tmp_path),
            "image": sandbox_image,
            "ticket_id": "T-42",
        }
        return SandboxOperator(**{**defaults, **kwargs})

    return build


def test_operator_runs_the_harness_and_returns_its_summary_line(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    out_dir: Path,
    run_id: str,
) -> None:
    op = operator_for(command=["scan", "--out", "/out"])
    summary = json.loads(op.execute({"run_id": run_id}))
    assert summary["command"] == "scan" and summary["ok"] is True
    assert summary["findings"]["ruff"] >= 1
    assert json.loads((out_dir / "result.json").read_text())["command"] == "scan"
    assert containers_of(docker_client, run_id) == []


def test_running_container_is_hardened(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    op = operator_for(entrypoint=["sleep"], command=["120"], wall_clock_limit_s=90)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            op.execute({"run_id": run_id})
        except BaseException as exc:  # the container is killed below; record, don't crash
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not (found := containers_of(docker_client, run_id)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert found, "the sandbox container never appeared"
        attrs = docker_client.api.inspect_container(found[0].id)
    finally:
        op.on_kill()
        worker.join(timeout=60)
    host, config = attrs["HostConfig"], attrs["Config"]
    assert attrs["State"]["Running"] is True
    assert host["NetworkMode"] == "none"
    assert config["User"] == "10001:10001"
    assert host["CapDrop"] == ["ALL"]
    assert host["ReadonlyRootfs"] is True
    assert host["Privileged"] is False
    assert any(opt.startswith("no-new-privileges") for opt in host["SecurityOpt"])
    assert host["PidsLimit"] == 256
    assert host["NanoCpus"] == 1_000_000_000
    assert host["Memory"] == 2 * 1024**3
    assert "size=512m" in host["Tmpfs"]["/tmp"]
    labels = config["Labels"]
    assert labels["io.triloop.sandbox"] == "1"
    assert labels["io.triloop.ticket_id"] == "T-42"
    assert labels["io.triloop.task_id"] == "sandbox_test"
    assert {"io.triloop.dag_id", "io.triloop.try_number", "io.triloop.map_index"} <= set(labels)
    mounts = {m["Destination"]: m for m in attrs["Mounts"]}
    assert set(mounts) == {"/workspace", "/out"}
    assert mounts["/workspace"]["RW"] is False and mounts["/out"]["RW"] is True
    assert not any("docker.sock" in m["Source"] for m in attrs["Mounts"])
    assert not worker.is_alive(), "on_kill should end the task"
    assert [type(e) for e in errors] == [DockerContainerFailedException], errors
    assert containers_of(docker_client, run_id) == []


def test_wall_clock_limit_kills_the_container_and_raises(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
) -> None:
    op = operator_for(entrypoint=["sleep"], command=["600"], wall_clock_limit_s=2)
    started = time.monotonic()
    with pytest.raises(SandboxTimeout, match="wall-clock limit of 2s") as caught:
        op.execute({"run_id": run_id})
    assert time.monotonic() - started < 30
    assert caught.value.limit_s == 2 and caught.value.container_id
    assert containers_of(docker_client, run_id) == []


def test_workspace_outside_the_root_is_refused_before_any_container(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
    tmp_path: Path,
) -> None:
    outside = tmp_path.parent / f"outside-{run_id}"
    outside.mkdir()
    op = operator_for(workspace=str(outside), workspace_root=str(tmp_path / "repo"))
    with pytest.raises(SandboxPolicyError, match="outside the workspace root"):
        op.execute({"run_id": run_id})
    assert containers_of(docker_client, run_id) == []


@pytest.mark.parametrize(("code", "final"), [(1, True), (2, True), (3, False)])
def test_a_harness_that_ran_and_failed_is_not_retried_by_airflow(
    docker_client: docker.DockerClient,
    operator_for: Callable[..., SandboxOperator],
    run_id: str,
    code: int,
    final: bool,
) -> None:
    """Exit 1 (ran and failed) and 2 (refused its request) fail for good; others may retry."""
    op = operator_for(entrypoint=["sh", "-c"], command=[f"echo failing; exit {code}"])
    with pytest.raises(DockerContainerFailedException) as caught:
        op.execute({"run_id": run_id})
    assert isinstance(caught.value, AirflowFailException) is final
    if final:
        assert isinstance(caught.value, SandboxHarnessFailed)
        assert caught.value.exit_code == code and f"exited {code}" in str(caught.value)
    assert containers_of(docker_client, run_id) == []
