"""Keeping a lease while the sandbox runs: the hook the operator takes, and the renewing thread.

The operator knows nothing about tickets or databases: it takes a ``lease`` factory, calls it
once in ``execute`` (in the task's own thread, where reading the context and Airflow
connections is safe) and renews what it returns from a background thread while the container
runs. ``triloop_airflow.leases.ticket_lease`` is the factory the execution DAG passes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class Lease(Protocol):
    """A run's lease on one work item (``triloop.store.leases.TicketLease`` is one)."""

    @property
    def interval_s(self) -> float:
        """Seconds between renewals: a fraction of the lease's length."""
        ...

    @property
    def owner(self) -> str:
        """Who holds the lease (the DAG run), for messages."""
        ...

    def renew(self) -> bool:
        """Extend the lease; False once it is lost. May raise on a transient error."""
        ...


LeaseFactory = Callable[[str, "Context"], Lease]
"""``(ticket_id, context) -> Lease``: the hook a ``SandboxOperator(lease=...)`` calls."""


class SandboxLeaseLost(AirflowFailException):
    """The run no longer holds the lease on its ticket; its container was killed or never started.

    Permanent: the janitor (or another run) owns the ticket now, so Airflow fails the task
    without retrying it; the ticket's next attempt belongs to whichever run claims it.
    """

    def __init__(
        self, message: str, *, ticket_id: str, owner: str, container_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.ticket_id = ticket_id
        self.owner = owner
        self.container_id = container_id


class LeaseKeeper:
    """Renew ``lease`` every ``lease.interval_s`` seconds from a daemon thread until stopped.

    A renewal that raises (a locked or unreachable database) is logged and retried at the next
    interval: the lease outlasts a failed renewal or two. A renewal that returns False sets
    :attr:`lost`, calls ``on_lost`` once and ends the thread.
    """

    def __init__(self, lease: Lease, ticket_id: str) -> None:
        self.lease = lease
        self.ticket_id = ticket_id
        self.lost = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def hold(cls, factory: LeaseFactory, ticket_id: str, context: Context) -> LeaseKeeper:
        """Build the run's lease and renew it once, before any container starts.

        Raises SandboxLeaseLost when the lease is already gone (a retried try of a run the
        janitor took the ticket from, or a cleared task whose attempt is over).
        """
        keeper = cls(factory(ticket_id, context), ticket_id)
        if not keeper.lease.renew():
            keeper.lost.set()
            raise keeper.lost_error("no container was started")
        return keeper

    def lost_error(self, what: str, container_id: str | None = None) -> SandboxLeaseLost:
        return SandboxLeaseLost(
            f"{self.lease.owner} lost its lease on ticket {self.ticket_id}; {what}",
            ticket_id=self.ticket_id,
            owner=self.lease.owner,
            container_id=container_id,
        )

    def start(self, on_lost: Callable[[], None]) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, args=(on_lost,), name=f"lease-{self.ticket_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop renewing; wait briefly for a renewal in flight (it cannot outlive the task)."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout_s)

    def _run(self, on_lost: Callable[[], None]) -> None:
        while not self._stopped.wait(self.lease.interval_s):
            try:
                held = self.lease.renew()
            except Exception:  # transient: the next interval tries again
                log.warning(
                    "renewing the lease on ticket %s failed; retrying in %.0fs",
                    self.ticket_id,
                    self.lease.interval_s,
                    exc_info=True,
                )
                continue
            if not held:
                self.lost.set()
                if not self._stopped.is_set():  # stopped: the container is already gone
                    on_lost()
                return
            log.debug("renewed the lease on ticket %s for %s", self.ticket_id, self.lease.owner)
