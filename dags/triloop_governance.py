"""Governance: check each pull request in the sandbox, decide by policy, merge or ask a human."""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from triloop_airflow.approval import PullRequestApprovalOperator
from triloop_airflow.assets import MERGES, PULL_REQUESTS
from triloop_airflow.defaults import DAG_KWARGS, FORGE_ARGS, SANDBOX_ARGS, TAGS
from triloop_sandbox import SandboxOperator


def _base_scan(review: dict[str, Any]) -> dict[str, Any]:
    return {"workspace": review["base_workspace"], "output_dir": review["base_out"]}


def _merged_scan(review: dict[str, Any]) -> dict[str, Any]:
    return {"workspace": review["merged_workspace"], "output_dir": review["merged_out"]}


def _tests(review: dict[str, Any]) -> dict[str, Any]:
    return {"workspace": review["merged_workspace"], "output_dir": review["tests_out"]}


def _approval(decision: dict[str, Any]) -> dict[str, Any]:
    return {
        "decision": decision,
        "subject": f"Merge {decision['repo_id']}#{decision['number']}? ({decision['risk']} risk)",
        "body": decision["evidence"],
    }


@dag(
    dag_id="triloop_governance",
    # Runs when execution opens pull requests; the cron picks up PRs sent back for a recheck.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/30 * * * *", timezone="UTC"), assets=PULL_REQUESTS
    ),
    max_active_runs=3,
    **DAG_KWARGS,
    tags=[*TAGS, "governance"],
    doc_md=__doc__,
)
def triloop_governance() -> None:
    @task
    def select_pull_requests(**context: Any) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.governance.service import select_reviews
        from triloop_airflow.runtime import actor, app

        picked = select_reviews(app(), actor(context))
        if not picked:
            raise AirflowSkipException("no pull request awaits review")
        return picked

    @task(map_index_template="{{ pr_label }}")
    def prepare_review(pr: dict[str, Any], **context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.governance.service import NotMergeable
        from triloop.governance.service import prepare_review as prepare
        from triloop_airflow.runtime import actor, app, label_map_index

        label_map_index(pr_label=f"{pr['repo_id']}#{pr['number']}")
        try:
            review = prepare(app(), str(pr["repo_id"]), int(pr["number"]), actor(context))
        except NotMergeable as exc:
            raise AirflowSkipException(str(exc)) from exc
        return review.model_dump(mode="json")

    @task(map_index_template="{{ pr_label }}")
    def decide(review: dict[str, Any], **context: Any) -> dict[str, Any]:
        from triloop.domain.contracts import ReviewRequest
        from triloop.governance.service import decide as decide_review
        from triloop.governance.service import evidence_for
        from triloop_airflow.runtime import (
            actor,
            app,
            label_map_index,
            permanent_failures_fail_fast,
        )

        parsed = ReviewRequest.model_validate(review)
        label_map_index(pr_label=f"{parsed.repo_id}#{parsed.number}")
        the_app = app()
        decision = permanent_failures_fail_fast(decide_review)(the_app, parsed, actor(context))
        return {**decision.model_dump(mode="json"), "evidence": evidence_for(the_app, decision)}

    @task(map_index_template="{{ pr_label }}", **FORGE_ARGS)
    def auto_merge(decision: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        from triloop.domain.contracts import Decision
        from triloop.governance.service import merge
        from triloop_airflow.runtime import (
            actor,
            app,
            label_map_index,
            permanent_failures_fail_fast,
        )

        label_map_index(pr_label=f"{decision['repo_id']}#{decision['number']}")
        if decision["outcome"] != "auto_merge":
            return None
        parsed = Decision.model_validate({k: v for k, v in decision.items() if k != "evidence"})
        return permanent_failures_fail_fast(merge)(app(), parsed, actor(context))

    @task
    def needing_a_human(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [_approval(d) for d in decisions if d["outcome"] == "needs_human"]

    @task(outlets=[MERGES, PULL_REQUESTS])
    def publish_merges(merges: list[dict[str, Any] | None], **context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.domain.contracts import MergesEventExtra

        done = [m for m in merges if m]
        if not done:
            raise AirflowSkipException("nothing merged by policy in this run")
        extra = MergesEventExtra(merges=done).model_dump(mode="json")
        context["outlet_events"][MERGES].extra = extra
        # PRs whose base moved under them went back to pr_open: this event re-runs governance.
        context["outlet_events"][PULL_REQUESTS].extra = {"schema_version": 1, "recheck": True}
        return extra

    reviews = prepare_review.expand(pr=select_pull_requests())
    sandboxes = [
        SandboxOperator.partial(task_id=task_id, command=command, **SANDBOX_ARGS).expand_kwargs(
            reviews.map(kwargs)
        )
        for task_id, command, kwargs in (
            ("scan_base", ["scan", "--out", "/out"], _base_scan),
            ("scan_merged", ["scan", "--out", "/out"], _merged_scan),
            ("run_tests", ["check", "--out", "/out"], _tests),
        )
    ]
    decisions = decide.expand(review=reviews)
    sandboxes >> decisions
    publish_merges(auto_merge.expand(decision=decisions))
    PullRequestApprovalOperator.partial(task_id="human_approval").expand_kwargs(
        needing_a_human(decisions)
    )


triloop_governance()
