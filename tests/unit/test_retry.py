"""Transient or permanent: the rule retry policies rely on, and the task edge that applies it."""

from __future__ import annotations

import sqlite3
from typing import Any

import docker.errors
import pytest
import requests
import sqlalchemy.exc
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from pydantic import BaseModel
from triloop.adapters.git import GitError
from triloop.domain.policy import PolicyError
from triloop.domain.states import IllegalTransition
from triloop.errors import PermanentError
from triloop.retry import POLICIES, Disposition, classify
from triloop_airflow.failures import fail_fast_on_permanent

T, P = Disposition.TRANSIENT, Disposition.PERMANENT


def _db_error(message: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


def _docker_error(status: int) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("engine said no", response=response)


def _validation_error() -> Exception:
    class Payload(BaseModel):
        n: int

    try:
        Payload.model_validate({"n": "x"})
    except Exception as exc:
        return exc
    raise AssertionError("unreachable")


def _caused(outer: Exception, cause: Exception) -> Exception:
    outer.__cause__ = cause
    return outer


CASES: list[tuple[str, Any, Disposition]] = [
    ("sqlite-locked", _db_error("database is locked"), T),
    ("pg-lock-timeout", _db_error("canceling statement due to lock timeout"), T),
    ("pg-connection-refused", _db_error("connection to server failed: Connection refused"), T),
    ("integrity-race", sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("unique")), T),
    ("missing-table", _db_error("no such table: tickets"), P),
    ("network", ConnectionResetError("peer reset"), T),
    ("timeout", TimeoutError("read timed out"), T),
    ("engine-500-container-start", _docker_error(500), T),
    ("engine-unreachable", docker.errors.DockerException("Error while fetching server API"), T),
    ("image-404", _docker_error(404), P),
    (
        "git-lock",
        GitError(["add"], 128, "fatal: Unable to create '.git/index.lock': File exists"),
        T,
    ),
    ("git-conflict", GitError(["apply"], 1, "error: patch failed: a.py:3"), P),
    ("permanent", PermanentError("policy refuses"), P),
    ("policy", PolicyError("autonomy: not an integer"), P),
    ("validation", _validation_error(), P),
    ("illegal-move", IllegalTransition("merge", "closed"), P),
    ("missing-file", FileNotFoundError("/out/result.json"), P),
    ("wrapped-lock", _caused(RuntimeError("scan failed"), _db_error("database is locked")), T),
    ("wrapped-bad-input", _caused(RuntimeError("scan failed"), ValueError("bad json")), P),
    ("unknown", RuntimeError("something odd"), T),
]


@pytest.mark.parametrize(("error", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(error: Exception, expected: Disposition) -> None:
    assert classify(error) is expected


def test_each_kind_has_a_bounded_policy_with_a_reason() -> None:
    assert set(POLICIES) == {"control_plane", "sandbox", "forge"}
    for policy in POLICIES.values():
        assert 1 <= policy.retries <= 5 and policy.delay_s <= policy.max_delay_s and policy.why
        assert policy.airflow_args()["retry_exponential_backoff"] is True


def _raising(error: Exception) -> Any:
    @fail_fast_on_permanent
    def task_body() -> None:
        raise error

    return task_body


def test_edge_fails_fast_on_permanent_and_keeps_the_cause() -> None:
    with pytest.raises(AirflowFailException, match=r"IllegalTransition: event 'merge'") as info:
        _raising(IllegalTransition("merge", "closed"))()
    assert isinstance(info.value.__cause__, IllegalTransition)


def test_edge_reraises_transient_for_airflow_to_retry() -> None:
    with pytest.raises(sqlalchemy.exc.OperationalError, match="database is locked"):
        _raising(_db_error("database is locked"))()


def test_edge_lets_airflow_exceptions_through_even_with_a_permanent_cause() -> None:
    skip = _caused(AirflowSkipException("not mergeable"), PermanentError("base moved"))
    with pytest.raises(AirflowSkipException):
        _raising(skip)()
