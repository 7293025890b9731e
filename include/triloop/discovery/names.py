"""Findings whose names would be misread are refused at discovery, one ledger row each.

A finding's path and rule id become a ticket's path, title and key, the file list and commit
message of its fix and the text an agent reads. Both come from scanner output, which a
repository's code could have written, so a name holding a control character (a newline that
starts a forged line, NUL, C1), a Unicode line or paragraph separator or a bidi control
(triloop.domain.unsafe_chars) is refused: the finding makes no ticket, a
``discovery.finding_refused`` row names the repository, the scanner, the field and the
character (escaped, ``\\n``), and the rest of the scan lands as usual.

Messages and source lines are free text: they keep their newlines and reach agents only
inside the prompt's fence (triloop.execution.harnesses.fence).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from triloop.domain.contracts import Finding
from triloop.domain.unsafe_chars import escape_name, escaped, first_unsafe_in_name
from triloop.store.ledger import Actor, record

log = logging.getLogger(__name__)
NAME_FIELDS = ("path", "rule")
"""The fields of a Finding that reach tickets, titles, commits and prompts as names."""


def unsafe_name(finding: Finding) -> tuple[str, str] | None:
    """(field, its first unsafe character escaped) if a name of ``finding`` holds one."""
    for name in NAME_FIELDS:
        char = first_unsafe_in_name(getattr(finding, name))
        if char is not None:
            return name, escaped(char)
    return None


def refuse_unsafe_names(
    session: Session,
    actor: Actor,
    *,
    repo_id: str,
    scan_key: str,
    head_sha: str,
    findings: Sequence[Finding],
) -> list[Finding]:
    """``findings`` but those with an unsafe name; a ledger row (in ``session``) for each."""
    kept: list[Finding] = []
    for finding in findings:
        bad = unsafe_name(finding)
        if bad is None:
            kept.append(finding)
            continue
        name, char = bad
        value = escape_name(getattr(finding, name))[:300]
        why = f"{finding.tool} finding refused: its {name} '{value}' holds {char}"
        log.warning("repo %s: %s", repo_id, why)
        record(
            session,
            actor,
            "discovery.finding_refused",
            outcome="refused",
            repo_id=repo_id,
            idempotency_key=f"{scan_key}:refused:{finding.tool}:{finding.fingerprint[:16]}",
            error=why,
            payload={
                "scanner": finding.tool,
                "field": name,
                "char": char,
                "value": value,
                "line": finding.line,
                "head_sha": head_sha,
            },
        )
    return kept
