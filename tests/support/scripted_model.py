"""The scripted model (tests/support/model_server.py) as a container the test starts.

It runs from the sandbox variant image (any image with python3 does), hardened like a sandbox,
on a network the test names; the egress proxy reaches it there by its container name.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

MODEL_PORT = 8000
API_KEY = "sk-triloop-scripted-model"
SERVER_SCRIPT = Path(__file__).resolve().with_name("model_server.py")
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
LABELS = {"io.triloop.test": "scripted-model"}


@contextmanager
def model_server(
    client: docker.DockerClient, image: str, network: str, *script: str
) -> Iterator[tuple[str, Container]]:
    """The scripted model on ``network``; yields (its host name there, its container)."""
    name = f"triloop-test-model-{uuid.uuid4().hex[:10]}"
    container = client.containers.run(
        image,
        entrypoint=["python3", "/srv/model_server.py"],
        command=["--port", str(MODEL_PORT), "--api-key", API_KEY, *script],
        name=name,
        network=network,
        detach=True,
        user="10001:10001",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
        mounts=[docker.types.Mount("/srv/model_server.py", str(SERVER_SCRIPT), "bind", True)],
        labels=LABELS,
    )
    try:
        deadline = time.monotonic() + 30
        while b'"listening"' not in container.logs():
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                raise AssertionError(f"model server did not start: {container.logs()!r}")
            time.sleep(0.2)
        yield name, container
    finally:
        container.remove(force=True)


def served(container: Container) -> list[dict[str, Any]]:
    """The chat-completion requests the model server answered (its JSON log lines)."""
    lines = container.logs(stdout=True, stderr=False).decode().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if e.get("method") == "POST"]
