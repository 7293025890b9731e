"""The ``triloop`` command: status, one ticket's history, onboarding, requeue, the circuit
breaker, database setup."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence

from sqlalchemy import select

from triloop.bootstrap import App, bootstrap
from triloop.discovery import quarantine
from triloop.discovery.wontfix import SuppressError, suppress_target
from triloop.domain.policy import PolicyError
from triloop.domain.states import IllegalTransition
from triloop.execution.budgets import reset_breaker
from triloop.janitor.service import requeue
from triloop.onboarding import OnboardingError, materialise_sample, onboard_repo
from triloop.status import StatusReport, read_only_session, read_status
from triloop.store import tickets as ticket_store
from triloop.store.ledger import Actor
from triloop.store.models import LedgerEntry
from triloop.store.schema import HEAD, SchemaError
from triloop.store.tickets import TicketNotFound


def _actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(name=f"cli:{user}")


def cmd_onboard(app: App, args: argparse.Namespace) -> int:
    if args.sample:
        target, name = str(materialise_sample(app)), "sample"
    elif args.target:
        target, name = args.target, args.name
    else:
        print("triloop onboard: give PATH_OR_URL or --sample", file=sys.stderr)
        return 2
    done = onboard_repo(app, target, name=name, actor=_actor(), separate=args.separate)
    print(done.message(app.policy))
    return 0


def cmd_status(app: App, _args: argparse.Namespace) -> int:
    report = read_status(app)
    print(f"database: {report.database}")
    print(f"repositories: {', '.join(report.repos) or 'none onboarded'}")
    print("tickets by state:")
    for state, count in report.tickets_by_state.items():
        print(f"  {state:<18} {count}")
    if not report.tickets_by_state:
        print("  (no tickets yet)")
    prs = report.pull_requests
    print(f"pull requests: {prs['open']} open, {prs['merged']} merged, {prs['total']} total")
    for pr in report.open_pull_requests:
        print(f"  open   {pr.repo_id}#{pr.number} {pr.branch} {pr.title[:70]}")
    for pr in report.merged_pull_requests:
        print(f"  merged {pr.repo_id}#{pr.number} {pr.branch} -> {pr.merge_sha[:12]}")
    checked = report.verification
    print(
        f"post-merge: {checked.get('verified', 0)} verified, {checked.get('reverted', 0)}"
        f" reverted, {checked.get('escaped_defects', 0)} escaped defects"
    )
    if report.dead_letters:
        print(
            f"dead letters ({len(report.dead_letters)}; requeue with `triloop requeue TICKET_ID`):"
        )
        for ticket in report.dead_letters:
            print(f"  {ticket.id} {ticket.title[:50]}: {ticket.reason[:100]}")
    if report.waiting_for_harness:
        waiting = sum(w.tickets for w in report.waiting_for_harness)
        print(f"waiting for a harness ({waiting} tickets no harness takes):")
        for w in report.waiting_for_harness:
            print(f"  {w.repo_id} {w.rule}: {w.tickets} ({w.reason})")
    _print_quarantines(app)
    _print_budgets(report)
    print("last run of each loop:")
    for dag_id, seen in report.last_runs.items():
        print(f"  {dag_id:<20} {seen or 'never'}")
    return 0


def _print_budgets(report: StatusReport) -> None:
    """The breaker, today's spend against the daily limits, tickets a budget stopped."""
    print(f"circuit breaker: {report.breaker.line}")
    spend = report.spend
    print(
        f"spend on {spend.day} (UTC): {spend.total_usd:.2f} of "
        f"{spend.global_limit_usd:.2f} USD globally"
    )
    for repo, usd in spend.per_repo_usd.items():
        print(f"  {repo:<18} {usd:.2f} of {spend.repo_limit_usd:.2f} USD")
    if report.needs_human:
        print(
            f"needs human ({len(report.needs_human)}; over a budget: "
            "`triloop requeue TICKET_ID` after raising the limit, or resolve it):"
        )
        for ticket in report.needs_human:
            print(f"  {ticket.id} {ticket.title[:50]}: {ticket.reason[:140]}")


def _print_quarantines(app: App) -> None:
    """Scan batches flood control held back (no tickets until an operator releases them)."""
    with read_only_session(app) as session:
        held = quarantine.pending(session)
        if not held:
            return
        print(f"quarantined scans ({len(held)}; `triloop quarantine release ID` ingests one):")
        for row in held:
            failed = ", ".join(f["expectation"] for f in row.failed)
            where = f"{row.repo_id} {row.head_sha[:12]}"
            print(f"  {row.id} {where} {row.finding_count} findings: {failed}")


def cmd_suppress(app: App, args: argparse.Namespace) -> int:
    row = suppress_target(app, _actor(), args.target, args.reason, args.repo)
    what = row.ticket_id or f"{row.rule}:{row.path}" + (f" in {row.repo_id}" if row.repo_id else "")
    print(f"suppressed {what} (won't-fix list entry {row.id}): {row.reason}")
    return 0


def cmd_quarantine(app: App, args: argparse.Namespace) -> int:
    if args.action == "list":
        _print_quarantines(app)
        return 0
    if args.id is None:
        print("triloop quarantine release: give the quarantine ID", file=sys.stderr)
        return 2
    row = quarantine.release_batch(app, args.id, _actor())
    print(
        f"released quarantine {row.id} ({row.repo_id}, {row.finding_count} findings): "
        f"{len(row.released_ticket_ids)} new tickets {', '.join(row.released_ticket_ids)}"
    )
    return 0


def cmd_breaker(app: App, args: argparse.Namespace) -> int:
    print(reset_breaker(app, _actor()))
    return 0


def cmd_show(app: App, args: argparse.Namespace) -> int:
    """One ticket and everything that happened to it, in order (the README's ledger query)."""
    with app.uow() as session:
        ticket = ticket_store.view(ticket_store.get(session, args.ticket_id))
        rows = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.ticket_id == args.ticket_id)
            .order_by(LedgerEntry.id)
        ).all()
        history = [
            {
                "at": row.at.isoformat(),
                "run": f"{row.dag_id or row.actor}/{row.run_id or '-'}",
                "task": f"{row.task_id or '-'}#{row.try_number or 0}",
                "action": row.action,
                "move": f"{row.from_state or ''}->{row.to_state or ''}",
                "outcome": row.outcome,
                "error": row.error,
            }
            for row in rows
        ]
    if args.json:
        print(json.dumps({"ticket": ticket.model_dump(mode="json"), "ledger": history}, indent=2))
        return 0
    print(f"{ticket.ticket_id} [{ticket.state}] {ticket.title}")
    print(f"  repo {ticket.repo_id}, {ticket.severity}, attempts {ticket.attempts}")
    for item in history:
        error = f"  ({str(item['error'])[:80]})" if item["error"] else ""
        print(
            f"  {str(item['at'])[:19]} {item['action']:<22} {item['move']:<24} "
            f"{item['outcome']:<8} {item['run']} {item['task']}{error}"
        )
    return 0


def cmd_requeue(app: App, args: argparse.Namespace) -> int:
    ticket = requeue(app, args.ticket_id, _actor())
    print(f"requeued {ticket.id}: {ticket.state}, a fresh round of attempts")
    return 0


def cmd_db_upgrade(app: App, _args: argparse.Namespace) -> int:
    # bootstrap() has already migrated the database; say where it stands.
    print(f"database ready at revision {HEAD}: {app.settings.db_url}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="triloop", description=__doc__)
    top.add_argument("--db-url", help="SQLAlchemy URL (default: TRILOOP_DB_URL or TRILOOP_HOME)")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="tickets by state, pull requests, last run of each loop")
    sub.add_parser(
        "db-upgrade",
        aliases=["db-init"],
        help="create or migrate Triloop's tables to the newest revision (idempotent)",
    )
    sh = sub.add_parser("show", help="one ticket and what happened to it, in order")
    sh.add_argument("ticket_id", metavar="TICKET_ID")
    sh.add_argument("--json", action="store_true", help="the TicketView contract and the ledger")
    rq = sub.add_parser("requeue", help="send a dead-lettered or needs-human ticket back to ready")
    rq.add_argument("ticket_id", metavar="TICKET_ID")
    br = sub.add_parser("breaker", help="the circuit breaker that pauses execution")
    br.add_argument("action", choices=["reset"], help="reset: close it now (ledger row)")
    su = sub.add_parser("suppress", help="put a ticket or RULE[:PATH_GLOB] on the won't-fix list")
    su.add_argument("target", metavar="TICKET_ID|RULE[:PATH_GLOB]")
    su.add_argument("--reason", required=True, help="why it is not worth fixing (ledger)")
    su.add_argument("--repo", help="for a rule: only this repository (default: every one)")
    qu = sub.add_parser("quarantine", help="scan batches flood control held back")
    qu.add_argument("action", choices=["list", "release"])
    qu.add_argument("id", nargs="?", type=int, metavar="ID", help="release: the quarantine id")
    ob = sub.add_parser("onboard", help="onboard a repository (path or git URL)")
    ob.add_argument("target", nargs="?", metavar="PATH_OR_URL")
    ob.add_argument("--name", help="repository id (default: from the path or URL)")
    ob.add_argument("--sample", action="store_true", help="onboard the bundled sample repo")
    ob.add_argument(
        "--separate",
        action="store_true",
        help="onboard it even if a repository with the same origin or root commit is there"
        " (a fork that should be a repository of its own)",
    )
    return top


COMMANDS = {
    "status": cmd_status,
    "onboard": cmd_onboard,
    "requeue": cmd_requeue,
    "show": cmd_show,
    "breaker": cmd_breaker,
    "suppress": cmd_suppress,
    "quarantine": cmd_quarantine,
    "db-upgrade": cmd_db_upgrade,
    "db-init": cmd_db_upgrade,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        app = bootstrap(db_url=args.db_url)
        return COMMANDS[args.command](app, args)
    except (
        OnboardingError,
        PolicyError,
        SchemaError,
        TicketNotFound,
        IllegalTransition,
        SuppressError,
        quarantine.QuarantineError,
    ) as exc:
        print(f"triloop {args.command}: {exc}", file=sys.stderr)
        return 1
