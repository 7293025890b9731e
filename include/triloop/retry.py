"""Retry policies per kind of task, and the rule that tells transient errors from permanent ones.

Airflow retries a failed task ``retries`` times with exponential backoff; Triloop decides
*whether* a failure deserves those retries. Transient: the network, a lock or lock timeout, a
concurrent writer that won a race, a container that failed to start, the Docker engine or the
database not answering. Permanent: bad input, a policy refusal, an illegal lifecycle move, a
missing file; those fail at once with their message, since the same input fails the same way.
An error of no known kind is treated as transient: retried a bounded number of times, then
failed, as Airflow would without Triloop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from triloop.errors import PermanentError


class Disposition(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class RetryPolicy:
    """How Airflow retries one kind of task, and why."""

    retries: int
    delay_s: float
    max_delay_s: float
    why: str

    def airflow_args(self) -> dict[str, Any]:
        return {
            "retries": self.retries,
            "retry_delay": timedelta(seconds=self.delay_s),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(seconds=self.max_delay_s),
        }


POLICIES: dict[str, RetryPolicy] = {
    "control_plane": RetryPolicy(
        2, 15, 300, "Triloop DB and local git: a lock or a busy disk clears within seconds"
    ),
    "sandbox": RetryPolicy(
        1,
        30,
        120,
        "one retry for a container that failed to start; a harness that ran and failed is an "
        "attempt on the ticket, retried by the lifecycle, not by Airflow",
    ),
    "forge": RetryPolicy(
        4, 30, 600, "forge calls are idempotent and a forge outage deserves patience"
    ),
}

# Messages of database and git errors that say "try again", whatever the driver's class.
_TRANSIENT_MESSAGE = re.compile(
    r"database is locked|lock timeout|lock wait|deadlock|could not obtain lock|"
    r"could not serialize|could not connect|connection (refused|reset|timed out)|"
    r"server closed the connection|terminating connection|too many (connections|clients)|"
    r"index\.lock|timed out|temporarily unavailable|could not resolve host",
    re.IGNORECASE,
)
_PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError)


def classify(exc: BaseException) -> Disposition:
    """Transient or permanent, judged on ``exc`` and then the errors that caused it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = _classify_one(current)
        if verdict is not None:
            return verdict
        current = current.__cause__ or current.__context__
    return Disposition.TRANSIENT


def _classify_one(exc: BaseException) -> Disposition | None:
    name = type(exc).__name__
    module = type(exc).__module__
    if isinstance(exc, PermanentError):
        return Disposition.PERMANENT
    if module.startswith("sqlalchemy") or module.startswith("psycopg2"):
        return _classify_database(exc, name)
    if module.startswith("docker"):
        return _classify_docker(exc)
    if name == "GitError":
        return _by_message(exc)
    if name in ("TrackerError", "GitHubForgeError"):  # they know: 5xx, rate limit transient
        return Disposition.TRANSIENT if getattr(exc, "transient", False) else Disposition.PERMANENT
    if name == "IllegalTransition" or isinstance(exc, ValueError | LookupError | TypeError):
        return Disposition.PERMANENT  # bad input, a refused move, a missing row; pydantic too
    if isinstance(exc, _PERMANENT_OS_ERRORS):
        return Disposition.PERMANENT
    if isinstance(exc, OSError):  # ConnectionError, TimeoutError, socket and disk errors
        return Disposition.TRANSIENT
    return None


def _classify_database(exc: BaseException, name: str) -> Disposition:
    if name in ("IntegrityError", "UniqueViolation"):
        # A concurrent writer inserted the same row first; the retry finds and reuses it.
        return Disposition.TRANSIENT
    if name in ("DisconnectionError", "TimeoutError", "InterfaceError"):
        return Disposition.TRANSIENT
    return _by_message(exc)


def _classify_docker(exc: BaseException) -> Disposition:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        # 5xx: the engine failed (a container that could not start); 4xx: our request is wrong
        # (no such image, a name conflict), and asking again will not change that.
        return Disposition.TRANSIENT if status >= 500 else Disposition.PERMANENT
    return Disposition.TRANSIENT  # the engine did not answer at all


def _by_message(exc: BaseException) -> Disposition:
    transient = _TRANSIENT_MESSAGE.search(str(exc))
    return Disposition.TRANSIENT if transient else Disposition.PERMANENT
