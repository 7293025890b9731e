"""Janitor clean-up against the real Docker engine and a real workspace tree."""

from __future__ import annotations

import contextlib
import os
import time
from datetime import timedelta
from pathlib import Path

import docker
from triloop.bootstrap import App
from triloop.janitor.containers import SANDBOX_LABEL, remove_finished_sandboxes
from triloop.janitor.service import clean_workspaces
from triloop.store.ledger import Actor


def test_finished_and_overdue_sandboxes_are_removed(
    docker_client: docker.DockerClient, sandbox_image: str
) -> None:
    labels = {SANDBOX_LABEL: "1", "io.triloop.test": "janitor"}
    common = {"network_mode": "none", "labels": labels, "entrypoint": ["sleep"], "detach": True}
    exited = docker_client.containers.run(sandbox_image, ["0"], **common)
    running = docker_client.containers.run(sandbox_image, ["300"], **common)
    unrelated = docker_client.containers.run(
        sandbox_image, ["0"], network_mode="none", entrypoint=["sleep"], detach=True
    )
    try:
        exited.wait(timeout=30)
        removed = remove_finished_sandboxes(docker_client, max_running=timedelta(minutes=10))
        assert exited.name in removed and running.name not in removed
        assert unrelated.name not in removed
        removed = remove_finished_sandboxes(docker_client, max_running=timedelta(seconds=0))
        assert running.name in removed
        left = docker_client.containers.list(all=True, filters={"label": "io.triloop.test"})
        assert left == []
    finally:
        for container in (exited, running, unrelated):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def test_old_workspaces_go_and_active_ones_stay(app: App) -> None:
    root = app.settings.workspaces_dir
    old, fresh = root / "scan" / "old-run", root / "scan" / "new-run"
    for path in (old, fresh):
        (path / "src").mkdir(parents=True)
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert clean_workspaces(app, Actor(name="test")) == 1
    assert not old.exists() and Path(fresh, "src").exists()
