"""Stable identities for findings and tickets.

A finding's fingerprint ignores its line number, so inserting lines above it or reformatting
around it does not make it new: it hashes the rule, the path, the enclosing symbol and the
offending code with whitespace collapsed. A ticket groups the findings of one rule in one file,
because they are fixed together; its key and id derive from (repo, rule, path).
"""

from __future__ import annotations

import hashlib
import re

_WS = re.compile(r"\s+")


def normalise_code(code: str) -> str:
    return _WS.sub(" ", code).strip()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def finding_fingerprint(repo_id: str, rule: str, path: str, symbol: str, code: str) -> str:
    return _digest("finding", repo_id, rule, path, symbol, normalise_code(code))


def ticket_key(repo_id: str, rule: str, path: str) -> str:
    return _digest("ticket", repo_id, rule, path)


def ticket_id_for(key: str) -> str:
    """Human-sized, deterministic ticket id (so branch names and PR titles are derived)."""
    return f"T-{key[:10]}"


def branch_for(ticket_id: str, attempt: int = 1) -> str:
    """Derived branch name; a later attempt gets its own branch (and its own PR)."""
    suffix = "" if attempt <= 1 else f"-attempt-{attempt}"
    return f"triloop/{ticket_id.lower()}{suffix}"
