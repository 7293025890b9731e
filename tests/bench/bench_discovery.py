"""Benchmark: the discovery DAG's wall time on the sample repository against running the same
analyzers by hand (target: DAG <= 1.2 x by hand).

DAG: ``triloop_discovery`` through ``dag.test()`` (every task in this process, the real
SandboxOperator on the local Docker engine), timed from the call to its return. It lists the
repositories, updates the scan checkout, stages the dependency wheelhouse, runs the sandbox's
``scan``, ingests the findings into tickets, shows them in the tracker and publishes the asset
event.

By hand: what a person would type for the same analyzers: ``git clone`` of the sample's forge
repository, the same wheelhouse staging (``pip download`` from the same cache), then
``docker run --rm`` of the same image with the same ``scan --out /out`` command, mounts and
hardening flags as the operator's.

Each round runs both (alternating which goes first) after one warm-up of each; medians are
printed with the ratio. Every DAG run is a rescan of an unchanged repository, so it also prints
the new tickets after the first scan (expected: 0). Needs Docker; builds (or confirms) the
sandbox image with scripts/build_sandbox_image.py.

    .venv/bin/python -m tests.bench.bench_discovery [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(tempfile.mkdtemp(prefix="triloop-bench-discovery-"))
# Airflow reads its configuration when first imported: set it before any import of it.
os.environ["AIRFLOW_HOME"] = str(HOME / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["TRILOOP_HOME"] = str(HOME / "triloop")
os.environ.pop("TRILOOP_DB_URL", None)
os.environ["AIRFLOW_CONN_TRILOOP_DB"] = json.dumps(
    {"conn_type": "generic", "extra": {"sqlalchemy_url": f"sqlite:///{HOME}/triloop/triloop.db"}}
)
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags"), str(ROOT / "include")]

HARDENING = [
    "--network=none",
    "--user=10001:10001",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges:true",
    "--read-only",
    "--tmpfs=/tmp:rw,nosuid,nodev,exec,size=512m,mode=1777",
    "--pids-limit=256",
    "--cpus=1.0",
    "--memory=2g",
    "--memory-swap=2g",
]


def sandbox_image() -> str:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_sandbox_image.py")],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    label = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            '{{ index .Config.Labels "io.triloop.sandbox.content-hash" }}',
            "triloop-sandbox:latest",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"triloop-sandbox:{label}"


def run_dag(dag: Any) -> float:
    started = time.perf_counter()
    run = dag.test()
    elapsed = time.perf_counter() - started
    if str(run.state) != "success":
        raise SystemExit(f"triloop_discovery ended {run.state}")
    return elapsed


def by_hand(remote: str, image: str, cache: Path, n: int) -> float:
    from triloop.discovery.wheelhouse import prepare_wheelhouse

    work = HOME / "by-hand" / str(n)
    checkout, out = work / "src", work / "out"
    started = time.perf_counter()
    subprocess.run(["git", "clone", "-q", remote, str(checkout)], check=True)
    out.mkdir(parents=True)
    prepare_wheelhouse(checkout, out, cache)
    for path in (work, checkout):
        path.chmod(0o755)
    out.chmod(0o777)
    subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            *HARDENING,
            f"--mount=type=bind,source={checkout},target=/workspace,readonly",
            f"--mount=type=bind,source={out},target=/out",
            image,
            "scan",
            "--out",
            "/out",
        ],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    if not (out / "result.json").exists():
        raise SystemExit(f"the hand-run scan wrote no result.json in {out}")
    shutil.rmtree(work, ignore_errors=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    image = sandbox_image()
    os.environ["TRILOOP_SANDBOX_IMAGE"] = image
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, timeout=600)

    from airflow.dag_processing.dagbag import DagBag
    from sqlalchemy import func, select
    from triloop.bootstrap import bootstrap
    from triloop.onboarding import materialise_sample, onboard
    from triloop.store.ledger import CLI
    from triloop.store.models import Ticket

    app = bootstrap(home=HOME / "triloop")
    repo = onboard(app, str(materialise_sample(app)), name="sample", actor=CLI)
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["triloop_discovery"]
    cache = app.settings.home / "cache" / "wheelhouse"

    def tickets() -> int:
        with app.uow() as session:
            return session.scalar(select(func.count()).select_from(Ticket)) or 0

    print(f"image {image}; warm-up: one DAG run and one hand run")
    run_dag(dag)
    first = tickets()
    by_hand(repo.remote, image, cache, 0)
    dag_times, hand_times = [], []
    for n in range(1, args.rounds + 1):
        if n % 2:
            dag_times.append(run_dag(dag))
            hand_times.append(by_hand(repo.remote, image, cache, n))
        else:
            hand_times.append(by_hand(repo.remote, image, cache, n))
            dag_times.append(run_dag(dag))
        print(f"round {n}: DAG {dag_times[-1]:.2f} s, by hand {hand_times[-1]:.2f} s")
    dag_median, hand_median = statistics.median(dag_times), statistics.median(hand_times)
    print(f"tickets after the first scan: {first}; new tickets in {args.rounds} rescans:"
          f" {tickets() - first}")  # fmt: skip
    print(
        f"median of {args.rounds}: DAG {dag_median:.2f} s, by hand {hand_median:.2f} s,"
        f" ratio {dag_median / hand_median:.2f} (target <= 1.2);"
        f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    shutil.rmtree(HOME, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
