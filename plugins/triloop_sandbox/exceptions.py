"""Typed sandbox errors: policy refusals are permanent, timeouts may be retried."""

from __future__ import annotations

from typing import Any

from airflow.providers.docker.exceptions import DockerContainerFailedException
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


class SandboxEngineError(AirflowFailException, ValueError):
    """The sandbox engine's Airflow connection is missing or unsafe; names it and the field.

    Permanent: a retry reads the same connection, so Airflow fails the task without retrying.
    """

    def __init__(self, conn_id: str, field: str, problem: str) -> None:
        super().__init__(f"sandbox engine connection {conn_id!r}: {field}: {problem}")
        self.conn_id = conn_id
        self.field = field


class SandboxEngineUnreachable(AirflowException):
    """The remote sandbox engine could not be reached, or the TLS handshake with it failed.

    Transient from Airflow's point of view (the engine may be restarting): ``retries`` apply.
    """

    def __init__(self, conn_id: str, base_url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the sandbox engine of connection {conn_id!r} at {base_url}: {reason}"
        )
        self.conn_id = conn_id
        self.base_url = base_url


class SandboxHarnessFailed(AirflowFailException, DockerContainerFailedException):
    """The harness ran and said it failed, or refused its request (``final_exit_codes``).

    Permanent for Airflow: the failure is recorded in /out/result.json and retried, if at all,
    as a new attempt on the ticket by its lifecycle. An Airflow retry would run an agent again
    in the same workspace on a fresh budget.
    """

    def __init__(self, message: str, *, exit_code: int, logs: list[str] | None = None) -> None:
        super().__init__(message, logs=list(logs or []))
        self.exit_code = exit_code


class SandboxDiskBudgetExceeded(AirflowFailException):
    """A writable mount went over its disk budget (or its file budget): the container was
    killed and what the run wrote to its writable mounts removed.

    Permanent: a retry runs the same code into the same budget, so Airflow does not retry.
    ``mount`` is the container path (/out, /workspace), ``source`` the host directory.
    """

    def __init__(
        self,
        message: str,
        *,
        mount: str,
        source: str,
        budget_bytes: int,
        seen_bytes: int,
        new_files: int,
        container_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.mount = mount
        self.source = source
        self.budget_bytes = budget_bytes
        self.seen_bytes = seen_bytes
        self.new_files = new_files
        self.container_id = container_id


FAILURE_KEY = "sandbox_failure"
"""The XCom key under which a failed sandbox task leaves why it failed (see note_failure)."""
OWN = (
    SandboxPolicyError,
    SandboxTimeout,
    SandboxOutOfMemory,
    SandboxEngineError,
    SandboxEngineUnreachable,
    SandboxHarnessFailed,
    SandboxDiskBudgetExceeded,
)


def failure_text(exc: BaseException) -> str:
    """Why the task failed, for the evidence: the message of the sandbox's own errors (written
    by the host: a budget, a limit, an exit code), only the type of anything else (its text may
    carry what the container printed)."""
    if isinstance(exc, OWN):
        return str(exc).split("\n", 1)[0][:500]
    return type(exc).__name__


def note_failure(context: Any, exc: BaseException) -> None:
    """Leave :func:`failure_text` in XCom for the task that reads the crash (never raises)."""
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is None:
        return
    try:
        ti.xcom_push(key=FAILURE_KEY, value=failure_text(exc))
    except Exception:
        return
