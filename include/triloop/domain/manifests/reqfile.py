"""pip requirements and constraints files, read the way pip's ``req_file.py`` reads them.

Backslash continuations are joined onto their first line, ``#`` comments dropped; a line is a
requirement followed by options, or options alone (pip ignores words after the options).
Options are pip's own, long ones also by an unambiguous prefix as optparse accepts them
(``--extra-index`` is ``--extra-index-url``). What each becomes:

- ``-r``/``-c`` inside the repository (relative to the file, as pip reads them): an
  :class:`Include` (the reader follows it); a URL: a source; a path leaving the repository: a
  problem, never followed. ``-e`` and bare paths are relative to the working directory, taken
  to be the repository root;
- ``--index-url``/``--extra-index-url`` other than a default index, ``--find-links``,
  ``--trusted-host``: a source; ``-e`` and bare URLs, VCS references and paths: a source too;
- an option pip does not read, or a ``${VAR}`` pip would expand at install time: a problem.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection

from triloop.domain.manifests.model import (
    Include,
    Origin,
    Parsed,
    Source,
    Where,
)
from triloop.domain.manifests.pep508 import (
    is_default_index,
    is_url,
    local_path,
    parse_pep508,
    url_origin,
)

COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{[A-Z0-9_]+\}")
VALUE_OPTIONS = frozenset(
    {
        *("--index-url", "--pypi-url", "--extra-index-url", "--constraint", "--requirement"),
        *("--editable", "--find-links", "--no-binary", "--only-binary", "--all-releases"),
        *("--only-final", "--trusted-host", "--use-feature", "--hash", "--config-settings"),
    }
)
FLAG_OPTIONS = frozenset(
    {"--no-index", "--prefer-binary", "--require-hashes", "--no-require-hashes", "--pre"}
)
SHORT = {
    "-i": "--index-url",
    "-c": "--constraint",
    "-r": "--requirement",
    "-e": "--editable",
    "-f": "--find-links",
    "-C": "--config-settings",
}
"""pip 26's requirements-file options (``build_parser()`` in pip/_internal/req/req_file.py)."""
_ARCHIVES = (".whl", ".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz")


def logical_lines(source: str) -> list[tuple[int, str]]:
    """(first line number, text): continuations joined, comments and blank lines dropped."""
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(source.splitlines(), start=1):
        comment = bool(COMMENT.match(line))
        if line.endswith("\\") and not comment:
            start = start if pending else number
            pending.append(line.strip("\\"))
            continue
        line = f" {line}" if comment else line
        joined.append((start, "".join([*pending, line])) if pending else (number, line))
        pending = []
    if pending:
        joined.append((start, "".join(pending)))
    stripped = ((number, COMMENT.sub("", line).strip()) for number, line in joined)
    return [(number, line) for number, line in stripped if line]


def parse_requirements_file(
    source: str, path: str, indexes: Collection[str], *, constraint: bool = False
) -> Parsed:
    """Every requirement, source, include and problem of one requirements file."""
    parsed = Parsed()
    place = f"{path} (constraints)" if constraint else path
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    for number, line in logical_lines(source):
        where = Where(path, number, place, "constraint" if constraint else "run")
        tokens = line.split(" ")
        cut = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        args, options = " ".join(tokens[:cut]).strip(), " ".join(tokens[cut:])
        try:
            words = shlex.split(options)
        except ValueError as exc:
            parsed.add(where.problem(line, f"options do not split: {exc}"))
            continue
        _options(words, line, where, folder, indexes, parsed)
        if args:
            _requirement(args, where, parsed)
    return parsed


def option_name(word: str) -> str | None:
    """The long option ``word`` (``--x``, ``--x=v``, ``-r``, ``-rvalue``) means, or None."""
    if not word.startswith("--"):
        return SHORT.get(word[:2])
    written = word.split("=", 1)[0]
    known = VALUE_OPTIONS | FLAG_OPTIONS
    matches = [o for o in known if o == written] or [o for o in known if o.startswith(written)]
    return matches[0] if len(matches) == 1 else None


def _options(
    words: list[str], line: str, where: Where, folder: str, indexes: Collection[str], out: Parsed
) -> None:
    position = 0
    while position < len(words):
        word = words[position]
        position += 1
        if not word.startswith("-"):
            continue  # pip's option parser leaves stray words aside: nothing is installed
        name = option_name(word)
        written = word.split("=", 1)[0] if word.startswith("--") else word[:2]
        if name is None:
            out.add(
                where.problem(
                    line, f"{written} is not a pip option pip reads in a requirements file"
                )
            )
            continue
        if name in FLAG_OPTIONS:
            continue
        attached = word.split("=", 1)[1] if "=" in word else None
        value = attached if word.startswith("--") else (word[2:].lstrip("=") or None)
        if value is None:
            value = words[position] if position < len(words) else ""
            position += 1
        _option(name, written, value.strip(), line, where, folder, indexes, out)


def _option(
    name: str,
    written: str,
    value: str,
    line: str,
    where: Where,
    folder: str,
    indexes: Collection[str],
    out: Parsed,
) -> None:
    text = " ".join(line.split())
    if name in ("--index-url", "--pypi-url", "--extra-index-url", "--find-links", "--trusted-host"):
        if not value:
            out.add(where.problem(line, f"{written} names no value"))
        elif name == "--find-links" or name == "--trusted-host":
            origin = Origin("find-links" if name == "--find-links" else "trusted-host", value)
            out.sources.append(Source(where.path, where.line, text, where.place, origin))
        elif not is_default_index(value, indexes):
            out.sources.append(
                Source(where.path, where.line, text, where.place, Origin("index", value))
            )
        return
    if name not in ("--requirement", "--constraint", "--editable"):
        return
    if not value:
        out.add(where.problem(line, f"{written} names no path"))
    elif _ENV_VAR.search(value):
        out.add(
            where.problem(line, f"{value} is expanded at install time: cannot be vetted", "dynamic")
        )
    elif is_url(value):
        out.sources.append(Source(where.path, where.line, text, where.place, url_origin(value)))
    elif (target := local_path(value, "" if name == "--editable" else folder)) is None:
        out.add(
            where.problem(line, f"{written} {value!r} points outside the repository", "outside")
        )
    elif name == "--editable":
        out.sources.append(
            Source(where.path, where.line, text, where.place, Origin("path", target))
        )
    else:
        out.includes.append(Include(where.path, where.line, target, name == "--constraint"))


def _requirement(args: str, where: Where, out: Parsed) -> None:
    """The requirement part of a line: PEP 508, or a URL or path pip installs as it is."""
    head = args.split(";", 1)[0].strip()
    if _ENV_VAR.search(head) or not (is_url(head) or _is_path(head)):
        out.add(parse_pep508(args, where))
        return
    text = " ".join(args.split())
    if is_url(head):
        out.sources.append(Source(where.path, where.line, text, where.place, url_origin(head)))
    elif (target := local_path(head.split("[", 1)[0], "")) is None:
        out.add(where.problem(text, f"a path {head!r} points outside the repository", "outside"))
    else:
        out.sources.append(
            Source(where.path, where.line, text, where.place, Origin("path", target))
        )


def _is_path(text: str) -> bool:
    """pip's test: a separator or a leading dot, or an archive's name (not ``name @ URL``)."""
    if "@" in text and not _looks_like_path(text.split("@", 1)[0]):
        return False
    return _looks_like_path(text) or text.lower().split("[", 1)[0].endswith(_ARCHIVES)


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith(".")
