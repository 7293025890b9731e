"""Benchmark the hardened sandbox's start-to-exit time for a no-op against a plain container.

The hardened path is the operator's: ``SandboxOperator.host_config_hardening`` passed through
``hardening.HardenedClient`` (the proxy the operator hands DockerOperator), with the same
/workspace (read-only) and /out bind mounts, then create, start, wait and remove on the Engine
API as the provider does. The plain path is the same API calls with a default HostConfig (and,
to separate the cost of the hardening from the saving of no network, with network "none"). Both
also run through the CLI: a plain ``docker run --rm`` and one with the equivalent hardened
flags. Runs alternate between the paths after one warm-up each; medians are printed with the
ratio hardened / plain (target <= 1.5). Usage (from the repository root):

    .venv/bin/python scripts/bench_sandbox_start.py [--runs 15] [--image triloop-sandbox:latest]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
from docker.types import Mount

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO / "include")]

from triloop_sandbox import SandboxOperator  # noqa: E402
from triloop_sandbox.hardening import HardenedClient  # noqa: E402

NOOP = ["true"]
LABELS = {"io.triloop.bench": "sandbox-start"}
Timing = tuple[float, float]  # (create -> exited, create -> removed)


def api_run(client: Any, image: str, host_config: dict[str, Any], user: str | None) -> Timing:
    started = time.perf_counter()
    container = client.create_container(
        image=image, entrypoint=NOOP, command=[], user=user, labels=LABELS, host_config=host_config
    )
    try:
        client.start(container["Id"])
        status = client.wait(container["Id"])["StatusCode"]
        exited = time.perf_counter()
    finally:
        client.remove_container(container["Id"], force=True)
    if status != 0:
        raise SystemExit(f"the no-op exited {status}")
    return exited - started, time.perf_counter() - started


def cli_run(argv: list[str]) -> Timing:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    return elapsed, elapsed


def hardened_cli_flags(op: SandboxOperator, mounts: list[Mount]) -> list[str]:
    h = op.host_config_hardening
    flags = ["--network", h["network_mode"], "--user", str(op.user), "--read-only"]
    flags += ["--cap-drop", "ALL", *[f"--security-opt={opt}" for opt in h["security_opt"]]]
    flags += [f"--tmpfs=/tmp:{h['tmpfs']['/tmp']}", f"--pids-limit={h['pids_limit']}"]
    flags += [f"--cpus={h['nano_cpus'] / 1e9}", f"--memory={h['mem_limit']}"]
    flags += [f"--memory-swap={h['memswap_limit']}"]
    for m in mounts:
        mode = "ro" if m.get("ReadOnly") else "rw"
        flags += ["-v", f"{m['Source']}:{m['Target']}:{mode}"]
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--image", default="triloop-sandbox:latest")
    args = parser.parse_args()
    api = docker.APIClient()
    with tempfile.TemporaryDirectory(prefix="triloop-bench-") as tmp:
        root = Path(tmp)
        (root / "workspace").mkdir()
        (root / "out").mkdir()
        op = SandboxOperator(
            task_id="bench",
            workspace=str(root / "workspace"),
            output_dir=str(root / "out"),
            workspace_root=str(root),
            image=args.image,
        )
        hardened = HardenedClient(api, op.host_config_hardening, lambda _id: None)
        mounts = [
            Mount("/workspace", str(root / "workspace"), type="bind", read_only=True),
            Mount("/out", str(root / "out"), type="bind", read_only=False),
        ]
        # As DockerOperator builds it; HardenedClient adds the hardening and checks it.
        hardened_config = hardened.create_host_config(
            auto_remove=False, mounts=mounts, network_mode="none", mem_limit=op.mem_limit
        )
        plain_config = api.create_host_config()
        offline_config = api.create_host_config(network_mode="none")
        docker_run = ["docker", "run", "--rm", "--entrypoint", "true"]
        paths: dict[str, Callable[[], Timing]] = {
            "api plain": lambda: api_run(api, args.image, plain_config, None),
            "api plain, no network": lambda: api_run(api, args.image, offline_config, None),
            "api hardened": lambda: api_run(hardened, args.image, hardened_config, str(op.user)),
            "cli plain": lambda: cli_run([*docker_run, args.image]),
            "cli hardened": lambda: cli_run(
                [*docker_run, *hardened_cli_flags(op, mounts), args.image]
            ),
        }
        times: dict[str, list[Timing]] = {name: [] for name in paths}
        for warm_up in paths.values():  # not counted
            warm_up()
        for _ in range(args.runs):
            for name, run in paths.items():
                times[name].append(run())
    medians = {
        name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
        for name, ts in times.items()
    }
    print(f"image {args.image}, no-op entrypoint {NOOP}, {args.runs} runs each (median)")
    print(f"{'path':<22}{'to exit':>10}{'+ removal':>12}")
    for name, (to_exit, removed) in medians.items():
        print(f"{name:<22}{to_exit * 1000:>8.0f}ms{removed * 1000:>10.0f}ms")
    for kind in ("api", "cli"):
        plain, hard = medians[f"{kind} plain"], medians[f"{kind} hardened"]
        print(
            f"ratio hardened/plain ({kind}): {hard[0] / plain[0]:.2f} to exit,"
            f" {hard[1] / plain[1]:.2f} with removal (target <= 1.5)"
        )
    offline, hard = medians["api plain, no network"], medians["api hardened"]
    print(f"cost of the hardening alone (api, both without network): {hard[0] / offline[0]:.2f}")


if __name__ == "__main__":
    main()
