"""setuptools' ``setup.py``, parsed with ``ast``: never imported or run.

``install_requires``, ``setup_requires``, ``tests_require``, ``extras_require`` and
``dependency_links`` are read when they are literals: a string or a list of strings (or a dict
of them for extras), directly in the ``setup(...)`` call or through a name the module assigns
once at its top level; anything else (a call, a comprehension, ``**kwargs`` that is not a
literal dict) is a problem naming the file and line, because only running the file would tell.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Collection

from triloop.domain.manifests.model import (
    Origin,
    Parsed,
    Problem,
    Scope,
    Source,
    Where,
)
from triloop.domain.manifests.pep508 import (
    parse_pep508,
)

KEYWORDS: dict[str, tuple[Scope, str]] = {
    "install_requires": ("run", ""),
    "setup_requires": ("build", ""),
    "tests_require": ("group", "tests"),
}


def parse_setup_py(source: str, path: str, indexes: Collection[str]) -> Parsed:
    parsed = Parsed()
    try:
        with warnings.catch_warnings():  # the file's own oddities are not our log's business
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return Parsed(problems=[Problem(path, exc.lineno or 0, "", f"not valid Python: {exc.msg}")])
    except (ValueError, RecursionError, MemoryError) as exc:
        return Parsed(problems=[Problem(path, 0, "", f"not readable Python: {exc!r}"[:300])])
    assigned = _module_literals(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_setup(node.func):
            for keyword in node.keywords:
                _keyword(keyword.arg, keyword.value, keyword.lineno, path, source, assigned, parsed)
    return parsed


def _is_setup(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "setup") or (
        isinstance(func, ast.Attribute) and func.attr == "setup"
    )


def _module_literals(tree: ast.Module) -> dict[str, ast.expr]:
    """Names the module assigns exactly once at its top level, with the assigned expression."""
    seen: dict[str, list[ast.expr]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    seen.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            seen.setdefault(node.target.id, []).append(node.value or node.target)
    return {name: values[0] for name, values in seen.items() if len(values) == 1}


def _keyword(
    arg: str | None,
    value: ast.expr,
    line: int,
    path: str,
    source: str,
    assigned: dict[str, ast.expr],
    parsed: Parsed,
) -> None:
    if isinstance(value, ast.Name) and value.id in assigned:
        value = assigned[value.id]
    segment = (ast.get_source_segment(source, value) or "")[:200]
    if arg is None:  # setup(**metadata)
        if not isinstance(value, ast.Dict):
            where = Where(path, line, f"{path} setup(**...)")
            parsed.add(where.problem(f"**{segment}", _not_literal("**kwargs"), "dynamic"))
            return
        for key, item in zip(value.keys, value.values, strict=True):
            name = (
                key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
            )
            if name is None and key is not None:
                where = Where(path, key.lineno, f"{path} setup(**...)")
                parsed.add(where.problem(segment, _not_literal("a key"), "dynamic"))
            elif name is not None:
                _keyword(name, item, key.lineno if key else line, path, source, assigned, parsed)
        return
    if arg == "extras_require":
        where = Where(path, value.lineno, f"{path} setup(extras_require=...)", "extra")
        if not isinstance(value, ast.Dict):
            parsed.add(where.problem(segment, _not_literal(arg), "dynamic"))
            return
        for key, item in zip(value.keys, value.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                parsed.add(where.problem(segment, _not_literal(f"{arg} key"), "dynamic"))
                continue
            place = f"{path} setup(extras_require=...) {key.value}"
            extra = Where(path, key.lineno, place, "extra", key.value)
            _strings(item, extra, arg, source, assigned, parsed)
    elif arg in KEYWORDS:
        scope, section = KEYWORDS[arg]
        where = Where(path, value.lineno, f"{path} setup({arg}=...)", scope, section)
        _strings(value, where, arg, source, assigned, parsed)
    elif arg == "dependency_links":
        where = Where(path, value.lineno, f"{path} setup(dependency_links=...)")
        for link, node in _literal_strings(value, assigned):
            if link is None:
                text = ast.get_source_segment(source, node) or ""
                parsed.add(where.at(node.lineno).problem(text, _not_literal(arg), "dynamic"))
            else:
                origin = Origin("find-links", link)
                parsed.sources.append(Source(path, node.lineno, link, where.place, origin))


def _strings(
    value: ast.expr,
    where: Where,
    arg: str,
    source: str,
    assigned: dict[str, ast.expr],
    parsed: Parsed,
) -> None:
    for item, node in _literal_strings(value, assigned):
        if item is None:
            text = ast.get_source_segment(source, node) or ""
            parsed.add(where.at(node.lineno).problem(text, _not_literal(arg), "dynamic"))
            continue
        for entry in (e.strip() for e in item.splitlines()):
            if entry and not entry.startswith("#"):
                parsed.add(parse_pep508(entry, where.at(node.lineno)))


def _literal_strings(
    value: ast.expr, assigned: dict[str, ast.expr]
) -> list[tuple[str | None, ast.expr]]:
    """(string, node) for a string or a list/tuple of strings; (None, node) where one is not."""
    if isinstance(value, ast.Name) and value.id in assigned:
        value = assigned[value.id]
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [(value.value, value)]
    if isinstance(value, ast.List | ast.Tuple):
        return [
            (e.value if isinstance(e, ast.Constant) and isinstance(e.value, str) else None, e)
            for e in value.elts
        ]
    return [(None, value)]


def _not_literal(what: str) -> str:
    return f"{what} is not a literal: setup.py is read, never run, so it cannot be vetted"
