"""Answer Human-in-the-loop tasks as a reviewer would: through Airflow's REST API.

``dag.test()`` runs in the test's main thread (task runners install signal handlers) and keeps
the run alive while a task waits in ``awaiting_input``; :class:`Reviewer` runs in a second
thread, finds each waiting map index, reads its hitlDetails and answers it with a PATCH to an
in-process api-server on the same metadata DB (simple auth manager, all admins), or lets it time
out by running the scheduler's own timeout sweep once the response timeout has passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = "timeout"
"""An answer that lets the request time out (the scheduler's sweep applies its defaults)."""

Answer = dict[str, Any] | str


@dataclass
class Reviewer:
    """Answers ``count`` waiting instances of ``task_id`` in ``dag_id``; ``answer(map_index,
    details)`` gives the PATCH body or :data:`TIMEOUT`."""

    dag_id: str
    task_id: str
    answer: Callable[[int, dict[str, Any]], Answer]
    count: int
    timeout_wait_s: float = 2.5
    deadline_s: float = 600
    asked: dict[int, dict[str, Any]] = field(default_factory=dict)
    status: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> Reviewer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 30) -> None:
        assert self._thread is not None
        self._thread.join(timeout)

    def _waiting(self) -> list[tuple[str, int]]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(TaskInstance.run_id, TaskInstance.map_index)
                .where(
                    TaskInstance.dag_id == self.dag_id,
                    TaskInstance.task_id == self.task_id,
                    TaskInstance.state == "awaiting_input",
                )
                .order_by(TaskInstance.map_index)
            ).all()
        return [(str(r), int(i)) for r, i in rows]

    def _run(self) -> None:
        from airflow.api_fastapi.app import create_app
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from fastapi.testclient import TestClient

        client = TestClient(create_app("core"))
        deadline = time.monotonic() + self.deadline_s
        to_time_out: dict[int, float] = {}  # map index -> when it was seen waiting
        try:
            while len(self.status) < self.count and time.monotonic() < deadline:
                for run_id, index in self._waiting():
                    if index in self.status or index in to_time_out:
                        continue
                    url = (
                        f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/"
                        f"{self.task_id}/{index}/hitlDetails"
                    )
                    shown = client.get(url)
                    if shown.status_code != 200:
                        self.errors.append(f"GET {url}: {shown.status_code} {shown.text[:300]}")
                        continue
                    self.asked[index] = shown.json()
                    reply = self.answer(index, self.asked[index])
                    if reply == TIMEOUT:
                        to_time_out[index] = time.monotonic()
                        continue
                    answered = client.patch(url, json=reply)
                    self.status[index] = answered.status_code
                    if answered.status_code != 200:
                        self.errors.append(f"PATCH {url}: {answered.status_code} {answered.text}")
                # The sweep times out every expired request: only once the others are answered.
                others_done = len(self.status) + len(to_time_out) >= self.count
                if to_time_out and others_done:
                    time.sleep(
                        max(0.0, max(to_time_out.values()) + self.timeout_wait_s - time.monotonic())
                    )
                    SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()
                    self.status.update(dict.fromkeys(to_time_out, 0))
                    to_time_out.clear()
                time.sleep(0.3)
        except Exception as exc:  # surfaced by the test, not lost in the thread
            self.errors.append(repr(exc))
