"""Discovery: scan every onboarded repository in the sandbox and upsert deduplicated tickets."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task, task_group
from triloop_airflow.assets import TICKETS
from triloop_airflow.defaults import DAG_KWARGS, FORGE_ARGS, SANDBOX_ARGS, TAGS
from triloop_airflow.failures import fail_fast_on_permanent
from triloop_sandbox import SandboxOperator


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
    @fail_fast_on_permanent
    def list_repos() -> list[dict[str, Any]]:
        from triloop.discovery.service import active_repos
        from triloop_airflow.runtime import app

        return [r.model_dump(mode="json") for r in active_repos(app())]

    @task_group(group_id="repo")
    def scan_repo(repo: dict[str, Any]) -> Any:
        """One repository: its own checkout, sandbox scan and ticket upsert."""
        scan = update_workspace(repo)
        sandbox = SandboxOperator(
            task_id="scan",
            command=["scan", "--out", "/out"],
            workspace=scan["workspace"],
            output_dir=scan["output_dir"],
            **SANDBOX_ARGS,
        )
        created = ingest_findings(scan)
        sandbox >> created
        show_in_tracker(created)
        return created

    @task(map_index_template="{{ repo_id }}", multiple_outputs=True)
    @fail_fast_on_permanent
    def update_workspace(repo: dict[str, Any]) -> dict[str, Any]:
        from triloop.discovery.service import prepare_scan
        from triloop.discovery.wheelhouse import stage_wheelhouse
        from triloop.domain.contracts import RepoRef
        from triloop_airflow.runtime import actor, app, contract, label_map_index

        ref = contract(RepoRef, repo, "list_repos output")
        label_map_index(repo_id=ref.repo_id)
        request = prepare_scan(app(), ref, actor())
        stage_wheelhouse(app(), request)  # the dependencies the offline sandbox installs
        return request.model_dump(mode="json")

    @task(map_index_template="{{ repo_id }}")
    @fail_fast_on_permanent
    def ingest_findings(scan: dict[str, Any]) -> dict[str, Any]:
        from triloop.discovery.service import ingest_scan
        from triloop.domain.contracts import ScanRequest
        from triloop_airflow.runtime import (
            actor,
            app,
            contract,
            label_map_index,
            permanent_failures_fail_fast,
        )

        request = contract(ScanRequest, scan, "update_workspace output")
        label_map_index(repo_id=request.repo_id)
        created = permanent_failures_fail_fast(ingest_scan)(app(), request, actor())
        return {"repo_id": request.repo_id, "created": created}

    # Its own task, with the forge's retries: a tracker outage (GitHub) retries only this,
    # never the scan or the upsert; effects keep a re-run from showing a ticket twice.
    @task(map_index_template="{{ repo_id }}", **FORGE_ARGS)
    @fail_fast_on_permanent
    def show_in_tracker(ingested: dict[str, Any]) -> dict[str, Any]:
        from triloop.tracking import publish_tickets
        from triloop_airflow.runtime import actor, app, label_map_index

        label_map_index(repo_id=ingested["repo_id"])
        shown = publish_tickets(app(), ingested["repo_id"], ingested["created"], actor())
        return {"repo_id": ingested["repo_id"], "shown": shown}

    # all_done: tickets from the repositories that scanned are announced even if one failed.
    @task(outlets=[TICKETS], trigger_rule="all_done")
    @fail_fast_on_permanent
    def publish_tickets(created: Any) -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.domain.contracts import TicketsEventExtra
        from triloop_airflow.runtime import mapped_results

        ids = sorted({tid for scan in mapped_results(created) for tid in scan["created"]})
        if not ids:
            raise AirflowSkipException("no new tickets: nothing to announce")
        extra = TicketsEventExtra(ticket_ids=ids).model_dump(mode="json")
        get_current_context()["outlet_events"][TICKETS].extra = extra
        return extra

    publish_tickets(scan_repo.expand(repo=list_repos()))


triloop_discovery()
