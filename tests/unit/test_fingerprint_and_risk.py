from __future__ import annotations

import pytest
from triloop.domain.fingerprint import branch_for, finding_fingerprint, ticket_id_for, ticket_key
from triloop.governance.risk import may_auto_merge


def test_fingerprint_ignores_whitespace_but_not_code() -> None:
    a = finding_fingerprint("r", "F401", "m.py", "<module>", "import   os")
    b = finding_fingerprint("r", "F401", "m.py", "<module>", "import os ")
    c = finding_fingerprint("r", "F401", "m.py", "<module>", "import sys")
    assert a == b != c


def test_ticket_identity_is_derived() -> None:
    key = ticket_key("sample", "F401", "inventory/models.py")
    assert key == ticket_key("sample", "F401", "inventory/models.py")
    assert ticket_id_for(key).startswith("T-") and len(ticket_id_for(key)) == 12
    assert branch_for("T-abc") == "triloop/t-abc"
    assert branch_for("T-abc", 2) == "triloop/t-abc-attempt-2"


# The risk tier table (paths, size, dependencies, harness, confidence): test_risk_tiers.py.


@pytest.mark.parametrize(
    ("level", "risk", "allowed"),
    [
        (0, "low", False),
        (1, "low", False),
        (2, "low", True),
        (2, "medium", False),
        (3, "medium", True),
        (3, "high", False),
    ],
)
def test_autonomy_levels(level: int, risk: str, allowed: bool) -> None:
    assert may_auto_merge(level, risk) is allowed  # type: ignore[arg-type]
