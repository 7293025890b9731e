"""Governance: check each pull request in the sandbox, decide by policy, merge or ask a human."""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task, task_group
from triloop_airflow.approval import (
    APPROVE,
    REJECT,
    REQUEST_CHANGES,
    PullRequestReviewOperator,
)
from triloop_airflow.assets import MERGES, PULL_REQUESTS
from triloop_airflow.defaults import DAG_KWARGS, FORGE_ARGS, SANDBOX_ARGS, TAGS
from triloop_airflow.failures import fail_fast_on_permanent
from triloop_airflow.harness_sandbox import apply_review_settings, skip_unless_autofix
from triloop_sandbox import SandboxOperator

LABEL = "{{ pr_label }}"


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
    @fail_fast_on_permanent
    def select_pull_requests() -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.governance.service import select_reviews
        from triloop_airflow.runtime import actor, app

        picked = select_reviews(app(), actor())
        if not picked:
            raise AirflowSkipException("no pull request awaits review")
        return picked

    @task_group(group_id="pull_request")
    def review(pr: dict[str, Any]) -> Any:
        """One pull request: checks in the sandbox, a decision, then a merge or a human."""
        prepared = prepare_review(pr)
        # Each check in its own container with its own output: the analyzers (no repository
        # code runs) apart from the tests; the tests three times (the base's on the base, the
        # PR's on the merged code, the base's on the merged code); the autofix rerun. The
        # base's runs are reused by PRs on the same base (same tree, image and inputs).
        sandboxes = [
            SandboxOperator(
                task_id=task_id,
                command=[command, "--out", "/out"],
                workspace=prepared[workspace],
                output_dir=prepared[out],
                reuse_results=workspace == "base_workspace",
                **SANDBOX_ARGS,
            )
            for task_id, command, workspace, out in (
                ("analyze_base", "analyze", "base_workspace", "base_out"),
                ("analyze_merged", "analyze", "merged_workspace", "merged_out"),
                ("tests_base", "test", "base_workspace", "base_tests_out"),
                ("run_tests", "test", "merged_workspace", "tests_out"),
                ("tests_guard", "test", "guard_workspace", "guard_out"),
            )
        ]
        sandboxes.append(
            SandboxOperator(
                task_id="reproduce_autofix",
                command=["fix", "--request", "/out/request.json", "--out", "/out"],
                workspace=prepared["reproduce_workspace"],
                output_dir=prepared["reproduce_out"],
                workspace_readonly=False,
                pre_execute=skip_unless_autofix,
                **SANDBOX_ARGS,
            )
        )
        # The optional LLM reviewer: the reviewer harness in the sandbox, configured as
        # execution configures an agent run; skipped (with the reason) when none is set.
        llm = prepare_llm_review(prepared)
        sandboxes.append(
            SandboxOperator(
                task_id="llm_review",
                workspace=llm["workspace"],
                output_dir=llm["output_dir"],
                image=llm["image"],
                command=llm["command"],
                pre_execute=apply_review_settings,
                **SANDBOX_ARGS,
            )
        )
        decision = decide(prepared)
        sandboxes >> decision  # all_done: runs whatever the sandboxes did, a crash is evidence
        merged = auto_merge(decision)
        human = PullRequestReviewOperator(
            task_id="human_review",
            decision=decision,
            subject=decision["title"],
            body=decision["evidence"],
            branches={
                APPROVE: "pull_request.merge_approved",
                REQUEST_CHANGES: "pull_request.send_back",
                REJECT: "pull_request.close_rejected",
            },
        )
        decision >> [merged, human]  # each skips itself unless the decision is its own
        verdict = human.output
        human >> [
            merge_approved(decision, verdict),
            send_back(decision, verdict),
            close_rejected(decision, verdict),
        ]
        return merged

    @task(map_index_template=LABEL, multiple_outputs=True)
    @fail_fast_on_permanent
    def prepare_review(pr: dict[str, Any]) -> dict[str, Any]:
        from triloop.governance.service import prepare_review as prepare
        from triloop_airflow.runtime import actor, app, label_map_index, skip_on

        label_map_index(pr_label=f"{pr['repo_id']}#{pr['number']}")
        with skip_on("NotMergeable"):
            review = prepare(app(), str(pr["repo_id"]), int(pr["number"]), actor())
        return review.model_dump(mode="json")

    @task(map_index_template=LABEL, multiple_outputs=True)
    @fail_fast_on_permanent
    def prepare_llm_review(review: dict[str, Any]) -> dict[str, Any]:
        from triloop.domain.contracts import ReviewRequest
        from triloop.governance.reviewer import prepare_llm_review as prepare
        from triloop_airflow.runtime import app, contract, label_map_index, skip_on

        parsed = contract(ReviewRequest, review, "prepare_review output")
        label_map_index(pr_label=f"{parsed.repo_id}#{parsed.number}")
        with skip_on("ReviewerOff"):
            return prepare(app(), parsed)

    # all_done, so that a crashed check sandbox (container error, harness crash, OOM, timeout)
    # or a skipped LLM review (none configured) does not leave the PR in review: the crash is
    # recorded as an `error` check. It skips when prepare_review was skipped (the PR no longer
    # merges) and fails when prepare_review failed. (The per-PR sandbox_crashes task this
    # replaces made the scheduler hold every PR's decision until all PRs' checks were done.)
    @task(map_index_template=LABEL, multiple_outputs=True, trigger_rule="all_done")
    @fail_fast_on_permanent
    def decide(review: dict[str, Any] | None) -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from triloop.domain.contracts import ReviewRequest
        from triloop.governance.service import decide as decide_review
        from triloop.governance.service import evidence_for
        from triloop_airflow.crashed import crash_causes, crashed_sandboxes, require_review
        from triloop_airflow.runtime import (
            actor,
            app,
            contract,
            label_map_index,
            permanent_failures_fail_fast,
        )

        context = get_current_context()
        parsed = contract(ReviewRequest, require_review(context, review), "prepare_review output")
        label_map_index(pr_label=f"{parsed.repo_id}#{parsed.number}")
        the_app = app()
        decide_once = permanent_failures_fail_fast(decide_review)
        crashed = crashed_sandboxes(context)
        causes = crash_causes(context, crashed)
        decision = decide_once(the_app, parsed, actor(), crashed=crashed, causes=causes)
        title = f"Merge {parsed.repo_id}#{parsed.number}? ({decision.risk} risk)"
        return {
            **decision.model_dump(mode="json"),
            "title": title,
            "evidence": evidence_for(the_app, decision),
        }

    @task(map_index_template=LABEL, **FORGE_ARGS)
    @fail_fast_on_permanent
    def auto_merge(decision: dict[str, Any]) -> dict[str, Any] | None:
        from airflow.sdk.exceptions import AirflowSkipException
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
            raise AirflowSkipException(f"decision is {decision['outcome']}, not auto_merge")
        parsed = Decision.from_task_output(decision)
        return permanent_failures_fail_fast(merge)(app(), parsed, actor())

    # The three branches of human_review. Each also checks the verdict itself: branching does
    # not skip the other branches inside a mapped task group (see PullRequestReviewOperator).
    @task(map_index_template=LABEL, outlets=[MERGES], **FORGE_ARGS)
    @fail_fast_on_permanent
    def merge_approved(decision: dict[str, Any], verdict: dict[str, Any] | None) -> Any:
        from triloop_airflow.approval import apply_human_verdict

        return apply_human_verdict(decision, verdict, APPROVE)

    @task(map_index_template=LABEL)
    @fail_fast_on_permanent
    def send_back(decision: dict[str, Any], verdict: dict[str, Any] | None) -> Any:
        from triloop_airflow.approval import apply_human_verdict

        return apply_human_verdict(decision, verdict, REQUEST_CHANGES)

    @task(map_index_template=LABEL)
    @fail_fast_on_permanent
    def close_rejected(decision: dict[str, Any], verdict: dict[str, Any] | None) -> Any:
        from triloop_airflow.approval import apply_human_verdict

        return apply_human_verdict(decision, verdict, REJECT)

    # all_done: skipped merges (blocked, waiting for a human, sent back) are simply not listed.
    @task(outlets=[MERGES, PULL_REQUESTS], trigger_rule="all_done")
    @fail_fast_on_permanent
    def publish_merges(merges: Any) -> dict[str, Any]:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException
        from triloop.domain.contracts import MergesEventExtra
        from triloop_airflow.runtime import mapped_results

        done = mapped_results(merges)
        if not done:
            raise AirflowSkipException("nothing merged by policy in this run")
        extra = MergesEventExtra(merges=done).model_dump(mode="json")
        events = get_current_context()["outlet_events"]
        events[MERGES].extra = extra
        # PRs whose base moved under them went back to pr_open: this event re-runs governance.
        events[PULL_REQUESTS].extra = {"schema_version": 1, "recheck": True}
        return extra

    publish_merges(review.expand(pr=select_pull_requests()))


triloop_governance()
