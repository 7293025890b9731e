"""The Triloop status page as one HTML document: inline CSS, no script, no external asset.

Every value goes through :func:`esc` (ticket titles, reasons and ledger errors are untrusted
text: a scanner message or an issue title anyone can write).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

from triloop.status import BreakerStatus, LedgerLine, Spend, StatusReport, TicketLine

REFRESH_S = 30

CSS = """
:root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 1rem 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; } h2 { font-size: 1.05rem; margin: 1.5rem 0 .4rem; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; vertical-align: top;
  padding: .25rem .6rem .25rem 0; border-bottom: 1px solid var(--line); }
th { font-weight: 600; } .muted { color: var(--muted); } .num { text-align: right; }
.badge { display: inline-block; padding: .1rem .55rem; border-radius: .8rem; font-weight: 600; }
.closed { background: #dcfce7; color: #166534; } .open { background: #fee2e2; color: #991b1b; }
.half_open { background: #fef3c7; color: #92400e; } .over { color: #b91c1c; font-weight: 600; }
.wrap { overflow-wrap: anywhere; } code { font-size: .92em; }
"""


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else ""


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> str:
    body = "".join(
        "<tr>" + "".join(f'<td class="wrap">{esc(cell)}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    if not body:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def breaker_section(breaker: BreakerStatus) -> str:
    state = breaker.state if breaker.state in ("closed", "open", "half_open") else "open"
    facts = [("reason", breaker.reason)] if breaker.reason else []
    if breaker.opened_at:
        facts.append(("opened at", _when(breaker.opened_at)))
    if breaker.half_opens_at:
        facts.append(("half-opens at", _when(breaker.half_opens_at)))
    if breaker.state == "half_open":
        facts.append(("trial ticket", breaker.trial_ticket or "none yet"))
    rows = "".join(f"<tr><th>{esc(k)}</th><td class='wrap'>{esc(v)}</td></tr>" for k, v in facts)
    paused = " execution is paused" if breaker.state == "open" else ""
    return (
        f'<h2>Circuit breaker</h2><p id="breaker"><span class="badge {state}">'
        f"{esc(breaker.state)}</span>{esc(paused)}</p>" + (f"<table>{rows}</table>" if rows else "")
    )


def _usd(used: float, limit: float) -> str:
    cls = ' class="num over"' if used >= limit else ' class="num"'
    return f"<td{cls}>{used:.2f} of {limit:.2f} USD</td>"


def spend_section(spend: Spend) -> str:
    rows = [f"<tr><th>all repositories</th>{_usd(spend.total_usd, spend.global_limit_usd)}</tr>"]
    rows += [
        f"<tr><td>{esc(repo)}</td>{_usd(usd, spend.repo_limit_usd)}</tr>"
        for repo, usd in spend.per_repo_usd.items()
    ]
    return f"<h2>Spend on {esc(spend.day)} (UTC)</h2><table id='spend'>{''.join(rows)}</table>"


def tickets_section(title: str, anchor: str, tickets: list[TicketLine], hint: str) -> str:
    rows = ((t.id, t.repo_id, t.title, t.reason) for t in tickets)
    return (
        f"<h2 id='{anchor}'>{esc(title)} ({len(tickets)})</h2>"
        + (f'<p class="muted">{esc(hint)}</p>' if tickets else "")
        + table(("ticket", "repo", "title", "reason"), rows, "none")
    )


def waiting_section(report: StatusReport) -> str:
    """Triaged tickets no harness takes, per repository and rule, with why."""
    waiting = report.waiting_for_harness
    rows = ((w.repo_id, w.rule, str(w.tickets), w.reason) for w in waiting)
    count = sum(w.tickets for w in waiting)
    return f"<h2 id='waiting-for-a-harness'>Waiting for a harness ({count})</h2>" + table(
        ("repo", "rule", "tickets", "why no harness takes them"), rows, "none"
    )


def _ledger_row(row: LedgerLine) -> tuple[str, ...]:
    at = f"{row.at:%Y-%m-%d %H:%M:%S}"
    return (
        at,
        row.action,
        row.ticket_id or "",
        row.move,
        row.outcome,
        row.run,
        row.task,
        row.error[:300],
    )


def render(report: StatusReport) -> str:
    by_state = table(("state", "tickets"), report.tickets_by_state.items(), "no tickets yet")
    prs = report.pull_requests
    pr_rows = [
        (p.state, f"{p.repo_id}#{p.number}", p.branch, p.title)
        for p in [*report.open_pull_requests, *report.merged_pull_requests]
    ]
    ledger = table(
        ("at", "action", "ticket", "move", "outcome", "run", "task", "error"),
        (_ledger_row(r) for r in report.ledger),
        "no ledger rows yet",
    )
    loops = table(
        ("loop", "newest ledger row"),
        ((dag, seen or "never") for dag, seen in report.last_runs.items()),
        "",
    )
    requeue = "Requeue with `triloop requeue TICKET_ID` once the cause is fixed."
    checked = report.verification
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<title>Triloop status</title><style>{CSS}</style></head>
<body>
<h1>Triloop</h1>
<p class="muted">Read-only view of the factory's database, refreshed every {REFRESH_S} s.
Generated {esc(_when(report.generated_at))}; repositories: {esc(", ".join(report.repos) or "none")}.
Same data as JSON: <a href="status.json">status.json</a>.</p>
{breaker_section(report.breaker)}
{spend_section(report.spend)}
<h2>Tickets by state</h2>{by_state}
{tickets_section("Dead letters", "dead-letters", report.dead_letters, requeue)}
{tickets_section("Needs a human", "needs-human", report.needs_human, requeue)}
{waiting_section(report)}
<h2>Pull requests: {prs["open"]} open, {prs["merged"]} merged, {prs["total"]} total</h2>
{table(("state", "pull request", "branch", "title"), pr_rows, "none open or merged")}
<p>Post-merge: {checked.get("verified", 0)} verified, {checked.get("reverted", 0)} reverted,
{checked.get("escaped_defects", 0)} escaped defects.</p>
<h2>Last run of each loop</h2>{loops}
<h2>Latest ledger rows</h2>{ledger}
</body></html>
"""


def error_page(message: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Triloop status</title>"
        f"<style>{CSS}</style></head><body><h1>Triloop</h1>"
        f"<p class='over'>The factory's database could not be read: {esc(message)}</p>"
        "</body></html>"
    )
