"""Transient or permanent: how a task's failure reaches Airflow (light; DAG files import it).

Decorate a task function with :func:`fail_fast_on_permanent` (below ``@task``): an error that
``triloop.retry.classify`` calls permanent fails the task at once (AirflowFailException, no
retries, the cause kept); a transient one is re-raised so Airflow retries it with the kind's
policy (triloop_airflow.defaults). Airflow's own exceptions (skip, fail) pass through as they are.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def fail_fast_on_permanent(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from airflow.sdk.exceptions import AirflowException, AirflowFailException
        from triloop.retry import Disposition, classify

        try:
            return func(*args, **kwargs)
        except AirflowException:
            raise
        except Exception as exc:
            if classify(exc) is Disposition.PERMANENT:
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
            log.warning("transient %s, Airflow will retry: %s", type(exc).__name__, exc)
            raise

    return wrapper
