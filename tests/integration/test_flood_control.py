"""Flood control on SQLite and PostgreSQL: the Great Expectations gate in discovery's ingest,
quarantine, `triloop status` and an operator's release (exactly once)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.cli import main
from triloop.discovery.quarantine import gate
from triloop.discovery.service import repo_ref
from triloop.domain.contracts import Finding
from triloop.onboarding import onboard
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, Quarantine, Repo, Scan, Ticket

from tests.support.rows import git_repo, host_scan


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def flood_app(app: App) -> App:
    """The app with a low floor, so a bound of 10 x the median applies to small histories."""
    rules = app.policy.suppression.flood_control.model_copy(update={"row_floor": 10})
    suppression = app.policy.suppression.model_copy(update={"flood_control": rules})
    return dataclasses.replace(
        app, policy=app.policy.model_copy(update={"suppression": suppression})
    )


def _actor(run: str) -> Actor:
    return Actor(name="test:ingest", dag_id="triloop_discovery", run_id=run, task_id="ingest")


def _repo(app: App, tmp_path: Path, imports: int, history: list[int]) -> str:
    body = "".join(f"import mod{n}\n" for n in range(imports))
    onboard(app, str(git_repo(tmp_path, {"big.py": body})), name="big", actor=_actor("onboard"))
    with app.uow() as session:
        for n, count in enumerate(history):
            session.add(
                Scan(
                    repo_id="big",
                    idempotency_key=f"old-{n}",
                    head_sha="x",
                    finding_count=count,
                    ticket_keys=[],
                )
            )
    return "big"


def _scan(app: App, run: str) -> list[str]:
    with app.uow() as session:
        repo = repo_ref(session.get_one(Repo, "big"))
    return host_scan(app, repo, _actor(run))


def _count(app: App, model: type) -> int:
    with app.uow() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _ledger(app: App, action: str) -> list[LedgerEntry]:
    with app.uow() as session:
        rows = list(session.scalars(select(LedgerEntry).where(LedgerEntry.action == action)))
        session.expunge_all()
        return rows


def test_a_normal_batch_passes_and_its_cost_is_recorded(flood_app: App, tmp_path: Path) -> None:
    _repo(flood_app, tmp_path, imports=3, history=[2, 3, 2])
    assert _scan(flood_app, "s1") != []
    [row] = _ledger(flood_app, "discovery.flood_control")
    assert row.payload["rows"] == 3 and row.payload["max_rows"] == 20
    assert 0 < row.duration_s < 30
    assert _count(flood_app, Quarantine) == 0


def test_fifty_times_the_usual_batch_is_quarantined_then_released_once(
    flood_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _repo(flood_app, tmp_path, imports=100, history=[2, 2, 2])
    assert _scan(flood_app, "s1") == []
    assert _scan(flood_app, "s1") == []  # a cleared and re-run ingest: quarantined once
    assert _count(flood_app, Ticket) == 0
    [held] = _ledger(flood_app, "discovery.quarantine")
    assert held.outcome == "quarantined"
    assert held.error == "batch of 100 findings failed: expect_table_row_count_to_be_between"
    assert held.payload["failed"][0]["observed_value"] == 100
    assert held.payload["max_rows"] == 20
    with flood_app.uow() as session:
        [row] = session.scalars(select(Quarantine)).all()
        qid = row.id
    url = flood_app.settings.db_url
    assert main(["--db-url", url, "status"]) == 0
    out = capsys.readouterr().out
    assert "quarantined scans (1; `triloop quarantine release ID` ingests one):" in out
    assert f"  {qid} big " in out and "100 findings: expect_table_row_count_to_be_between" in out

    assert main(["--db-url", url, "quarantine", "release", str(qid)]) == 0
    assert f"released quarantine {qid} (big, 100 findings)" in capsys.readouterr().out
    tickets = _count(flood_app, Ticket)
    assert tickets >= 1
    assert main(["--db-url", url, "quarantine", "release", str(qid)]) == 1
    err = capsys.readouterr().err
    assert f"quarantine {qid} was already released by cli:" in err
    assert "is not ingested twice" in err
    assert _count(flood_app, Ticket) == tickets
    outcomes = [r.outcome for r in _ledger(flood_app, "discovery.quarantine_release")]
    assert sorted(outcomes) == ["ok", "refused"]
    assert main(["--db-url", url, "quarantine", "list"]) == 0
    assert "quarantined scans" not in capsys.readouterr().out


def test_releasing_an_unknown_quarantine_is_refused(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db-url", app.settings.db_url, "quarantine", "release", "41"]) == 1
    assert "quarantine 41 does not exist" in capsys.readouterr().err
    [row] = _ledger(app, "discovery.quarantine_release")
    assert row.outcome == "refused" and row.error == "quarantine 41 does not exist"


def _good(n: int) -> Finding:
    return Finding(tool="ruff", rule="F401", path=f"m{n}.py", line=1, message="x", fingerprint="f")


@pytest.mark.parametrize(
    ("bad", "failed"),
    [
        (_good(9).model_copy(update={"fingerprint": ""}), "expect_column_values_to_not_be_null"),
        (_good(9).model_copy(update={"severity": "urgent"}), "expect_column_values_to_be_in_set"),
    ],
)
def test_a_batch_with_a_bad_finding_is_quarantined(app: App, bad: Finding, failed: str) -> None:
    with app.uow() as session:
        session.add(Repo(id="big", name="big", origin="/o", remote="/f"))
    with app.uow() as session:
        held = gate(
            session,
            app.policy,
            _actor("s1"),
            repo_id="big",
            scan_key="s1:big",
            head_sha="abc",
            findings=[_good(1), _good(2), bad],
        )
        assert held is not None and held.finding_count == 3
    [row] = _ledger(app, "discovery.quarantine")
    assert row.error == f"batch of 3 findings failed: {failed}"
    assert _count(app, Ticket) == 0
