"""Execution: claim ready tickets, run their harness in the sandbox, open pull requests."""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, PokeReturnValue, dag, task
from triloop_airflow.assets import PULL_REQUESTS, TICKETS
from triloop_airflow.defaults import DAG_KWARGS, FORGE_ARGS, SANDBOX_ARGS, TAGS
from triloop_sandbox import SandboxOperator


def _harness_kwargs(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "workspace": request["workspace"],
        "output_dir": request["output_dir"],
        "command": request["command"],
        "ticket_id": request["ticket_id"],
    }


@dag(
    dag_id="triloop_execution",
    # New tickets trigger a run at once; the cron is a fallback for requeued tickets.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/10 * * * *", timezone="UTC"), assets=TICKETS
    ),
    max_active_runs=1,
    **DAG_KWARGS,
    tags=[*TAGS, "execution"],
    doc_md=__doc__,
)
def triloop_execution() -> None:
    # Reschedule mode holds no worker slot between pokes; at the timeout it skips the run.
    @task.sensor(poke_interval=20, timeout=300, mode="reschedule", soft_fail=True)
    def wait_for_ready_tickets() -> PokeReturnValue:
        from triloop.execution.service import count_ready
        from triloop_airflow.runtime import app

        ready = count_ready(app())
        return PokeReturnValue(is_done=ready > 0, xcom_value=ready)

    @task
    def claim_tickets(**context: Any) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.execution.service import claim
        from triloop_airflow.runtime import actor, app

        claims = claim(app(), actor(context))
        if not claims:
            raise AirflowSkipException("another run claimed the ready tickets first")
        return [c.model_dump(mode="json") for c in claims]

    @task(map_index_template="{{ ticket_id }}")
    def prepare_workspace(claim: dict[str, Any], **context: Any) -> dict[str, Any]:
        from triloop.domain.contracts import Claim
        from triloop.execution.harness import harness_for
        from triloop.execution.service import prepare
        from triloop_airflow.runtime import (
            actor,
            app,
            label_map_index,
            permanent_failures_fail_fast,
        )

        parsed = Claim.model_validate(claim)
        label_map_index(ticket_id=parsed.ticket_id)
        request = permanent_failures_fail_fast(prepare)(app(), parsed, actor(context))
        command = harness_for(request.harness).command(request)
        return {**request.model_dump(mode="json"), "command": command}

    @task(map_index_template="{{ ticket_id }}", **FORGE_ARGS)
    def open_pull_request(request: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        from triloop.domain.contracts import HarnessRequest
        from triloop.execution.service import finish
        from triloop_airflow.runtime import (
            actor,
            app,
            label_map_index,
            permanent_failures_fail_fast,
        )

        label_map_index(ticket_id=request["ticket_id"])
        parsed = HarnessRequest.model_validate({k: v for k, v in request.items() if k != "command"})
        pr = permanent_failures_fail_fast(finish)(app(), parsed, actor(context))
        return pr.model_dump(mode="json") if pr else None

    @task(outlets=[PULL_REQUESTS])
    def publish_pull_requests(prs: list[dict[str, Any] | None], **context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.domain.contracts import PullRequestRef, PullRequestsEventExtra

        refs = [PullRequestRef.model_validate(p) for p in prs if p]
        if not refs:
            raise AirflowSkipException("no pull request opened")
        extra = PullRequestsEventExtra(pull_requests=refs).model_dump(mode="json")
        context["outlet_events"][PULL_REQUESTS].extra = extra
        return extra

    ready = wait_for_ready_tickets()
    claims = claim_tickets()
    ready >> claims
    requests = prepare_workspace.expand(claim=claims)
    harness = SandboxOperator.partial(
        task_id="run_harness", workspace_readonly=False, **SANDBOX_ARGS
    ).expand_kwargs(requests.map(_harness_kwargs))
    prs = open_pull_request.expand(request=requests)
    harness >> prs
    publish_pull_requests(prs)


triloop_execution()
