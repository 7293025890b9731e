"""Stable identities for findings and tickets.

A finding's fingerprint is (repo, rule, path, enclosing symbol, normalised code): no line
number, so inserting lines above it does not make it new. The code is the whole statement
holding the offending line (a formatter may spread one statement over several lines), reduced
to its tokens: comments, whitespace and line breaks dropped, strings compared by value (quote
style, implicit concatenation), trailing commas and grouping parentheses dropped, numbers in
lower case. So ``ruff format`` or ``black`` over the file leaves every fingerprint as it was.
Neighbouring statements are deliberately left out: an unrelated edit next to a finding must not
make it new.

Ticket keys derive from stable parts only; see :mod:`triloop.discovery.grouping` for which.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import keyword
import re
import tokenize

_WS = re.compile(r"\s+")
_SKIP = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
)
_CLOSERS = frozenset({")", "]", "}"})
_STRING_PREFIX = re.compile(r"^([a-zA-Z]*)('''|\"\"\"|'|\")")


def _string_text(tok: str) -> tuple[str | None, str]:
    """(value, text) of a string literal; an f-string has no value and its quotes unified."""
    try:
        value = ast.literal_eval(tok)
    except (ValueError, SyntaxError):
        match = _STRING_PREFIX.match(tok)
        if not match:
            return None, tok
        prefix, quote = match.groups()
        body = tok[len(prefix) + len(quote) : len(tok) - len(quote)]
        return None, f'{prefix.lower()}"{body}"'
    return (value, repr(value)) if isinstance(value, str) else (None, repr(value))


def _tokens(code: str) -> list[str]:
    out: list[str] = []
    last_value: str | None = None  # the previous token's value if it was a plain string
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in _SKIP:
                continue
            value: str | None = None
            if tok.type == tokenize.STRING:
                value, text = _string_text(tok.string)
                if value is not None and last_value is not None:
                    # Implicit concatenation: "a" "b" is "ab" (formatters join or split it).
                    value = last_value + value
                    out[-1] = repr(value)
                    last_value = value
                    continue
            elif tok.type == tokenize.NUMBER:
                text = tok.string.lower()
            else:
                text = tok.string
            out.append(text)
            last_value = value
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # a fragment (unclosed bracket): the tokens read so far
    return _drop_layout(out)


def _drop_layout(tokens: list[str]) -> list[str]:
    """Without trailing commas and grouping parentheses (which formatters add and remove)."""
    keep = [True] * len(tokens)
    stack: list[tuple[int, bool]] = []
    for i, tok in enumerate(tokens):
        if tok == "," and i + 1 < len(tokens) and tokens[i + 1] in _CLOSERS:
            keep[i] = False
        elif tok in ("(", "[", "{"):
            prev = tokens[i - 1] if i else ""
            called = bool(prev) and (
                prev in (")", "]", "}")
                or prev.startswith(("'", '"'))
                or (prev.isidentifier() and not keyword.iskeyword(prev))
            )
            grouping = tok == "(" and not called
            stack.append((i, grouping))
            keep[i] = not grouping
        elif tok in _CLOSERS and stack:
            _, grouping = stack.pop()
            keep[i] = not grouping
    return [t for t, k in zip(tokens, keep, strict=True) if k]


def normalise_code(code: str) -> str:
    """The code's tokens, joined by single spaces (see the module docstring for what is dropped)."""
    tokens = _tokens(code)
    return " ".join(tokens) if tokens else _WS.sub(" ", code).strip()


@functools.lru_cache(maxsize=256)
def _statement_spans(source: str) -> tuple[tuple[int, int], ...]:
    """(first, last) physical line of every logical line (statement) in ``source``."""
    spans: list[tuple[int, int]] = []
    start = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT):
                continue
            if tok.type == tokenize.NEWLINE:
                if start:
                    spans.append((start, tok.start[0]))
                start = 0
            elif tok.type != tokenize.ENDMARKER and not start:
                start = tok.start[0]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return tuple(spans)
    return tuple(spans)


def statement_at(source: str, line: int) -> str:
    """The whole statement holding 1-based ``line`` (the line alone if it cannot be parsed)."""
    lines = source.splitlines()
    if not 0 < line <= len(lines):
        return ""
    for first, last in _statement_spans(source):
        if first <= line <= last:
            return "\n".join(lines[first - 1 : last])
    return lines[line - 1].strip()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def finding_fingerprint(repo_id: str, rule: str, path: str, symbol: str, code: str) -> str:
    return _digest("finding", repo_id, rule, path, symbol, normalise_code(code))


def ticket_key(repo_id: str, rule: str, path: str) -> str:
    """Key of a (rule, path) ticket: the key every ruff and semgrep ticket has had since 0001."""
    return _digest("ticket", repo_id, rule, path)


def derived_key(kind: str, repo_id: str, *parts: str) -> str:
    """Key of a ticket of another grouping strategy (``kind`` keeps the strategies apart)."""
    return _digest(f"ticket-{kind}", repo_id, *parts)


def ticket_id_for(key: str) -> str:
    """Human-sized, deterministic ticket id (so branch names and PR titles are derived)."""
    return f"T-{key[:10]}"


def branch_for(ticket_id: str, attempt: int = 1) -> str:
    """Derived branch name; a later attempt gets its own branch (and its own PR)."""
    suffix = "" if attempt <= 1 else f"-attempt-{attempt}"
    return f"triloop/{ticket_id.lower()}{suffix}"
