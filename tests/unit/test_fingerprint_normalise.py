"""Fingerprints survive what formatters and line shifts do, and still tell different code apart."""

from __future__ import annotations

import pytest
from triloop.domain.fingerprint import finding_fingerprint, normalise_code, statement_at


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("x = foo('a', 'b',)", 'x = foo(\n    "a",\n    "b",\n)'),
        ("return (a +\n        b)", "return a + b"),
        ("s = 'ab' 'cd'", 's = "abcd"'),
        ("x = f'{a}'", 'x = f"{a}"'),
        ("y = 0XFF", "y = 0xff"),
        ("import os  # noqa: F401", "import os"),
        ("if x == None :", "if x == None:"),
        ("d = {'k': [1, 2,],}", 'd = {"k": [1, 2]}'),
    ],
)
def test_formatting_does_not_change_the_normalised_code(before: str, after: str) -> None:
    assert normalise_code(before) == normalise_code(after)
    assert finding_fingerprint("r", "E711", "m.py", "f", before) == finding_fingerprint(
        "r", "E711", "m.py", "f", after
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("import os", "import sys"),
        ("x = f(a)(b)", "x = f(a(b))"),
        ("s = 'a'", "s = 'b'"),
        ("x = [a, b]", "x = (a, b)"),
        ("n = 10", "n = 100"),
    ],
)
def test_different_code_gets_different_fingerprints(one: str, other: str) -> None:
    assert normalise_code(one) != normalise_code(other)
    assert finding_fingerprint("r", "X", "m.py", "", one) != finding_fingerprint(
        "r", "X", "m.py", "", other
    )


@pytest.mark.parametrize(
    ("part", "value"),
    [("rule", "F541"), ("path", "n.py"), ("symbol", "g"), ("repo_id", "s")],
)
def test_each_identity_part_counts(part: str, value: str) -> None:
    base = {"repo_id": "r", "rule": "F401", "path": "m.py", "symbol": "f", "code": "import os"}
    assert finding_fingerprint(**base) != finding_fingerprint(**{**base, part: value})


SOURCE = "import os\n\ndef f(a,\n      b):\n    x = g(\n        1,\n    )  # c\n    return x\n"


@pytest.mark.parametrize(
    ("line", "statement"),
    [
        (1, "import os"),
        (4, "def f(a,\n      b):"),
        (6, "    x = g(\n        1,\n    )  # c"),
        (8, "    return x"),
        (2, ""),
        (99, ""),
    ],
)
def test_statement_at_returns_the_whole_statement(line: int, statement: str) -> None:
    assert statement_at(SOURCE, line) == statement


def test_unparsable_source_falls_back_to_the_line() -> None:
    assert statement_at("x = (\ny = 2\n", 2) == "y = 2"
    assert normalise_code("foo(a,") == "foo ( a ,"
