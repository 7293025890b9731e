from __future__ import annotations

from typing import Any

import pytest
from triloop_airflow.runtime import mapped_results


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ({"a": 1}, [{"a": 1}]),  # one mapped instance: Airflow hands over the bare value
        ([{"a": 1}, None, {"b": 2}], [{"a": 1}, {"b": 2}]),
        ([], []),
    ],
)
def test_mapped_results_accepts_both_shapes(value: Any, expected: list[dict[str, Any]]) -> None:
    assert mapped_results(value) == expected


def test_decision_is_read_back_from_a_task_output_with_display_fields() -> None:
    from triloop.domain.contracts import Decision

    decision = Decision(repo_id="r", number=3, outcome="needs_human", risk="low", head_sha="h")
    output = {**decision.model_dump(mode="json"), "title": "Merge r#3?", "evidence": "| ... |"}
    assert Decision.from_task_output(output) == decision
