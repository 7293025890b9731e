"""A ticket no harness takes says why, in `triloop status`, on the page and in its triage row."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from triloop.bootstrap import App
from triloop.cli import main
from triloop.discovery.service import repo_ref
from triloop.onboarding import onboard
from triloop.status import read_status
from triloop.store.ledger import CLI, Actor
from triloop.store.models import LedgerEntry
from triloop_airflow.ui_html import render

from tests.support.rows import git_repo, host_scan

FILES = {
    "pyproject.toml": '[tool.ruff.lint]\nselect = ["F", "E7"]\n',
    "app.py": "import os\n\n\ndef f(x):\n    unused = 1\n    return x == None\n",
}


def test_tickets_no_harness_takes_say_why(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = onboard(app, str(git_repo(tmp_path, FILES)), name="quiet", actor=CLI)
    host_scan(app, repo_ref(repo), Actor(name="test:scan", dag_id="d", run_id="scan-1"))
    waiting = {w.rule: w for w in read_status(app).waiting_for_harness}
    assert set(waiting) == {"F841", "E711"}, waiting  # F401's fix is safe and allowed
    for rule in ("F841", "E711"):
        assert waiting[rule].reason == (
            f"ruff has no safe fix for {rule} here (unsafe or no fix), and no agent harness is"
            " configured (policy agent_harness)"
        )
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "waiting for a harness (2 tickets no harness takes):" in out
    assert "  quiet E711: 1 (ruff has no safe fix for E711" in out
    page = render(read_status(app))
    assert "Waiting for a harness (2)" in page and "no agent harness is configured" in page
    with app.uow() as session:
        held = session.scalars(
            select(LedgerEntry).where(LedgerEntry.action == "ticket.triage_hold")
        ).all()
    assert held and all("no agent harness is configured" in str(r.payload) for r in held)
