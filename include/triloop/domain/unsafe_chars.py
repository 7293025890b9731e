"""Characters that change what a reader of some text sees, and how to show them harmlessly.

A reader here is a person in a terminal or review UI, or a model reading a prompt. These
characters break a line where no line break is visible, or reorder what is displayed:

- C0 controls (U+0000-U+001F), DEL (U+007F) and C1 controls (U+0080-U+009F, NEL among them);
- the Unicode line and paragraph separators U+2028 and U+2029;
- bidi controls: the marks U+061C, U+200E, U+200F, the embeddings and overrides
  U+202A-U+202E and the isolates U+2066-U+2069 ("Trojan source").

Free text (messages, diffs) keeps its tabs and newlines; a name (a path, a rule id) has none.
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
BIDI = re.compile(f"[{_BIDI}]")
"""The bidi controls alone: text holding them may display in another order than it is."""
IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
"""Unsafe in free text: everything above except tab and newline."""
IN_NAME = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
"""Unsafe in a name: everything above, tab and newline included."""
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"}


def escaped(char: str) -> str:
    """``char`` as an escape a reader sees: ``\\n``, ``\\x1b``, ``\\u202e``."""
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    """``text`` with every character unsafe in free text shown as its escape (CRLF: a newline)."""
    return IN_TEXT.sub(lambda m: escaped(m.group()), text.replace("\r\n", "\n"))


def escape_name(text: str) -> str:
    """``text`` with every character unsafe in a name shown as its escape."""
    return IN_NAME.sub(lambda m: escaped(m.group()), text)


def first_unsafe_in_name(text: str) -> str | None:
    """The first character of ``text`` a name may not hold, or None."""
    match = IN_NAME.search(text)
    return match.group() if match else None
