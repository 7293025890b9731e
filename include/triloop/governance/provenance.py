"""What a pull request is judged as: its harness label only when governance reproduced it.

Risk comes from the diff governance reads or reproduces itself, never from a label. An
``autofix`` PR keeps that reading only when rerunning the fix gives its diff byte for byte
(:mod:`triloop.governance.reproduction`); a diff that touches files its ticket does not name is
high risk for any harness, with the files named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from triloop.domain.contracts import ReviewRequest
from triloop.domain.risk_rules import RiskRules
from triloop.domain.states import REVERT_RULE
from triloop.governance import reproduction
from triloop.governance.diffrisk import diff_risks
from triloop.governance.risk import FileChange


def judged_as(
    review: ReviewRequest,
    harness: str,
    rule: str,
    findings: list[dict[str, Any]],
    changed: list[FileChange],
    rules: RiskRules,
) -> tuple[str, list[str], list[str]]:
    """The harness the risk tier reads (autofix only when reproduced), high-risk reasons, notes.

    High: files the ticket does not name (a revert's are the merge's own), and what the diff
    adds (process execution, dynamic code, deserialisation, network; configuration of checks,
    builds, tests and CI: :func:`triloop.governance.diffrisk.diff_risks`).
    """
    flagged = diff_risks(Path(review.merged_workspace), review.base_sha, rules, changed)
    notes: list[str] = []
    if harness == "autofix" and rule != REVERT_RULE:
        if not review.reproduce_out:
            return "autofix (not reproduced)", flagged, ["reproduction: no rerun was prepared"]
        redo = reproduction.compare(
            Path(review.reproduce_out),
            Path(review.merged_workspace),
            review.base_sha,
            review.head_sha,
        )
        harness = harness if redo.reproduced else "autofix (not reproduced)"
        notes.append(f"reproduction: {redo.why}")
    named = {str(f.get("path", "")) for f in findings}
    unnamed = sorted(c.path for c in changed if c.path not in named)
    if unnamed and rule != REVERT_RULE:
        shown = ", ".join(unnamed[:10]) + (" ..." if len(unnamed) > 10 else "")
        flagged.append(f"scope: {len(unnamed)} file(s) the ticket does not name: {shown}")
    return harness, flagged, notes
