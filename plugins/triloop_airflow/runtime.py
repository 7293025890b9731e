"""Wiring the control plane inside a running task: database URL, actor, error mapping."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from triloop.bootstrap import App, bootstrap
from triloop.errors import PermanentError
from triloop.store.ledger import Actor

from triloop_airflow.failures import fail_fast_on_permanent

if TYPE_CHECKING:
    from triloop.domain.contracts import Contract

log = logging.getLogger(__name__)
DB_CONN_ID = "triloop_db"
C = TypeVar("C", bound="Contract")


def db_url_from_connection(conn_id: str = DB_CONN_ID) -> str | None:
    """The SQLAlchemy URL in connection ``conn_id`` (extra ``sqlalchemy_url``), if defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("connection %s not defined: using TRILOOP_DB_URL / TRILOOP_HOME", conn_id)
        return None
    url = conn.extra_dejson.get("sqlalchemy_url")
    if not url:
        raise PermanentError(f"connection {conn_id!r} has no 'sqlalchemy_url' in its extra")
    return str(url)


def app() -> App:
    return bootstrap(db_url=db_url_from_connection())


def actor(context: Mapping[str, Any] | None = None) -> Actor:
    """The running task try as a ledger actor (from the current task context by default)."""
    if context is None:
        from airflow.sdk import get_current_context

        context = get_current_context()
    return Actor.from_airflow_context(context)


permanent_failures_fail_fast = fail_fast_on_permanent
"""The same decorator, applied to one call: ``permanent_failures_fail_fast(service)(...)``."""


def contract(model: type[C], payload: Any, source: str) -> C:
    """A task's input as its contract; a payload that does not fit fails the task at once
    (no retry can fix it) with an error naming ``source``, after one ledger row."""
    from triloop.intake import parse

    return permanent_failures_fail_fast(parse)(app(), actor(), model, payload, source=source)


def label_map_index(**values: str) -> None:
    """Expose ``values`` to the task's ``map_index_template`` (shown in the grid view)."""
    from airflow.sdk import get_current_context

    get_current_context().update(values)


@contextmanager
def skip_on(*error_names: str) -> Iterator[None]:
    """Turn the named control-plane errors into a skip of this task (and its map index)."""
    from airflow.sdk.exceptions import AirflowSkipException

    try:
        yield
    except Exception as exc:
        if type(exc).__name__ in error_names:
            raise AirflowSkipException(f"{type(exc).__name__}: {exc}") from exc
        raise


def mapped_results(value: Any) -> list[dict[str, Any]]:
    """The dict outputs of a mapped task (or task group) as a list, ``None`` ones dropped.

    Airflow 3.3 hands a downstream task the bare value, not a one-item list, when a single
    mapped instance produced output (seen in ``dag.test`` with one repository); each mapped
    Triloop task therefore returns a dict (or None), so both shapes can be told apart here.
    """
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [item for item in value if item is not None]
