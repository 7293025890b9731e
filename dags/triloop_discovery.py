"""Discovery: scan every onboarded repository in the sandbox and upsert deduplicated tickets."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task
from triloop_airflow.assets import TICKETS
from triloop_airflow.defaults import DAG_KWARGS, SANDBOX_ARGS, TAGS
from triloop_sandbox import SandboxOperator


def _sandbox_kwargs(scan: dict[str, Any]) -> dict[str, Any]:
    return {"workspace": scan["workspace"], "output_dir": scan["output_dir"]}


@dag(
    dag_id="triloop_discovery",
    schedule="@hourly",
    max_active_runs=1,
    **DAG_KWARGS,
    tags=[*TAGS, "discovery"],
    doc_md=__doc__,
)
def triloop_discovery() -> None:
    @task
    def list_repos() -> list[dict[str, Any]]:
        from triloop.discovery.service import active_repos
        from triloop_airflow.runtime import app

        return [r.model_dump(mode="json") for r in active_repos(app())]

    @task(map_index_template="{{ repo_id }}")
    def update_workspace(repo: dict[str, Any], **context: Any) -> dict[str, Any]:
        from triloop.discovery.service import prepare_scan
        from triloop.domain.contracts import RepoRef
        from triloop_airflow.runtime import actor, app, label_map_index

        ref = RepoRef.model_validate(repo)
        label_map_index(repo_id=ref.repo_id)
        return prepare_scan(app(), ref, actor(context)).model_dump(mode="json")

    @task(map_index_template="{{ repo_id }}")
    def ingest_findings(scan: dict[str, Any], **context: Any) -> list[str]:
        from triloop.discovery.service import ingest_scan
        from triloop.domain.contracts import ScanRequest
        from triloop_airflow.runtime import (
            actor,
            app,
            label_map_index,
            permanent_failures_fail_fast,
        )

        request = ScanRequest.model_validate(scan)
        label_map_index(repo_id=request.repo_id)
        return permanent_failures_fail_fast(ingest_scan)(app(), request, actor(context))

    @task(outlets=[TICKETS])
    def publish_tickets(created: list[list[str]], **context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.domain.contracts import TicketsEventExtra

        ids = sorted({tid for batch in created for tid in batch})
        if not ids:
            raise AirflowSkipException("no new tickets: nothing to announce")
        extra = TicketsEventExtra(ticket_ids=ids).model_dump(mode="json")
        context["outlet_events"][TICKETS].extra = extra
        return extra

    scans = update_workspace.expand(repo=list_repos())
    scan = SandboxOperator.partial(
        task_id="scan", command=["scan", "--out", "/out"], **SANDBOX_ARGS
    ).expand_kwargs(scans.map(_sandbox_kwargs))
    created = ingest_findings.expand(scan=scans)
    scan >> created
    publish_tickets(created)


triloop_discovery()
