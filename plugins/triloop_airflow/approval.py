"""A human's verdict on a pull request, asked for in Airflow and applied by the branch it picks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import Param

APPROVE, REQUEST_CHANGES, REJECT = "Approve", "Request changes", "Reject"
OPTIONS = [APPROVE, REQUEST_CHANGES, REJECT]  # the same labels as triloop.governance.verdicts
TIMEOUT_FEEDBACK = "No reviewer answered before the approval request timed out."


class PullRequestReviewOperator(HITLBranchOperator):
    """Asks Approve / Request changes / Reject on one PR, showing its evidence as markdown.

    ``branches`` maps each option to the task that applies it (merge, send back, close). The
    task skips itself, and so its branches, unless governance decided ``needs_human``. A timeout
    answers with the default, Request changes: a timeout never approves. The reviewer may type
    feedback (the ``feedback`` form field); it reaches the ticket's next harness run.

    Branching inside a mapped task group does not skip the other branches in this Airflow
    version (``NotPreviouslySkippedDep`` looks the choice up at map index -1 because the
    operator itself is not mapped, only its group), so each branch task also checks the
    returned verdict itself (:func:`verdict_for`). The skip XCom is still written, so the
    branches skip on their own once Airflow resolves the group's map index.
    """

    template_fields = (*HITLBranchOperator.template_fields, "decision")

    def __init__(
        self,
        *,
        decision: Any,
        branches: Mapping[str, str],
        response_timeout: timedelta = timedelta(days=3),
        **kwargs: Any,
    ) -> None:
        if set(branches) != set(OPTIONS):
            raise ValueError(f"branches must map exactly {OPTIONS} to task ids, got {branches}")
        if response_timeout <= timedelta(0):
            raise ValueError(f"response_timeout must be positive, got {response_timeout}")
        super().__init__(
            options=list(OPTIONS),
            options_mapping=dict(branches),
            defaults=REQUEST_CHANGES,
            multiple=False,
            params={
                "feedback": Param(
                    "",
                    type="string",
                    title="Feedback",
                    description="What to change (shown to the ticket's next harness run)",
                )
            },
            response_timeout=response_timeout,
            **kwargs,
        )
        self.decision = decision

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        outcome = self.decision.get("outcome")
        if outcome != "needs_human":
            raise AirflowSkipException(f"decision is {outcome}: no human asked")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        super().execute_complete(context=context, event=event)  # validates, then branches
        chosen = event["chosen_options"][0]
        user = event.get("responded_by_user") or {}
        timed_out = bool(event.get("timedout")) or not user
        feedback = str((event.get("params_input") or {}).get("feedback") or "").strip()
        if timed_out and not feedback:
            feedback = TIMEOUT_FEEDBACK
        return {
            "chosen": chosen,
            "branch": self.options_mapping[chosen],
            "feedback": feedback,
            "by": "" if timed_out else str(user.get("name") or user.get("id") or ""),
            "timed_out": timed_out,
        }


def verdict_for(verdict: Mapping[str, Any] | None, option: str) -> Mapping[str, Any]:
    """The verdict if the reviewer chose ``option``; otherwise this branch skips itself."""
    from airflow.sdk.exceptions import AirflowSkipException

    if option not in OPTIONS:
        raise ValueError(f"option {option!r} is not one of {OPTIONS}")
    if not verdict:
        raise AirflowSkipException("no verdict: no human was asked")
    if verdict.get("chosen") != option:
        raise AirflowSkipException(f"the reviewer chose {verdict.get('chosen')!r}, not {option!r}")
    return verdict


def apply_human_verdict(
    decision: Mapping[str, Any], verdict: Mapping[str, Any] | None, option: str
) -> dict[str, Any]:
    """Inside a branch task: apply ``option`` once if the reviewer chose it, else skip."""
    from airflow.sdk import get_current_context
    from triloop.domain.contracts import Decision
    from triloop.governance.verdicts import apply_verdict

    from triloop_airflow.assets import MERGES
    from triloop_airflow.runtime import actor, app, label_map_index

    label_map_index(pr_label=f"{decision['repo_id']}#{decision['number']}")
    chosen = verdict_for(verdict, option)
    context = get_current_context()
    result = apply_verdict(
        app(),
        Decision.from_task_output(dict(decision)),
        option,
        actor(context),
        feedback=str(chosen.get("feedback", "")),
        by=str(chosen.get("by", "")),
    )
    if option == APPROVE and result.get("merged"):
        context["outlet_events"][MERGES].extra = {
            "schema_version": 1,
            "merges": [result["merged"]],
        }
    return result
