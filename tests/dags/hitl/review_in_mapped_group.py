"""A test DAG: PullRequestReviewOperator inside a mapped task group, one branch task per option.

Map index 0..3 need a human (the test answers approve, request changes, reject, and lets the
fourth time out); map index 4 was auto-merged, so its review and branches skip.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task, task_group
from triloop_airflow.approval import (
    APPROVE,
    REJECT,
    REQUEST_CHANGES,
    PullRequestReviewOperator,
    verdict_for,
)


@dag(dag_id="triloop_test_review_in_mapped_group", schedule=None, tags=["triloop", "test"])
def review_in_mapped_group() -> None:
    @task
    def decisions() -> list[dict[str, Any]]:
        return [
            {"number": n, "outcome": "auto_merge" if n == 4 else "needs_human"} for n in range(5)
        ]

    @task_group(group_id="pull_request")
    def review(decision: dict[str, Any]) -> None:
        human = PullRequestReviewOperator(
            task_id="human_review",
            decision=decision,
            subject="Merge #{{ ti.map_index }}?",
            body="| check | status |\n|---|---|\n| tests | passed |",
            branches={
                APPROVE: "pull_request.merge_approved",
                REQUEST_CHANGES: "pull_request.send_back",
                REJECT: "pull_request.close_rejected",
            },
            response_timeout=timedelta(seconds=2),
        )

        @task
        def merge_approved(verdict: dict[str, Any] | None) -> dict[str, Any]:
            return dict(verdict_for(verdict, APPROVE))

        @task
        def send_back(verdict: dict[str, Any] | None) -> dict[str, Any]:
            return dict(verdict_for(verdict, REQUEST_CHANGES))

        @task
        def close_rejected(verdict: dict[str, Any] | None) -> dict[str, Any]:
            return dict(verdict_for(verdict, REJECT))

        human >> [
            merge_approved(human.output),
            send_back(human.output),
            close_rejected(human.output),
        ]

    review.expand(decision=decisions())


review_in_mapped_group()
