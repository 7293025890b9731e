"""The secret scanner inside the real sandbox image reports what the host benchmark measures.

The benchmark's corpus (52 real secret shapes, 42 look-alikes) is scanned in the hardened
container (no network, read-only checkout and root) and by the same file on the host: the two
secrets.json must be identical, so the benchmark's figures are the sandbox's.
"""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from tests.bench.bench_secrets import checkout, load_scanner
from tests.bench.secret_corpus import corpus
from tests.integration.conftest import HARDENED_RUN, give_to_sandbox

pytestmark = pytest.mark.docker


def test_the_image_scans_the_corpus_as_the_host_does(
    docker_client: docker.DockerClient, sandbox_image: str, tmp_path: Path
) -> None:
    real, lookalikes = corpus()
    repo, inside, host = tmp_path / "repo", tmp_path / "inside", tmp_path / "host"
    for folder in (repo, inside, host):
        folder.mkdir()
    checkout([*real, *lookalikes], repo)
    give_to_sandbox(repo, inside)
    logs = docker_client.containers.run(
        sandbox_image,
        ["/usr/local/bin/secret_scan.py", "/workspace", "/out"],
        entrypoint=["python"],
        volumes={
            str(repo): {"bind": "/workspace", "mode": "ro"},
            str(inside): {"bind": "/out", "mode": "rw"},
        },
        remove=True,
        **HARDENED_RUN,
    )
    status = json.loads(logs.decode().strip().splitlines()[-1])
    assert status["exit_code"] == 0 and "error" not in status, status
    assert status["argv"][1:] == ["/usr/local/bin/secret_scan.py", "/workspace", "/out"]
    load_scanner().scan_secrets(repo, host)
    in_image = json.loads((inside / "secrets.json").read_text())
    assert in_image == json.loads((host / "secrets.json").read_text())
    assert len(in_image["findings"]) >= len(real) and in_image["unscanned"] == []
