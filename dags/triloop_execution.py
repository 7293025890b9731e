"""Execution: claim ready tickets, run their harness in the sandbox, open pull requests."""

from __future__ import annotations

from typing import Any

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    PokeReturnValue,
    dag,
    task,
    task_group,
)
from triloop_airflow.assets import PULL_REQUESTS, TICKETS
from triloop_airflow.defaults import DAG_KWARGS, FORGE_ARGS, SANDBOX_ARGS, TAGS
from triloop_airflow.failures import fail_fast_on_permanent
from triloop_airflow.harness_sandbox import apply_harness_settings
from triloop_airflow.leases import ticket_lease
from triloop_sandbox import SandboxOperator


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
    @fail_fast_on_permanent
    def claim_tickets() -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.execution.service import claim
        from triloop_airflow.runtime import actor, app

        claims = claim(app(), actor())
        if not claims:
            # The reason: the circuit breaker is open or a daily cost limit is reached.
            raise AirflowSkipException(
                claims.reason or "another run claimed the ready tickets first"
            )
        return [c.model_dump(mode="json") for c in claims]

    @task_group(group_id="ticket")
    def work_on_ticket(claim: dict[str, Any]) -> Any:
        """One claimed ticket: its own workspace, sandbox and PR (a failure stays its own)."""
        request = prepare_workspace(claim)
        # The harness's image and command come from prepare; its runtime limit, egress
        # allowlist and API key (private_environment, read from its connection at run time)
        # are set by apply_harness_settings just before the container starts.
        harness = SandboxOperator(
            task_id="run_harness",
            workspace=request["workspace"],
            output_dir=request["output_dir"],
            image=request["image"],
            command=request["command"],
            pre_execute=apply_harness_settings,
            ticket_id=request["ticket_id"],
            lease=ticket_lease,  # renewed while the harness runs; a lost lease kills it
            workspace_readonly=False,
            **SANDBOX_ARGS,
        )
        pr = open_pull_request(request)
        harness >> pr
        return pr

    @task(map_index_template="{{ ticket_id }}", multiple_outputs=True)
    @fail_fast_on_permanent
    def prepare_workspace(claim: dict[str, Any]) -> dict[str, Any]:
        from triloop.domain.contracts import Claim
        from triloop.execution.harness import harness_for
        from triloop.execution.harnesses.settings import sandbox_settings
        from triloop.execution.service import prepare
        from triloop_airflow.runtime import (
            actor,
            app,
            contract,
            label_map_index,
            permanent_failures_fail_fast,
        )

        parsed = contract(Claim, claim, "claim_tickets output")
        label_map_index(ticket_id=parsed.ticket_id)
        request = permanent_failures_fail_fast(prepare)(app(), parsed, actor())
        command = harness_for(request.harness).command(request)
        settings = sandbox_settings(app().policy, request).model_dump(mode="json")
        return {**request.model_dump(mode="json"), **settings, "command": command}

    # all_done: a harness that failed still left result.json; the ticket's attempt is recorded.
    @task(map_index_template="{{ ticket_id }}", trigger_rule="all_done", **FORGE_ARGS)
    @fail_fast_on_permanent
    def open_pull_request(request: dict[str, Any]) -> dict[str, Any] | None:
        from triloop.domain.contracts import HarnessRequest
        from triloop.execution.service import finish
        from triloop_airflow.runtime import (
            actor,
            app,
            contract,
            label_map_index,
            permanent_failures_fail_fast,
        )

        label_map_index(ticket_id=request["ticket_id"])
        fields = {k: v for k, v in request.items() if k in HarnessRequest.model_fields}
        parsed = contract(HarnessRequest, fields, "prepare_workspace output")
        pr = permanent_failures_fail_fast(finish)(app(), parsed, actor())
        return pr.model_dump(mode="json") if pr else None

    # all_done: announce the PRs that were opened even if another ticket's work failed.
    @task(outlets=[PULL_REQUESTS], trigger_rule="all_done")
    @fail_fast_on_permanent
    def publish_pull_requests(prs: Any) -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.domain.contracts import PullRequestRef, PullRequestsEventExtra
        from triloop_airflow.runtime import mapped_results

        refs = [PullRequestRef.model_validate(p) for p in mapped_results(prs)]
        if not refs:
            raise AirflowSkipException("no pull request opened")
        extra = PullRequestsEventExtra(pull_requests=refs).model_dump(mode="json")
        get_current_context()["outlet_events"][PULL_REQUESTS].extra = extra
        return extra

    ready = wait_for_ready_tickets()
    claims = claim_tickets()
    ready >> claims
    publish_pull_requests(work_on_ticket.expand(claim=claims))


triloop_execution()
