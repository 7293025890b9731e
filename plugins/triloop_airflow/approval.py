"""A human's verdict on a pull request, asked for and applied inside Airflow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from triloop_airflow.assets import MERGES


class PullRequestApprovalOperator(ApprovalOperator):
    """Asks "Approve" / "Reject" on one PR and applies the answer through the control plane.

    It has no downstream tasks, so ApprovalOperator never skips anything on "Reject"; the
    verdict (merge, or close with its reason in the ledger) is applied in ``execute_complete``.
    It skips itself unless governance decided ``needs_human`` (no branch operator needed in the
    mapped task group).
    A timeout answers with the default, which is "Reject": a timeout never approves.
    """

    template_fields = (*ApprovalOperator.template_fields, "decision")

    def __init__(
        self,
        *,
        decision: dict[str, Any],
        response_timeout: timedelta = timedelta(days=3),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [MERGES])
        super().__init__(defaults=self.REJECT, response_timeout=response_timeout, **kwargs)
        self.decision = decision

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        if self.decision.get("outcome") != "needs_human":
            raise AirflowSkipException(
                f"decision is {self.decision.get('outcome')}: no human asked"
            )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        result = super().execute_complete(context=context, event=event)
        from triloop.domain.contracts import Decision
        from triloop.governance.service import human_verdict

        from triloop_airflow.runtime import actor, app

        chosen = result["chosen_options"][0]
        merged = human_verdict(
            app(), Decision.from_task_output(self.decision), chosen, actor(context)
        )
        if merged:
            context["outlet_events"][MERGES].extra = {"schema_version": 1, "merges": [merged]}
        return result
