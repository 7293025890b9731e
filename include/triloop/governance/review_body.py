"""The markdown a reviewer reads in Airflow's Required Actions form: decision, risk, evidence."""

from __future__ import annotations

from collections.abc import Sequence

from triloop.domain.contracts import CheckResult, Decision

EXCERPT_CHARS = 1500


def _fenced(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text}\n{fence}"


def review_markdown(
    title: str, branch: str, decision: Decision, checks: Sequence[CheckResult]
) -> str:
    """Every check with its status, rule ids, reproducing command and output excerpt."""
    why, *reasons = decision.reasons or [""]
    parts = [
        f"**{title}**",
        f"branch `{branch}`, head `{decision.head_sha[:12]}`, base `{decision.base_sha[:12]}`",
        f"**Risk: {decision.risk}.** {why}",
        *(f"- {r}" for r in reasons),
        "",
        "| check | status | rules | reproduce |",
        "|---|---|---|---|",
        *(
            f"| {c.check_id} | {c.status} | {', '.join(c.rule_ids) or '-'} | `{c.command}` |"
            for c in checks
        ),
    ]
    for c in sorted(checks, key=lambda c: c.status == "passed"):
        parts += ["", f"**{c.check_id}** ({c.status})", _fenced(c.excerpt[-EXCERPT_CHARS:] or "-")]
    parts += [
        "",
        "*Approve* merges (if the base has not moved since these checks). *Request changes*"
        " closes the PR and sends the ticket back with your feedback. *Reject* closes both;"
        " the ticket stays quiet for its cooldown. No answer in time counts as *Request changes*.",
    ]
    return "\n".join(parts)
