"""Discovery stays quiet about what it raised: rescans, line shifts and reformatting make no
new ticket; 200 findings of one rule are grouped as designed; on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select
from triloop.bootstrap import App
from triloop.discovery.service import repo_ref
from triloop.domain.fingerprint import derived_key, ticket_key
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, Repo, Ticket
from triloop.store.tickets import claim_ready

from tests.support.rows import RUFF, git_repo, host_scan

# Written the way nobody formats code, so `ruff format` rewrites most of it: quotes, spacing,
# trailing commas, and statements it joins onto one line or spreads over several.
MESSY = {
    "pyproject.toml": '[tool.ruff]\nline-length = 88\nlint.select = ["E7", "F", "I", "W"]\n',
    "messy/__init__.py": "",
    "messy/core.py": """import os
import json


def describe(item, count = None):
    label = f'plain label'
    if count == None :
        return {'label':label,'count':0,}
    values = [item.name,item.kind,item.size,item.colour,item.weight,item.price,item.owner]
    return dict(label = label, count = count, values = values, extra = f'no placeholders here', more = 'text')


class Store :
    def empty(self, x):
        return x == None
""",  # noqa: E501 (unformatted on purpose)
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _actor(run: str) -> Actor:
    return Actor(name="test:scan", dag_id="triloop_test", run_id=run, task_id="scan", try_number=1)


def _scan(app: App, repo_id: str, run: str) -> list[str]:
    with app.uow() as session:
        ref = repo_ref(session.get_one(Repo, repo_id))
    return host_scan(app, ref, _actor(run))


def _tickets(app: App, repo_id: str) -> dict[str, tuple[str, frozenset[str]]]:
    """{key: (ticket id, fingerprints of its findings)}."""
    with app.uow() as session:
        rows = session.scalars(select(Ticket).where(Ticket.repo_id == repo_id)).all()
        return {t.key: (t.id, frozenset(f["fingerprint"] for f in t.findings)) for t in rows}


def _lines(app: App, repo_id: str) -> set[tuple[str, int]]:
    with app.uow() as session:
        rows = session.scalars(select(Ticket.findings).where(Ticket.repo_id == repo_id)).all()
        return {(f["path"], f["line"]) for findings in rows for f in findings}


def _onboard(app: App, tmp_path: Path, which: str) -> str:
    source = materialise_sample(app) if which == "sample" else git_repo(tmp_path / which, MESSY)
    return onboard(app, str(source), name=which, actor=_actor("onboard")).id


def _push_edit(app: App, repo_id: str, tmp_path: Path) -> None:
    """500 lines inserted at the top of every Python file, then `ruff format`, pushed."""
    with app.uow() as session:
        remote = session.get_one(Repo, repo_id).remote
    work = tmp_path / f"edit-{repo_id}"
    subprocess.run(["git", "clone", "-q", remote, str(work)], check=True)
    for path in work.rglob("*.py"):
        filler = "".join(f"# unrelated line {n}\n" for n in range(500))
        path.write_text(filler + path.read_text())
    subprocess.run([RUFF, "format", "--no-cache", "-q", "."], cwd=work, check=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-qam", "shift and reformat"], cwd=work, check=True)
    subprocess.run(["git", "push", "-q", "origin", "HEAD"], cwd=work, check=True)


@pytest.mark.parametrize("which", ["sample", "messy"])
def test_rescans_shifts_and_reformatting_make_no_new_ticket(
    app: App, tmp_path: Path, which: str
) -> None:
    repo_id = _onboard(app, tmp_path, which)
    created = _scan(app, repo_id, "first")
    before = _tickets(app, repo_id)
    assert len(created) == len(before) >= 4
    assert _scan(app, repo_id, "unchanged") == []
    assert _tickets(app, repo_id) == before

    lines_before = _lines(app, repo_id)
    _push_edit(app, repo_id, tmp_path)
    assert _scan(app, repo_id, "shifted") == []
    after = _tickets(app, repo_id)
    assert after == before  # same keys, same ids, the very same fingerprints
    lines_after = _lines(app, repo_id)
    assert all(line > 500 for _, line in lines_after) and lines_after != lines_before
    with app.uow() as session:
        creates = session.scalar(
            select(func.count()).where(
                LedgerEntry.action == "ticket.create", LedgerEntry.repo_id == repo_id
            )
        )
    assert creates == len(before)


def test_messy_fixture_is_really_reformatted(tmp_path: Path) -> None:
    """The formatter changes the fixture's statements (else the test above would prove less)."""
    src = git_repo(tmp_path / "m", MESSY)
    before = (src / "messy/core.py").read_text()
    subprocess.run([RUFF, "format", "--no-cache", "-q", "."], cwd=src, check=True)
    after = (src / "messy/core.py").read_text()
    assert "if count is None" not in after  # format does not fix lint findings
    assert "count=None" in after and "'label'" not in after
    # The statement holding the second F541 now spans several lines.
    assert 'extra=f"no placeholders here",' in [line.strip() for line in after.splitlines()]
    assert len(after.splitlines()) > len(before.splitlines()) + 10


def test_two_hundred_findings_of_one_rule_are_grouped_as_designed(app: App, tmp_path: Path) -> None:
    """One file, 200 unused imports: the policy's cap (100) makes two tickets, part 1 under the
    (repo, rule, path) key tickets have always had; each gets one create and one triage row."""
    body = "".join(f"import mod{n:03d}\n" for n in range(200))
    source = git_repo(tmp_path / "wide", {"wide/many.py": body, "wide/other.py": "import os\n"})
    repo_id = onboard(app, str(source), name="wide", actor=_actor("onboard")).id
    created = _scan(app, repo_id, "first")
    tickets = _tickets(app, repo_id)
    part0 = ticket_key(repo_id, "F401", "wide/many.py")
    part1 = derived_key("rule_path", repo_id, "F401", "wide/many.py", "part-1")
    assert set(tickets) == {part0, part1, ticket_key(repo_id, "F401", "wide/other.py")}
    assert len(tickets[part0][1]) == len(tickets[part1][1]) == 100
    assert len(created) == 3 and _scan(app, repo_id, "again") == []
    with app.uow() as session:
        rows = session.execute(
            select(LedgerEntry.ticket_id, LedgerEntry.action).where(
                LedgerEntry.repo_id == repo_id, LedgerEntry.action.like("ticket.%")
            )
        ).all()
        ready = session.scalars(
            select(Ticket).where(Ticket.repo_id == repo_id).order_by(Ticket.priority.desc())
        ).all()
    assert sorted(rows) == sorted(
        (tid, action) for tid in created for action in ("ticket.create", "ticket.triage_ready")
    )
    assert [t.state for t in ready] == ["ready"] * 3
    # The 100-finding parts rank above the single import; the figures are on the row.
    assert ready[-1].path == "wide/other.py" and ready[0].blast_files == 1
    assert ready[0].priority == ready[0].expected_value > ready[-1].expected_value > 0
    # Execution claims by priority: a 100-finding part first, the single import last.
    with app.uow() as session:
        order = [t.id for t in claim_ready(session, _actor("claim"), limit=3, lease_seconds=60)]
    assert order[-1] == ready[-1].id and set(order[:2]) == {ready[0].id, ready[1].id}
