"""Typed sandbox errors: policy refusals are permanent, timeouts may be retried."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class SandboxPolicyError(AirflowFailException, ValueError):
    """The requested container would break the sandbox policy.

    Permanent: Airflow fails the task without retrying (a retry cannot fix the arguments).
    It is also a ``ValueError`` so construction-time refusals read like argument errors.
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class SandboxTimeout(AirflowException):
    """The wall-clock limit expired; the container was killed and removed.

    Transient from Airflow's point of view: the task's ``retries`` apply.
    """

    def __init__(
        self,
        message: str,
        *,
        limit_s: int,
        container_id: str | None = None,
        logs: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.limit_s = limit_s
        self.container_id = container_id
        self.logs = logs or []


class SandboxOutOfMemory(AirflowFailException):
    """The kernel OOM-killed the sandbox at its memory limit; the container was removed.

    Permanent: a retry runs the same workload into the same limit, so Airflow does not retry.
    """

    def __init__(
        self,
        message: str,
        *,
        mem_limit: str | int | None,
        container_id: str | None = None,
        logs: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.mem_limit = mem_limit
        self.container_id = container_id
        self.logs = logs or []
