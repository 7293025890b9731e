"""Fixtures for tests against the real Docker engine and the real sandbox image.

The Docker fixtures themselves (``docker_client``, ``sandbox_image``) and the Docker policy live
in tests/conftest.py, shared with the e2e tests.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_UID = 10001
HARDENED_RUN: dict[str, Any] = {
    "network_mode": "none",
    "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
    "read_only": True,
    "tmpfs": {"/tmp": "rw,exec,size=512m"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "pids_limit": 256,
    "mem_limit": "2g",
}


def give_to_sandbox(*paths: Path) -> None:
    """Let uid 10001 in the container read and write these trees (chown as root)."""
    for top in paths:
        for path in [top, *top.rglob("*")]:
            if os.geteuid() == 0:
                os.chown(path, SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
            elif not path.is_symlink():
                path.chmod(0o777 if path.is_dir() else 0o666)


def git(repo: Path, *args: str) -> str:
    argv = ["git", "-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    proc = subprocess.run([*argv, *args], cwd=repo, capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Create a committed git repository (owned by the sandbox uid) from {path: text}."""

    def make(files: dict[str, str]) -> Path:
        repo = tmp_path / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "init")
        give_to_sandbox(repo)
        return repo

    return make


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    give_to_sandbox(out)
    return out


@pytest.fixture
def run_harness(
    docker_client: docker.DockerClient, sandbox_image: str, out_dir: Path
) -> Callable[..., tuple[int, dict[str, Any], str]]:
    """Run `triloop-harness ARGS` hardened; returns (exit code, last-line summary, logs)."""

    def run(repo: Path, *args: str, writable: bool = False) -> tuple[int, dict[str, Any], str]:
        container = docker_client.containers.run(
            sandbox_image,
            list(args),
            detach=True,
            volumes={
                str(repo): {"bind": "/workspace", "mode": "rw" if writable else "ro"},
                str(out_dir): {"bind": "/out", "mode": "rw"},
            },
            labels={"io.triloop.sandbox": "1", "io.triloop.test": "harness"},
            **HARDENED_RUN,
        )
        try:
            code = int(container.wait(timeout=300)["StatusCode"])
            stdout = container.logs(stdout=True, stderr=False).decode()
            logs = container.logs(stdout=True, stderr=True).decode()
        finally:
            container.remove(force=True)
        return code, json.loads(stdout.strip().splitlines()[-1]), logs

    return run
