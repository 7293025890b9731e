"""Clear and re-run: every task of every Triloop DAG, run a second time as an operator clearing
it in the UI would, leaves no duplicate ticket, branch, push, PR, comment, decision or merge.

The loops run once on a fresh copy of the sample repository with real sandboxes (execution
takes two tickets per run, so tickets are still ready when its sensor runs again and governance
sees one PR merge and one go back for a recheck). Right after each DAG's run, every one of its
tasks (taken from the DagBag, so a new task is covered without editing this test) is cleared
in that run and run again, one task at a time, all its map indexes at once, downstream tasks
first so that each reads the very XComs its upstream tasks pushed in the original run;
``rerun.py`` says how. After each re-run:

- the Triloop DB footprint is unchanged: tickets (state and attempts), pull requests (branch,
  head, state, merge commit), effects (comments, finished attempts, decisions, claims), decision,
  check and scan rows;
- every ref of every forge repository points where it did: no new branch, no force-push of a
  different commit, no new commit (merge) on the default branch;
- the re-run wrote no ledger row for an action with an idempotency key or a state change, and
  no idempotency key appears twice among the ledger's successful actions;
- each cleared instance kept its map index and either ran again (next try number) and
  succeeded, skipped or refused, or was skipped by its trigger rule without running. A refusal
  fails the task at once with a ledger row from that try saying why (a harness whose attempt
  is over no longer holds its ticket's lease); a failure without one, or one Airflow would
  retry, is a crash and fails the test.

What ``dag.test()`` cannot re-run faithfully, and how it is covered instead: the human review
task only asks when governance decides ``needs_human``, and the sample repository's autonomy
level auto-merges or blocks, so its re-run and its three branches' re-runs skip as the original
did. The approval it would apply goes through the same ``merge`` that ``auto_merge``'s re-run
exercises here; tests/integration/test_human_verdicts.py applies each verdict twice (and a
different one late) and checks nothing changes, and tests/e2e/test_human_review.py answers the
real DAG through the REST API.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, or_, select
from triloop.bootstrap import App, bootstrap
from triloop.onboarding import materialise_sample, onboard
from triloop.store.ledger import CLI
from triloop.store.models import (
    CheckRun,
    DecisionRow,
    Effect,
    LedgerEntry,
    PullRequest,
    Repo,
    Scan,
    Ticket,
)

from tests.e2e.rerun import clear, downstream_first, latest_run_id, resume, tries

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]

# The loop's order; a DAG not named here is run and re-run after these.
LOOP = ("triloop_discovery", "triloop_execution", "triloop_governance", "triloop_janitor")
ENDED = {"success", "skipped", "failed"}  # failed: refused at once (a retry is up_for_retry)


@dataclass(frozen=True)
class Footprint:
    """Everything a duplicate side effect would add to or move."""

    tickets: dict[str, tuple[str, int]]
    pull_requests: dict[tuple[str, int], tuple[str, str, str, str | None]]
    effects: frozenset[str]
    rows: dict[str, int]  # decisions, checks, scans
    refs: dict[str, str]


def footprint(app: App) -> Footprint:
    with app.uow() as session:
        tickets = {t.id: (t.state, t.attempts) for t in session.scalars(select(Ticket))}
        prs = {
            (p.repo_id, p.number): (p.branch, p.head_sha, p.state, p.merge_sha)
            for p in session.scalars(select(PullRequest))
        }
        effects = frozenset(session.scalars(select(Effect.key)))
        rows = {
            m.__tablename__: int(session.scalar(select(func.count()).select_from(m)) or 0)
            for m in (DecisionRow, CheckRun, Scan)
        }
        remotes = list(session.scalars(select(Repo.remote)))
    refs = {f"{remote} {ref}": sha for remote in remotes for ref, sha in _refs(remote).items()}
    return Footprint(tickets, prs, effects, rows, refs)


def _refs(remote: str) -> dict[str, str]:
    out = subprocess.run(
        ["git", "-C", remote, "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def last_ledger_id(app: App) -> int:
    with app.uow() as session:
        return int(session.scalar(select(func.max(LedgerEntry.id))) or 0)


def acted_since(app: App, ledger_id: int) -> list[str]:
    """Ledger rows after ``ledger_id`` that carry an idempotency key or move a ticket."""
    with app.uow() as session:
        rows = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.id > ledger_id,
                or_(LedgerEntry.idempotency_key.is_not(None), LedgerEntry.to_state.is_not(None)),
            )
        ).all()
        return [f"{r.action} {r.idempotency_key or ''} {r.from_state}->{r.to_state}" for r in rows]


def refusals(app: App, run_id: str, task_id: str, map_index: int, try_number: int) -> list[str]:
    """What this task try recorded as refused or lost (a permanent error's ledger row)."""
    with app.uow() as session:
        rows = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.run_id == run_id,
                LedgerEntry.task_id == task_id,
                LedgerEntry.map_index == (map_index if map_index >= 0 else None),
                LedgerEntry.try_number == try_number,
                LedgerEntry.outcome != "ok",
            )
        ).all()
        return [f"{r.action}: {r.error}" for r in rows]


def duplicate_keys(app: App) -> list[tuple[str, str, int]]:
    """(action, idempotency key, times) of successful actions recorded more than once."""
    with app.uow() as session:
        rows = session.execute(
            select(LedgerEntry.action, LedgerEntry.idempotency_key, func.count())
            .where(LedgerEntry.idempotency_key.is_not(None), LedgerEntry.outcome == "ok")
            .group_by(LedgerEntry.action, LedgerEntry.idempotency_key)
            .having(func.count() > 1)
        ).all()
        return [(a, str(k), int(n)) for a, k, n in rows]


def rerun_every_task(app: App, dag: Any) -> None:
    run_id = latest_run_id(dag.dag_id)
    for task_id in downstream_first(dag):
        where = f"{dag.dag_id}.{task_id}"
        before, mark, started = footprint(app), last_ledger_id(app), time.monotonic()
        original = tries(dag.dag_id, run_id, task_id)
        assert original, f"{where} has no task instance in {run_id}: the test cannot re-run it"
        assert clear(dag.dag_id, run_id, task_id) == len(original)
        resume(dag, run_id)
        again = tries(dag.dag_id, run_id, task_id)
        print(f"{where}: {original} -> {again} in {time.monotonic() - started:.1f}s")
        assert set(again) == set(original), f"{where}: map indexes changed"
        for index, (state, try_number) in again.items():
            assert state in ENDED, f"{where}[{index}] ended {state} on its re-run"
            ran = try_number == original[index][1] + 1
            assert ran or state == "skipped", f"{where}[{index}] was not run again"
            if state == "failed":
                refusal = refusals(app, run_id, task_id, index, try_number)
                assert refusal, f"{where}[{index}] failed without a recorded refusal: a crash"
        assert footprint(app) == before, f"{where}: the re-run changed the footprint"
        assert acted_since(app, mark) == [], f"{where}: the re-run acted again"
        assert duplicate_keys(app) == [], f"{where}: an idempotency key was used twice"


@pytest.fixture
def two_tickets_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default policy with ``claim_batch: 2``."""
    policy = yaml.safe_load((ROOT / "include/policy/default.yaml").read_text())
    policy["claim_batch"] = 2
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("TRILOOP_POLICY_PATH", str(path))


@pytest.mark.usefixtures("two_tickets_a_run")
def test_every_task_cleared_and_rerun_duplicates_nothing(
    factory: dict[str, Any], triloop_home: Path
) -> None:
    app: App = bootstrap(home=triloop_home)
    onboard(app, str(materialise_sample(app)), name="sample", actor=CLI)
    for dag_id in [*LOOP, *sorted(set(factory) - set(LOOP))]:
        started = time.monotonic()
        assert factory[dag_id].test().state == "success", f"{dag_id} failed its first run"
        print(f"{dag_id} first run {time.monotonic() - started:.1f}s")
        rerun_every_task(app, factory[dag_id])
    final = footprint(app)
    assert any(state == "ready" for state, _ in final.tickets.values())
    assert sorted(state for *_, state, _ in final.pull_requests.values()) == ["merged", "open"]
