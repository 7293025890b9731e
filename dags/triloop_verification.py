"""Post-merge verification: the tests on the default branch at each merge; a red merge is
reverted through a new pull request that governance reviews, and counted as an escaped defect."""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task, task_group
from triloop_airflow.assets import MERGES, PULL_REQUESTS
from triloop_airflow.defaults import DAG_KWARGS, FORGE_ARGS, SANDBOX_ARGS, TAGS
from triloop_airflow.failures import fail_fast_on_permanent
from triloop_sandbox import SandboxOperator

LABEL = "{{ pr_label }}"


@dag(
    dag_id="triloop_verification",
    # Runs when governance merges; the cron picks up merges a failed or missed run left behind.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("15 * * * *", timezone="UTC"), assets=MERGES
    ),
    max_active_runs=1,
    **DAG_KWARGS,
    tags=[*TAGS, "governance", "verification"],
    doc_md=__doc__,
)
def triloop_verification() -> None:
    @task
    @fail_fast_on_permanent
    def select_merges() -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.governance.postmerge import select_merges as select
        from triloop_airflow.runtime import actor, app

        picked = select(app(), actor())
        if not picked:
            raise AirflowSkipException("no merge awaits verification")
        return picked

    @task_group(group_id="merge")
    def verify(pr: dict[str, Any]) -> Any:
        """One merge: its tests in the sandbox at the merge commit, then verified or reverted."""
        prepared = prepare_verification(pr)
        tests = SandboxOperator(
            task_id="run_tests",
            command=["check", "--out", "/out"],
            workspace=prepared["workspace"],
            output_dir=prepared["tests_out"],
            **SANDBOX_ARGS,
        )
        concluded = conclude(prepared)
        tests >> concluded
        return concluded

    @task(map_index_template=LABEL, multiple_outputs=True)
    @fail_fast_on_permanent
    def prepare_verification(pr: dict[str, Any]) -> dict[str, Any]:
        from triloop.governance.postmerge import prepare_verification as prepare
        from triloop_airflow.runtime import actor, app, label_map_index

        label_map_index(pr_label=f"{pr['repo_id']}#{pr['number']}")
        request = prepare(app(), str(pr["repo_id"]), int(pr["number"]), actor())
        return request.model_dump(mode="json")

    @task(map_index_template=LABEL, **FORGE_ARGS)
    @fail_fast_on_permanent
    def conclude(request: dict[str, Any]) -> dict[str, Any]:
        from triloop.domain.contracts import VerificationRequest
        from triloop.governance.postmerge import conclude as conclude_merge
        from triloop_airflow.runtime import actor, app, contract, label_map_index

        parsed = contract(VerificationRequest, request, "prepare_verification output")
        label_map_index(pr_label=f"{parsed.repo_id}#{parsed.number}")
        return conclude_merge(app(), parsed, actor()).model_dump(mode="json")

    # all_done: a merge whose verification failed does not hide the reverts of the others.
    @task(outlets=[PULL_REQUESTS], trigger_rule="all_done")
    @fail_fast_on_permanent
    def publish_reverts(verifications: Any) -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.domain.contracts import PullRequestsEventExtra
        from triloop_airflow.runtime import mapped_results

        reverts = [v["revert"] for v in mapped_results(verifications) if v.get("revert")]
        if not reverts:
            raise AirflowSkipException("no revert opened in this run")
        extra = PullRequestsEventExtra.model_validate({"pull_requests": reverts})
        payload = extra.model_dump(mode="json")
        get_current_context()["outlet_events"][PULL_REQUESTS].extra = payload
        return payload

    publish_reverts(verify.expand(pr=select_merges()))


triloop_verification()
