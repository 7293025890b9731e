"""A notebook's code cells as one Python module (they share one namespace), and its magics.

IPython syntax is not Python: shell escapes (``!cmd``, ``x = !cmd``, ``%%bash`` cells, ``%pip``,
``%sx``...) run processes; other magics (``%run``, ``%load_ext``, ``%%writefile``...) run or load
code; only a few (``%matplotlib``, ``%time``, ``%%capture``...) do neither. Each magic line is
replaced by ``pass`` so the rest parses, and judged on its own.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from triloop.governance.content_table import DYNAMIC, PROCESS, names

SHELL_MAGICS = frozenset(
    names("sx system sc pip conda mamba ls cat rm mkdir cp mv rmdir man more less alias bash sh")
    + names("script perl ruby python2 python3 pypy !")
)
HARMLESS_MAGICS = frozenset(
    names("matplotlib time timeit autoreload precision pprint xmode who whos who_ls history")
    + names("lsmagic magic config capture markdown latex html svg")
)
_MAGIC = re.compile(r"^\s*(?:[\w.,\s\[\]()*]+=\s*)?(!|%(?=[%A-Za-z]))")
_HELP = re.compile(r"^\s*\?*[\w.]+\?{0,2}\s*$")


@dataclass
class NotebookCode:
    path: str
    text: str = ""
    origin: list[tuple[int, int]] = field(default_factory=list)
    magics: list[tuple[str, str, int]] = field(default_factory=list)

    def where(self, line: int) -> str:
        cell, number = self.origin[line - 1] if 0 < line <= len(self.origin) else (0, line)
        return f"{self.path} cell {cell}:{number}"

    def magic_reasons(self, base: NotebookCode | None) -> list[str]:
        """``content:`` reasons for the magics this notebook has beyond ``base``'s."""
        known = Counter((c, t) for c, t, _ in base.magics) if base else Counter()
        out = []
        for cat, text, line in self.magics:
            if known[(cat, text)] > 0:
                known[(cat, text)] -= 1
            else:
                out.append(f"content: {cat} added in {self.where(line)} ({text[:60]})")
        return out


def notebook_code(path: str, text: str) -> NotebookCode:
    """The code cells of a v4 notebook; raises ValueError, TypeError or KeyError otherwise."""
    doc = json.loads(text)
    lines: list[str]
    out, lines = NotebookCode(path), []
    for number, cell in enumerate(doc["cells"], 1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if not isinstance(source, str):
            raise TypeError(f"cell {number} source is {type(source).__name__}")
        cell_lines = source.splitlines()
        skip_body = False
        for offset, line in enumerate(cell_lines, 1):
            text_line = len(lines) + 1
            out.origin.append((number, offset))
            stripped = line.strip()
            if offset == 1 and stripped.startswith("%%"):
                name = (stripped[2:].split() or [""])[0]
                if name not in HARMLESS_MAGICS:
                    out.magics.append((_category(name), stripped, text_line))
                    skip_body = True
                lines.append("")
            elif skip_body:
                lines.append("")
            elif match := _MAGIC.match(line):
                rest = line[match.end() :].strip()
                name = "!" if match.group(1) == "!" else (rest.split() or [""])[0].lstrip("%")
                if name not in HARMLESS_MAGICS:
                    out.magics.append((_category(name), stripped, text_line))
                lines.append(line[: len(line) - len(line.lstrip())] + "pass")
            elif _HELP.match(line) and "?" in line:
                lines.append(line[: len(line) - len(line.lstrip())] + "pass")
            else:
                lines.append(line)
    out.text = "\n".join(lines) + "\n"
    return out


def _category(name: str) -> str:
    return PROCESS if name in SHELL_MAGICS else DYNAMIC
