"""The lease hook the execution DAG gives its SandboxOperator: the run's lease on its ticket."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Context
    from triloop.store.leases import TicketLease


def ticket_lease(ticket_id: str, context: Context) -> TicketLease:
    """The task's DAG run's lease on ``ticket_id``, renewed every third of ``lease_seconds``.

    Called by the operator in the task's own thread: the Triloop database URL comes from the
    ``triloop_db`` connection here, never from the background thread that renews. A cleared
    harness task whose run already finished the ticket's attempt (the PR is open, or the
    attempt failed) is skipped here: there is nothing left to redo, and no container starts.
    """
    from airflow.sdk.exceptions import AirflowSkipException
    from triloop.execution.service import attempt_over
    from triloop.store.leases import TicketLease

    from triloop_airflow.runtime import actor, app

    the_app, the_actor = app(), actor(context)
    over = attempt_over(the_app, ticket_id, the_actor)
    if over is not None:
        raise AirflowSkipException(over)
    return TicketLease(the_app, ticket_id, the_actor)
