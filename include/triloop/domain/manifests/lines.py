"""Line numbers for entries of formats whose parsers give none (TOML, JSON, INI).

Found by searching the text forwards from the entry's table header, or from the line of the entry
before it (entries are written in order). A miss is line 0 (the file is still named); after 50
misses a file's remaining entries are not searched for (a file written to be slow to search).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable

MAX_MISSES = 50


class Lines:
    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()
        self.misses = 0
        self._headers = [self._header(line) for line in self.lines]

    @staticmethod
    def _header(line: str) -> str:
        text = line.split("#", 1)[0].strip()
        if not text.startswith("[") or not text.endswith("]"):
            return ""
        return re.sub(r"[\s\"']", "", text)

    def header(self, table: str) -> int:
        """The line of ``[table]`` (or ``[[table]]``), 0 if it is written some other way."""
        wanted = (f"[{table}]", f"[[{table}]]")
        return next((n for n, h in enumerate(self._headers, start=1) if h in wanted), 0)

    def headers(self, table: str) -> list[int]:
        """Every ``[[table]]`` line, in order."""
        return [n for n, h in enumerate(self._headers, start=1) if h == f"[[{table}]]"]

    def find(self, needle: str, start: int = 0) -> int:
        """The first line from ``start`` containing ``needle``; 0 if none."""
        return self._search(lambda text: needle in text, start)

    def key(self, key: str, start: int = 0) -> int:
        """The first line from ``start`` assigning ``key`` (``key =``, ``"key" =``)."""
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        return self._search(lambda text: pattern.match(text) is not None, start)

    def _search(self, test: Callable[[str], bool], start: int) -> int:
        if self.misses >= MAX_MISSES:
            return 0  # a file written to defeat the search: its lines stay unknown
        for number in range(max(start, 1), len(self.lines) + 1):
            if test(self.lines[number - 1]):
                return number
        self.misses += 1
        return 0


def toml_error_line(exc: tomllib.TOMLDecodeError) -> int:
    found = re.search(r"line (\d+)", str(exc))
    return int(found.group(1)) if found else 0
