"""The sandbox's lease keeper with a fake lease: renews on its interval, survives a transient
error, stops at the first loss; the operator refuses a lease it cannot key to a ticket."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from triloop_sandbox import SandboxOperator, SandboxPolicyError
from triloop_sandbox.lease import LeaseKeeper


class FakeLease:
    """Answers renewals from a script: True (held), False (lost) or an exception to raise."""

    owner = "dag/run-1"

    def __init__(self, *answers: bool | Exception, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.answers = list(answers)
        self.calls = 0

    def renew(self) -> bool:
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer


def _wait_for(event: threading.Event, timeout_s: float = 5.0) -> bool:
    return event.wait(timeout_s)


def test_a_loss_after_a_transient_error_calls_on_lost_once_and_ends() -> None:
    lease = FakeLease(True, OSError("database is locked"), True, False, True)
    keeper = LeaseKeeper(lease, "T-1")
    lost_calls: list[int] = []
    done = threading.Event()
    keeper.start(lambda: (lost_calls.append(1), done.set()))
    assert _wait_for(done), "on_lost was never called"
    keeper.stop()
    assert keeper.lost.is_set()
    assert lease.calls == 4  # the error did not stop renewals; the loss did
    time.sleep(0.05)
    assert lease.calls == 4 and lost_calls == [1]


def test_stop_ends_renewals_without_a_loss() -> None:
    lease = FakeLease(interval_s=0.01)
    keeper = LeaseKeeper(lease, "T-1")
    keeper.start(lambda: pytest.fail("the lease was not lost"))
    deadline = time.monotonic() + 5
    while lease.calls < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    keeper.stop()
    calls = lease.calls
    time.sleep(0.05)
    assert calls >= 3 and lease.calls == calls and not keeper.lost.is_set()


def test_nothing_is_renewed_before_the_first_interval() -> None:
    lease = FakeLease(interval_s=30)
    keeper = LeaseKeeper(lease, "T-1")
    keeper.start(lambda: None)
    keeper.stop()
    assert lease.calls == 0


def _lease_factory(ticket_id: str, context: Any) -> FakeLease:
    return FakeLease()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lease": _lease_factory}, "lease=.*with a ticket_id"),
        ({"lease": "triloop_airflow.leases.ticket_lease", "ticket_id": "T-1"}, "must be a call"),
    ],
    ids=["no-ticket", "not-callable"],
)
def test_a_lease_the_operator_cannot_use_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SandboxPolicyError, match=message):
        SandboxOperator(task_id="t", workspace="/w", output_dir="/o", **kwargs)
