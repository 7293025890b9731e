"""Benchmark: dedupe and upsert of 100,000 findings against a 100,000-ticket backlog (SQLite).

Migrates a fresh SQLite file, seeds a backlog of ``--backlog`` open tickets in bulk (each under
the (repo, rule, path) key discovery gives it, with one finding), then ingests ``--findings``
findings in scans of ``--batch`` findings. Each scan is what ``ingest_scan`` does after the
scanners ran, in one transaction: group, score, screen (suppression), load existing tickets by
key, insert the new ones and update the others, ledger rows, the Scan row. Half of the findings
are new (rule, path) pairs, half hit the backlog. Prints the cumulative wall time at 10k, 50k
and 100k findings, the time per 10k (linear growth keeps it flat), and the new-ticket count
checked against the database (tickets, ``ticket.create`` rows). Exit status 1 if the counts
disagree.

    .venv/bin/python -m tests.bench.bench_upsert [--findings 100000] [--backlog 100000]
    .venv/bin/python -m tests.bench.bench_upsert --without-suppression   # grouping + upsert only
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session
from triloop.discovery.service import upsert_findings
from triloop.discovery.upsert import upsert_groups
from triloop.domain.contracts import Finding
from triloop.domain.fingerprint import finding_fingerprint, ticket_id_for, ticket_key
from triloop.domain.grouping import group_findings
from triloop.domain.policy import Policy
from triloop.store.db import engine_for, unit_of_work
from triloop.store.ledger import Actor, record
from triloop.store.models import LedgerEntry, Repo, Scan, Ticket
from triloop.store.schema import upgrade

REPO = "bench"
RULES = ("F401", "F541", "E711", "E712", "W291", "I001", "UP032", "B006", "S101", "C408")
MARKS = (10_000, 50_000, 100_000)


def pair(n: int) -> tuple[str, str]:
    """The n-th distinct (rule, path): 10 rules over files spread across 100 packages."""
    return RULES[n % len(RULES)], f"pkg{(n // 10) % 100}/mod_{n // 10}.py"


def finding(n: int) -> Finding:
    rule, path = pair(n)
    code = f"import module_{n}"
    return Finding(
        tool="ruff",
        rule=rule,
        path=path,
        line=3 + n % 40,
        message=f"{rule} finding {n}",
        severity="low",
        fixable=True,
        symbol="<module>",
        code=code,
        fingerprint=finding_fingerprint(REPO, rule, path, "<module>", code),
    )


def seed(url: str, backlog: int) -> None:
    upgrade(url)
    with unit_of_work(url) as session:
        session.add(Repo(id=REPO, name=REPO, origin="/bench", remote="/bench.git"))
        session.flush()
        rows = []
        for n in range(backlog):
            rule, path = pair(n)
            key = ticket_key(REPO, rule, path)
            rows.append(
                {
                    "id": ticket_id_for(key),
                    "key": key,
                    "repo_id": REPO,
                    "tool": "ruff",
                    "rule": rule,
                    "path": path,
                    "title": f"{rule} in {path}",
                    "severity": "low",
                    "state": "ready",
                    "priority": 1.0,
                    "findings": [finding(n).model_dump(mode="json")],
                }
            )
        session.execute(insert(Ticket), rows)


def _upsert_only(
    session: Session, policy: Policy, repo_id: str, findings: list[Finding], actor: Actor
) -> tuple[list[str], list[str]]:
    groups = group_findings(repo_id, findings, policy.grouping)
    return upsert_groups(session, policy, repo_id, groups, actor), [g.key for g in groups]


def ingest(
    url: str, policy: Policy, findings: list[Finding], scan: int, *, suppression: bool = True
) -> list[str]:
    """One scan's upsert, as ingest_scan runs it after the scanners (one transaction)."""
    actor = Actor(name="bench", dag_id="bench", run_id=f"scan-{scan}", task_id="ingest")
    key = f"{actor.run_owner}:{REPO}"
    upsert = upsert_findings if suppression else _upsert_only
    with unit_of_work(url) as session:
        created, keys = upsert(session, policy, REPO, findings, actor)
        session.add(
            Scan(
                repo_id=REPO,
                idempotency_key=key,
                head_sha="0" * 40,
                finding_count=len(findings),
                ticket_keys=keys,
                new_ticket_ids=created,
            )
        )
        record(session, actor, "discovery.scan", repo_id=REPO, idempotency_key=key)
    return created


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument(
        "--without-suppression",
        action="store_true",
        help="group and upsert only (skip the suppression screen ingest_scan runs)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.monotonic()
        seed(url, args.backlog)
        print(f"backlog: {args.backlog} tickets seeded in {time.monotonic() - started:.1f} s")
        print(f"load average before the run: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        # Every other finding hits the backlog; the others are new (rule, path) pairs.
        numbers = [n // 2 if n % 2 == 0 else args.backlog + n // 2 for n in range(args.findings)]
        findings = [finding(n) for n in numbers]
        policy = Policy()
        created: list[str] = []
        elapsed = cpu = 0.0
        last_mark, last_time = 0, 0.0
        for scan, start in enumerate(range(0, len(findings), args.batch)):
            batch = findings[start : start + args.batch]
            t0, c0 = time.monotonic(), time.process_time()
            created += ingest(url, policy, batch, scan, suppression=not args.without_suppression)
            elapsed += time.monotonic() - t0
            cpu += time.process_time() - c0
            done = start + len(batch)
            if done in MARKS or done == len(findings):
                per_10k = (elapsed - last_time) / (done - last_mark) * 10_000
                print(
                    f"{done:>7} findings: {elapsed:6.2f} s cumulative (CPU {cpu:.2f} s)"
                    f" ({per_10k:.2f} s per 10k since {last_mark}), {len(created)} new tickets"
                )
                last_mark, last_time = done, elapsed
        with unit_of_work(url) as session:
            tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
            creates = session.scalar(
                select(func.count()).where(LedgerEntry.action == "ticket.create")
            )
        engine_for(url).dispose()
    expected_new = len(set(numbers) - set(range(args.backlog)))
    ok = len(created) == expected_new == tickets - args.backlog == creates
    print(
        f"new tickets: {len(created)} (expected {expected_new}; tickets table"
        f" {tickets} = {args.backlog} + {tickets - args.backlog}; ticket.create rows {creates})"
    )
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
