"""Benchmark: concurrent claimer processes racing for ready tickets on a real database.

Starts a private PostgreSQL server (tests/support/postgres.py; Debian's binaries, installed if
missing), migrates a fresh Triloop database, inserts N ready tickets, then lets W processes
claim through ``triloop.store.tickets.claim_ready`` (one unit of work per claim, a distinct
DAG run per claim, as execution runs do) until none is left. Prints claims per second (wall
clock from the common start to the last claimer done), the duplicate count and the lost count,
checked both from what the claimers returned and from the database (tickets, attempts and
ledger rows). The table is ANALYZEd after seeding, as autovacuum keeps a live one. Exit
status 1 if any ticket was claimed twice or not at all.

    .venv/bin/python -m tests.bench.bench_claims [--tickets 1000] [--workers 16] [--batch 1]
    .venv/bin/python -m tests.bench.bench_claims --sqlite    # the embedded default instead
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from triloop.domain.states import TicketState
from triloop.store.db import engine_for, unit_of_work
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry, Repo, Ticket
from triloop.store.schema import upgrade
from triloop.store.tickets import claim_ready


@dataclass(frozen=True)
class RaceResult:
    tickets: int
    workers: int
    batch: int
    seconds: float
    claimed: list[str]
    db_claimed: int
    db_attempts_above_one: int
    ledger_claims: int

    @property
    def duplicates(self) -> int:
        return sum(count - 1 for count in Counter(self.claimed).values())

    @property
    def lost(self) -> int:
        return self.tickets - len(set(self.claimed))

    @property
    def claims_per_second(self) -> float:
        return len(self.claimed) / self.seconds


def seed(url: str, tickets: int) -> None:
    """Migrate ``url`` and insert one repository with ``tickets`` ready tickets."""
    upgrade(url)
    with unit_of_work(url) as session:
        session.add(Repo(id="bench", name="bench", origin="/bench", remote="/bench.git"))
        session.flush()
        session.execute(
            insert(Ticket),
            [
                {
                    "id": f"T-{n:010d}",
                    "key": f"bench:{n}",
                    "repo_id": "bench",
                    "tool": "ruff",
                    "rule": "F401",
                    "path": f"pkg/mod_{n}.py",
                    "title": f"bench ticket {n}",
                    "severity": "low",
                    "state": TicketState.READY.value,
                    "priority": float(n % 7),
                    "findings": [],
                }
                for n in range(tickets)
            ],
        )
    if url.startswith("postgresql"):
        # Planner statistics, as autovacuum keeps them on a live table (a bulk insert is not
        # analysed until its next pass, up to a minute later).
        with engine_for(url).connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE tickets")


def _claimer(url: str, worker: int, batch: int, ready: Any, start: Event, out: Any) -> None:
    engine_for(url).connect().close()  # connect before the start, as a running worker has
    ready.put(worker)
    start.wait()
    taken: list[str] = []
    runs = 0
    while True:
        runs += 1
        actor = Actor(name="bench", dag_id="bench", run_id=f"w{worker}-{runs}", task_id="claim")
        with unit_of_work(url) as session:
            claims = claim_ready(session, actor, limit=batch, lease_seconds=900)
            taken.extend(ticket.id for ticket in claims)
        if not claims:
            break
    out.put((worker, time.monotonic(), taken))


def race(url: str, *, tickets: int, workers: int, batch: int) -> RaceResult:
    """Seed ``url`` and run the claimer processes; returns what they and the DB saw."""
    seed(url, tickets)
    engine_for(url).dispose()
    ctx = multiprocessing.get_context("spawn")
    ready, out, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_claimer, args=(url, n, batch, ready, start, out))
        for n in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=120)
    began = time.monotonic()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    if any(proc.exitcode != 0 for proc in procs):
        raise RuntimeError(f"claimer exit codes: {[proc.exitcode for proc in procs]}")
    finished = max(done for _, done, _ in results)
    claimed = [ticket for _, _, taken in results for ticket in taken]
    with unit_of_work(url) as session:
        db_claimed = session.scalar(
            select(func.count()).where(Ticket.state == TicketState.CLAIMED.value)
        )
        above_one = session.scalar(select(func.count()).where(Ticket.attempts > 1))
        ledger = session.scalar(select(func.count()).where(LedgerEntry.action == "ticket.claim"))
    return RaceResult(
        tickets=tickets,
        workers=workers,
        batch=batch,
        seconds=finished - began,
        claimed=claimed,
        db_claimed=int(db_claimed or 0),
        db_attempts_above_one=int(above_one or 0),
        ledger_claims=int(ledger or 0),
    )


def report(result: RaceResult, backend: str) -> None:
    print(f"backend              {backend}")
    print(f"tickets / workers    {result.tickets} / {result.workers} (batch {result.batch})")
    print(f"wall clock           {result.seconds:.2f} s")
    print(f"claims per second    {result.claims_per_second:.0f}")
    print(f"duplicates           {result.duplicates}")
    print(f"lost                 {result.lost}")
    print(
        f"database             {result.db_claimed} claimed, {result.db_attempts_above_one} "
        f"with attempts > 1, {result.ledger_claims} claim ledger rows"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1, help="tickets per claim (claim_batch)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite file instead of PostgreSQL")
    args = parser.parse_args()
    sizes = {"tickets": args.tickets, "workers": args.workers, "batch": args.batch}
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="triloop-bench-") as tmp:
            result = race(f"sqlite:///{Path(tmp) / 'triloop.db'}", **sizes)
        report(result, "sqlite")
    else:
        from tests.support.postgres import running_server

        with running_server(max_connections=args.workers + 20) as server:
            url = server.url(server.create_database("bench"))
            result = race(url, **sizes)
            engine_for(url).dispose()
            report(result, "postgresql 15 (private server, default settings but shared_buffers)")
    clean = (
        result.duplicates == 0
        and result.lost == 0
        and result.db_claimed == result.ledger_claims == result.tickets
        and result.db_attempts_above_one == 0
    )
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
