"""Benchmark the demo: `make up` in a fresh clone, timed from the command to each milestone.

Prints seconds to the UI, the first ticket, the first pull request, the first merge and all
autofixable tickets merged, the runs of each DAG by state and `triloop status`; then sends
Ctrl-C (SIGINT to the process group) and prints how long the stop took and whether anything
survived.
Usage (from the repository root):

    .venv/bin/python scripts/bench_make_up.py [--timeout 600] [--port 8080]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def _counts(db: Path) -> tuple[int, int, int, int]:
    with sqlite3.connect(db) as conn:
        return (
            conn.execute("SELECT count(*) FROM tickets").fetchone()[0],
            conn.execute("SELECT count(*) FROM tickets WHERE harness = 'autofix'").fetchone()[0],
            conn.execute("SELECT count(*) FROM pull_requests").fetchone()[0],
            conn.execute("SELECT count(*) FROM pull_requests WHERE state = 'merged'").fetchone()[0],
        )


DAGS = (
    "triloop_discovery",
    "triloop_execution",
    "triloop_governance",
    "triloop_verification",
    "triloop_janitor",
)


def _dag_runs(airflow_db: Path) -> dict[str, dict[str, int]]:
    """Runs of each Triloop DAG by state, read from Airflow's own (SQLite) metadata DB."""
    runs: dict[str, dict[str, int]] = {dag: {} for dag in DAGS}
    if not airflow_db.exists():
        return runs
    with sqlite3.connect(airflow_db) as conn:
        rows = conn.execute("SELECT dag_id, state, count(*) FROM dag_run GROUP BY 1, 2")
        for dag_id, state, count in rows:
            if dag_id in runs:
                runs[dag_id][str(state)] = count
    return runs


def _ui_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2):
            return True
    except OSError:
        return False


def _status(clone: Path) -> str:
    """What `triloop status` prints in the clone, as a user would run it."""
    env = {**os.environ, "TRILOOP_HOME": str(clone / ".triloop")}
    done = subprocess.run(
        [str(clone / ".venv/bin/triloop"), "status"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    clone = Path(tempfile.mkdtemp(prefix="triloop-bench-")) / "triloop"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "AIRFLOW__API__PORT": str(args.port)}
    start = time.monotonic()
    proc = subprocess.Popen(
        ["make", "up"],
        cwd=clone,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    db, marks, all_green = clone / ".triloop/triloop.db", {}, False
    try:
        while time.monotonic() - start < args.timeout and proc.poll() is None:
            if "UI reachable" not in marks and _ui_up(args.port):
                marks["UI reachable"] = time.monotonic() - start
            if db.exists():
                try:
                    tickets, fixable, prs, merged = _counts(db)
                except sqlite3.Error:
                    tickets = fixable = prs = merged = 0
                for name, hit in (
                    ("first ticket", tickets),
                    ("first pull request", prs),
                    ("first merge", merged),
                    ("all autofixable tickets merged", fixable and merged >= fixable),
                ):
                    if hit and name not in marks:
                        marks[name] = time.monotonic() - start
                        print(f"{name:<32} {marks[name]:6.0f} s", flush=True)
                if "all autofixable tickets merged" in marks:
                    break
            time.sleep(1)
        runs = _dag_runs(clone / ".airflow/airflow.db")
        for dag_id, states in runs.items():
            summary = ", ".join(f"{state} {count}" for state, count in sorted(states.items()))
            print(f"{'runs of ' + dag_id:<32} {summary or 'none'}", flush=True)
        all_green = all(states.get("success") for states in runs.values())
        print(_status(clone), flush=True)
    finally:
        descendants = (
            psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        )
        stop = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
        stopped = time.monotonic() - stop
        survivors = [p for p in descendants if p.is_running() and p.status() != "zombie"]
        print(f"{'UI reachable':<32} {marks.get('UI reachable', float('nan')):6.0f} s")
        print(
            f"{'Ctrl-C to all stopped':<32} {stopped:6.1f} s, {len(survivors)} survivors "
            f"of {len(descendants)} processes"
        )
    return 0 if "first merge" in marks and all_green and not survivors else 1


if __name__ == "__main__":
    raise SystemExit(main())
