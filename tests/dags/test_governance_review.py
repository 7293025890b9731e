"""The human review of a pull request: an HITLBranchOperator with three options in the mapped
task group, answered through Airflow's REST API (the hitlDetails endpoint) during ``dag.test``.

``test_branches_in_a_mapped_group`` runs ``tests/dags/hitl/review_in_mapped_group.py`` (the
real operator and branch helper, trivial branch bodies) with ``dag.test`` in the main thread
while ``tests/support/hitl.Reviewer`` answers each map index through the REST API of an
in-process api-server on the same metadata DB, and lets the fourth one time out (the
scheduler's own sweep applies the default).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.hitl import TIMEOUT, Reviewer

ROOT = Path(__file__).resolve().parents[2]
HITL_DAG = Path(__file__).with_name("hitl") / "review_in_mapped_group.py"
DAG_ID = "triloop_test_review_in_mapped_group"
ANSWERS = {
    0: {"chosen_options": ["Approve"], "params_input": {"feedback": ""}},
    1: {"chosen_options": ["Request changes"], "params_input": {"feedback": "Keep the import."}},
    2: {"chosen_options": ["Reject"], "params_input": {"feedback": "Not worth it."}},
}


def test_governance_asks_a_human_with_three_branches() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from triloop_airflow.approval import PullRequestReviewOperator

    dag = DagBag(dag_folder=str(ROOT / "dags" / "triloop_governance.py")).dags["triloop_governance"]
    human = dag.get_task("pull_request.human_review")
    assert isinstance(human, PullRequestReviewOperator)
    assert human.options == ["Approve", "Request changes", "Reject"]
    assert human.defaults == ["Request changes"]  # a timeout never approves
    assert human.response_timeout == timedelta(days=3)
    assert "feedback" in human.params
    assert human.options_mapping == {
        "Approve": "pull_request.merge_approved",
        "Request changes": "pull_request.send_back",
        "Reject": "pull_request.close_rejected",
    }
    assert human.downstream_task_ids == set(human.options_mapping.values())
    assert human.upstream_task_ids == {"pull_request.decide"}
    assert dag.get_task("pull_request.merge_approved").outlets  # announces its merge


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"branches": {"Approve": "a", "Reject": "c"}}, "branches must map exactly"),
        (
            {"branches": {"Approve": "a", "Request changes": "b", "Reject": "c", "Merge": "d"}},
            "branches must map exactly",
        ),
        ({"response_timeout": timedelta(0)}, "response_timeout must be positive"),
    ],
)
def test_bad_operator_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    from triloop_airflow.approval import PullRequestReviewOperator

    args: dict[str, Any] = {
        "task_id": "human_review",
        "decision": {},
        "subject": "s",
        "branches": {"Approve": "a", "Request changes": "b", "Reject": "c"},
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        PullRequestReviewOperator(**args)


@pytest.mark.parametrize(
    ("verdict", "option", "message"),
    [
        (None, "Approve", "no verdict: no human was asked"),
        ({"chosen": "Reject"}, "Approve", "the reviewer chose 'Reject', not 'Approve'"),
    ],
)
def test_a_branch_not_chosen_skips_itself(
    verdict: dict[str, Any] | None, option: str, message: str
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException
    from triloop_airflow.approval import verdict_for

    with pytest.raises(AirflowSkipException, match=message):
        verdict_for(verdict, option)
    with pytest.raises(ValueError, match="option 'Merge' is not one of"):
        verdict_for({"chosen": "Merge"}, "Merge")


@pytest.fixture(scope="module")
def airflow_db() -> str:
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, timeout=300)
    return "migrated"


def test_branches_in_a_mapped_group(airflow_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    # dag.test serializes the DAGs of the dags-folder bundle: make it the test DAG's folder.
    from airflow import settings

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(HITL_DAG.parent))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(HITL_DAG.parent))
    bag = DagBag(dag_folder=str(HITL_DAG))
    assert bag.import_errors == {}
    reviewer = Reviewer(
        DAG_ID,
        "pull_request.human_review",
        lambda index, _: ANSWERS.get(index, TIMEOUT),
        count=4,
        deadline_s=240,
    ).start()
    run = bag.dags[DAG_ID].test()  # the main thread: task runners install signal handlers
    reviewer.join()
    assert reviewer.errors == []
    assert reviewer.status == {0: 200, 1: 200, 2: 200, 3: 0}
    assert {d["defaults"][0] for d in reviewer.asked.values()} == {"Request changes"}
    assert reviewer.asked[0]["subject"] == "Merge #0?"
    assert str(run.state) == "success"

    with create_session() as session:
        states = {
            (ti.task_id.split(".")[-1], ti.map_index): str(ti.state)
            for ti in session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run.run_id
                )
            )
        }
        returned = {
            (row.task_id.split(".")[-1], row.map_index): XComModel.deserialize_value(row)
            for row in session.scalars(
                select(XComModel).where(
                    XComModel.dag_id == DAG_ID,
                    XComModel.run_id == run.run_id,
                    XComModel.key == "return_value",
                )
            )
        }
    chosen = {0: "merge_approved", 1: "send_back", 2: "close_rejected", 3: "send_back"}
    for index, branch in chosen.items():
        assert states[("human_review", index)] == "success"
        for other in ("merge_approved", "send_back", "close_rejected"):
            assert states[(other, index)] == ("success" if other == branch else "skipped"), (
                other,
                index,
            )
    # Map index 4 was auto-merged: nobody is asked, and none of its branches runs.
    assert {states[(t, 4)] for t in ("human_review", *chosen.values())} == {"skipped"}

    assert returned[("send_back", 1)] == {
        "chosen": "Request changes",
        "branch": "pull_request.send_back",
        "feedback": "Keep the import.",
        "by": "Anonymous",
        "timed_out": False,
    }
    assert returned[("merge_approved", 0)]["chosen"] == "Approve"
    assert returned[("close_rejected", 2)]["feedback"] == "Not worth it."
    timed_out = returned[("send_back", 3)]
    assert timed_out["chosen"] == "Request changes" and timed_out["timed_out"] is True
    assert timed_out["feedback"] == "No reviewer answered before the approval request timed out."
