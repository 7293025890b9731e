"""Janitor: reap expired leases, close tickets whose finding is gone, clean up after runs."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task
from triloop_airflow.defaults import DAG_KWARGS, TAGS
from triloop_airflow.failures import fail_fast_on_permanent


@dag(
    dag_id="triloop_janitor",
    schedule="@daily",
    max_active_runs=1,
    **DAG_KWARGS,
    tags=[*TAGS, "janitor"],
    doc_md=__doc__,
)
def triloop_janitor() -> None:
    @task
    @fail_fast_on_permanent
    def reap_expired_leases(**context: Any) -> list[str]:
        from triloop.janitor.service import reap_leases
        from triloop_airflow.runtime import actor, app

        return reap_leases(app(), actor(context))

    @task
    @fail_fast_on_permanent
    def close_resolved_tickets(**context: Any) -> list[str]:
        from triloop.janitor.service import close_resolved
        from triloop_airflow.runtime import actor, app

        return close_resolved(app(), actor(context))

    @task
    @fail_fast_on_permanent
    def remove_finished_containers(**context: Any) -> list[str]:
        from contextlib import closing

        from triloop.janitor.service import remove_orphaned_sandboxes
        from triloop_airflow.runtime import actor, app
        from triloop_sandbox.engine import configured_engine_conn_id, sandbox_docker_client

        with closing(sandbox_docker_client(configured_engine_conn_id())) as client:
            return remove_orphaned_sandboxes(app(), actor(context), client)

    @task
    @fail_fast_on_permanent
    def remove_old_workspaces(**context: Any) -> int:
        from triloop.janitor.service import clean_workspaces
        from triloop_airflow.runtime import actor, app

        return clean_workspaces(app(), actor(context))

    # Containers after leases: a killed worker's sandbox is orphaned once its lease is reaped.
    reaped = reap_expired_leases()
    reaped >> close_resolved_tickets()
    reaped >> remove_finished_containers() >> remove_old_workspaces()


triloop_janitor()
