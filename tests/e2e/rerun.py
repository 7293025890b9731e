"""Clear the task instances of one task in a finished DAG run and run them again.

Two halves, each what Airflow itself does:

- :func:`clear` is the ``clearTaskInstances`` REST endpoint the UI's "Clear" button calls, for
  one task id of one run (all its map indexes, downstream not included): a dry-run
  ``dag.clear`` picks the task instances, ``clear_task_instances`` resets them (their XComs
  are removed when they start again) and puts the finished run back in the queue.
- :func:`resume` is the scheduler's part, as ``dag.test()`` plays it in-process: the queued run
  goes to running, ``DagRun.update_state`` finds the cleared instances ready, each gets its next
  try number and runs through the Task SDK (``_run_task``, the function ``dag.test()`` itself
  calls). ``dag.test()`` cannot do this: it always deletes the run and creates a new one.

So a re-run task instance keeps its run id and map index, gets the next try number and reads
the XComs its upstream tasks pushed in the original run.
"""

from __future__ import annotations

import graphlib
import time
from typing import Any

from sqlalchemy import select


def downstream_first(dag: Any) -> list[str]:
    """Every task id of ``dag`` (in task groups, mapped or not), each before its upstream tasks.

    Re-run in this order, every task reads exactly the XComs its upstream tasks pushed in the
    original run: none of them has been re-run yet.
    """
    graph = {task.task_id: set(task.downstream_task_ids) for task in dag.tasks}
    return list(graphlib.TopologicalSorter(graph).static_order())


def latest_run_id(dag_id: str) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run_id = session.scalar(
            select(DagRun.run_id).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc())
        )
    assert run_id is not None, f"{dag_id} has not run"
    return str(run_id)


def tries(dag_id: str, run_id: str, task_id: str) -> dict[int, tuple[str | None, int]]:
    """(state, try number) of each map index of ``task_id`` in the run."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.map_index, TaskInstance.state, TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        ).all()
    return {int(i): (str(s) if s else None, int(n)) for i, s, n in rows}


def _serialized(dag_id: str, run_id: str, session: Any) -> Any:
    """The run's own serialized DAG, as the REST API uses for clearing and marking."""
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun

    run = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
    ).one()
    dag = DBDagBag().get_dag_for_run(dag_run=run, session=session)
    assert dag is not None, f"no serialized DAG for {dag_id} {run_id}"
    return dag


def clear(dag_id: str, run_id: str, task_id: str) -> int:
    """Clear ``task_id`` in run ``run_id`` as the UI does; return how many instances."""
    from airflow.models.taskinstance import clear_task_instances
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        tis = _serialized(dag_id, run_id, session).clear(
            dry_run=True, task_ids=[task_id], run_id=run_id, only_failed=False, session=session
        )
        clear_task_instances(list(tis), session, DagRunState.QUEUED)
        return len(tis)


def resume(dag: Any, run_id: str, timeout_s: float = 300) -> None:
    """Run the queued run ``run_id`` of ``dag`` until its task instances settle.

    It returns when every task instance has finished or waits: for a sensor's next poke or a
    retry delay (the test reports a re-run that needs a retry instead of waiting it out).
    """
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.sdk.definitions.dag import _run_task
    from airflow.settings import Session
    from airflow.utils.state import DagRunState, State, TaskInstanceState

    session = Session()
    run = session.scalars(
        select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id)
    ).one()
    run.dag = DBDagBag().get_dag_for_run(dag_run=run, session=session)
    run.state, run.start_date = DagRunState.RUNNING, timezone.utcnow()  # the scheduler's move
    session.commit()
    deadline = time.monotonic() + timeout_s
    # Neither a sensor waiting for the world nor a retry delay is worth waiting for here.
    settled = {*State.finished, TaskInstanceState.UP_FOR_RESCHEDULE, TaskInstanceState.UP_FOR_RETRY}
    while run.state == DagRunState.RUNNING:
        assert time.monotonic() < deadline, f"{dag.dag_id} {run_id} still running"
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        for ti in schedulable:
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state, ti.scheduled_dttm = TaskInstanceState.SCHEDULED, timezone.utcnow()
        session.commit()
        tis = run.get_task_instances(session=session)
        scheduled = [ti for ti in tis if ti.state == TaskInstanceState.SCHEDULED]
        if not scheduled:
            if all(ti.state in settled for ti in tis):
                return
            time.sleep(1)
        for ti in scheduled:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
