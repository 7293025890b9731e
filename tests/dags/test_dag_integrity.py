"""Every DAG imports, is tagged, owned and retried, and every DAG file parses quickly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("triloop_*.py"))
EXPECTED = {
    "triloop_discovery",
    "triloop_execution",
    "triloop_governance",
    "triloop_janitor",
    "triloop_verification",
}


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_tags_owner_and_retries(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags[dag_id]
    assert "triloop" in dag.tags and len(dag.tags) >= 2
    for task in dag.tasks:
        assert task.owner == "triloop", task.task_id
        if task.task_type != "PullRequestReviewOperator":
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_python_tasks_fail_fast_on_permanent_errors(dagbag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    """Every TaskFlow task (sensors aside) tells transient from permanent failures."""
    from triloop_airflow.failures import fail_fast_on_permanent

    marker = fail_fast_on_permanent(lambda: None).__code__
    for task in dagbag.dags[dag_id].tasks:
        callable_ = getattr(task, "python_callable", None)
        if callable_ is None or task.task_type.endswith("SensorOperator"):
            continue
        assert getattr(callable_, "__code__", None) is marker, (
            f"{dag_id}.{task.task_id} lacks @fail_fast_on_permanent"
        )


def test_execution_opens_with_a_rescheduling_sensor(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["triloop_execution"]
    sensor = dag.get_task("wait_for_ready_tickets")
    assert sensor.mode == "reschedule" and sensor.soft_fail
    assert not sensor.upstream_task_ids


def test_sandbox_tasks_use_the_sandbox_operator(dagbag) -> None:  # type: ignore[no-untyped-def]
    sandbox_tasks = {
        ("triloop_discovery", "repo.scan"),
        ("triloop_execution", "ticket.run_harness"),
        ("triloop_governance", "pull_request.analyze_base"),
        ("triloop_governance", "pull_request.analyze_merged"),
        ("triloop_governance", "pull_request.tests_base"),
        ("triloop_governance", "pull_request.run_tests"),
        ("triloop_governance", "pull_request.tests_guard"),
        ("triloop_governance", "pull_request.reproduce_autofix"),
        ("triloop_verification", "merge.run_tests"),
    }
    for dag_id, task_id in sandbox_tasks:
        assert dagbag.dags[dag_id].get_task(task_id).task_type == "SandboxOperator"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_each_dag_file_parses_in_under_a_second(path: Path) -> None:
    """Parse time in a warm interpreter (Airflow and the plugins already imported)."""
    code = (
        "import sys, time, runpy\n"
        f"sys.path[:0] = [{str(ROOT / 'plugins')!r}, {str(ROOT / 'dags')!r}]\n"
        "import airflow.sdk, triloop_sandbox, triloop_airflow.approval\n"
        "t = time.perf_counter()\n"
        f"runpy.run_path({str(path)!r})\n"
        "print(time.perf_counter() - t)\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = float(out.stdout.strip().splitlines()[-1])
    assert seconds < 1.0, f"{path.name} took {seconds:.2f}s to parse"
    assert time.perf_counter() - started < 60
