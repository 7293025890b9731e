"""The worker tests/integration/test_crash_recovery.py kills with SIGKILL mid-run.

It does what the triloop_execution DAG's tasks do for one ticket, through the same code: claim
(``execution.service.claim``), prepare the workspace, then run the harness in a
``SandboxOperator`` that renews its lease through the DAG's own hook
(``triloop_airflow.leases.ticket_lease``, which finds the database in the ``triloop_db``
connection). The harness is delayed by a ``sleep`` so the kill lands while it runs.

Usage: ``python -m tests.integration.crash_worker RUN_ID`` with TRILOOP_HOME,
AIRFLOW_CONN_TRILOOP_DB and TRILOOP_SANDBOX_IMAGE set.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "triloop_execution"
DELAYED = 'sleep 600; exec triloop-harness "$@"'


def task_context(run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
    """The parts of an Airflow task context Triloop reads: the task instance's ids."""
    ti = SimpleNamespace(
        dag_id=DAG_ID, run_id=run_id, task_id=task_id, try_number=1, map_index=map_index
    )
    return {"ti": ti, "run_id": run_id}


def main(run_id: str) -> None:
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags")]
    from triloop.execution.harness import harness_for
    from triloop.execution.service import claim, prepare
    from triloop_airflow.leases import ticket_lease
    from triloop_airflow.runtime import actor, app
    from triloop_sandbox import SandboxOperator

    factory = app()
    [claimed] = claim(factory, actor(task_context(run_id, "claim_tickets")))
    request = prepare(factory, claimed, actor(task_context(run_id, "ticket.prepare_workspace", 0)))
    SandboxOperator(
        task_id="ticket.run_harness",
        workspace=request.workspace,
        output_dir=request.output_dir,
        entrypoint=["sh", "-c", DELAYED, "triloop-harness"],
        command=harness_for(request.harness).command(request),
        ticket_id=request.ticket_id,
        lease=ticket_lease,
        workspace_readonly=False,
    ).execute(task_context(run_id, "ticket.run_harness", 0))
    raise SystemExit("the harness finished: the test should have killed this worker first")


if __name__ == "__main__":
    main(sys.argv[1])
