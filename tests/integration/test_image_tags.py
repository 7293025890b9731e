"""The image build tidies old tags but never one another checkout may be testing right now."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

import docker
import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_sandbox_image", ROOT / "scripts" / "build_sandbox_image.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("hours_later", "kept"), [(1, True), (7, False)])
def test_only_tags_older_than_the_limit_are_removed(
    docker_client: docker.DockerClient, sandbox_image: str, hours_later: int, kept: bool
) -> None:
    script = _build_script()
    repo = f"triloop-tagtest-{uuid.uuid4().hex[:8]}"
    image = docker_client.images.get(sandbox_image)
    image.tag(repo, "current")
    image.tag(repo, "other")
    try:
        script.remove_stale_tags(repo, "current", now=time.time() + hours_later * 3600)
        tags = set(docker_client.images.get(sandbox_image).tags)
        assert f"{repo}:current" in tags
        assert (f"{repo}:other" in tags) is kept
    finally:
        for tag in ("current", "other"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(f"{repo}:{tag}")
