"""Every place a Python module reaches a process, dynamic code, unpickling or the network.

``uses(text)`` parses the module and lists each reference (an import, a name, an attribute
chain, a call) whose resolved name the content table lists, with a key that identifies it
across two versions of the file regardless of its line: the category, the resolved name and
the dump of its site (the call it is called by, else the reference itself).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from triloop.governance.content_locals import children_of, string_annotations
from triloop.governance.content_scope import literal, module_scope, safe_call
from triloop.governance.content_table import (
    CONDITIONAL,
    DYNAMIC,
    ESCAPE_ATTRIBUTES,
    GETATTR_LIKE,
    NAME_GETTERS,
    SENSITIVE_LEAVES,
    UNRESOLVED_CALLS,
    capable,
    category,
    members,
)

_NAMESPACE_VIEWS = frozenset(("builtins.vars", "builtins.locals"))
_PATCHERS = frozenset(("setattr", "delattr", "object"))  # monkeypatch.setattr, patch.object
_READERS = frozenset(("get", "items", "values", "keys", "__getitem__", "setdefault", "pop"))


class Unparsable(ValueError):
    """The module does not parse: what it adds cannot be judged."""

    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class Use:
    category: str
    what: str
    line: int
    key: str


def uses(text: str) -> list[Use]:
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise Unparsable(exc.lineno or 1, exc.msg) from exc
    except ValueError as exc:  # null bytes
        raise Unparsable(1, str(exc)) from exc
    return _Finder(tree).run()


class _Finder:
    def __init__(self, tree: ast.Module) -> None:
        self.children = children_of(tree)
        self.scope = module_scope(tree, self.children)
        for sub in string_annotations(self.children):
            self.children.update(children_of(sub))
        self.parents = {c: n for n, kids in self.children.items() for c in kids}
        self.found: list[Use] = []

    def run(self) -> list[Use]:
        for node in self.children:
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._imports(node)
            elif isinstance(node, ast.Name | ast.Attribute):
                self._reference(node)
            elif isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Subscript) and literal(node.slice) in ESCAPE_ATTRIBUTES:
                self._add(DYNAMIC, f"[{literal(node.slice)!r}]", node)
        return self.found

    def _add(self, cat: str, what: str, site: ast.AST, name: str = "") -> None:
        line = getattr(site, "lineno", 1)
        self.found.append(Use(cat, what, line, f"{cat}|{name or what}|{ast.dump(site)}"))

    def _imports(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.ImportFrom) and (node.level or not node.module):
            return
        module = node.module if isinstance(node, ast.ImportFrom) else None
        for alias in node.names:
            full = f"{module}.{alias.name}" if module else alias.name
            shown = f"from {module} import {alias.name}" if module else f"import {alias.name}"
            shown += f" as {alias.asname}" if alias.asname else ""
            star = members(module) if module and alias.name == "*" else set()
            cats = {category(f"{module}.{m}") or CONDITIONAL.get(f"{module}.{m}") for m in star}
            for cat in sorted(c for c in {category(full), *cats} if c):
                self.found.append(Use(cat, shown, node.lineno, f"{cat}|{shown}"))

    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        parent = self.parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return  # the outermost attribute chain speaks for it
        if isinstance(node, ast.Attribute) and node.attr in ESCAPE_ATTRIBUTES:
            self._add(DYNAMIC, f"{ast.unparse(node)}", node)
        if isinstance(node, ast.Name) and node.id == "__builtins__":
            self._add(DYNAMIC, "__builtins__", node)
        if isinstance(node, ast.Attribute) and node.attr == "__dict__" and self._read(node):
            self._add(DYNAMIC, f"{ast.unparse(node)} read by key", parent or node)
        names = self.scope.resolve(node)
        if not isinstance(node.ctx, ast.Load):
            if isinstance(node, ast.Attribute):
                owner = self.scope.resolve(node.value)
                for name in sorted(n for n in names if category(n) or "builtins" in owner):
                    self._add(DYNAMIC, f"assigns {name}", node, name)
            return
        call = parent if isinstance(parent, ast.Call) and parent.func is node else None
        site = call or node
        for name in sorted(names):
            cat = category(name) or (
                CONDITIONAL.get(name) if not safe_call(name, call, self.scope) else None
            )
            if cat:
                self._add(cat, _label(node, name), site, name)
            elif name.endswith(".__dict__") and capable(name.removesuffix(".__dict__")):
                self._add(DYNAMIC, _label(node, name), site, name)
            elif capable(name) and not self._tracked(node, parent):
                value = parent if isinstance(parent, ast.expr) else node
                self._add(DYNAMIC, f"module {name} used as a value", value, name)
            elif name in _NAMESPACE_VIEWS and call and self._indexed(call):
                self._add(DYNAMIC, f"{ast.unparse(call)} indexed", call, name)
        if not names and call and isinstance(node, ast.Attribute):
            cat = UNRESOLVED_CALLS.get(node.attr)
            if cat:
                self._add(cat, f"{ast.unparse(node)}()", call, node.attr)

    def _tracked(self, node: ast.expr, parent: ast.AST | None) -> bool:
        """A module value the scope follows: aliased to a name, compared, or looked into."""
        while isinstance(parent, ast.IfExp | ast.BoolOp) and node is not getattr(parent, "test", 0):
            node, parent = parent, self.parents.get(parent)
        unpacked = isinstance(parent, ast.Tuple | ast.List)
        if isinstance(parent, ast.Tuple | ast.List):
            node, parent = parent, self.parents.get(parent)
        if isinstance(parent, ast.Assign):
            kinds = (ast.Tuple, ast.List) if unpacked else (ast.Name,)
            return parent.value is node and all(isinstance(t, kinds) for t in parent.targets)
        if isinstance(parent, ast.AnnAssign | ast.NamedExpr) and not unpacked:
            return parent.value is node and isinstance(parent.target, ast.Name)
        if isinstance(parent, ast.Compare) and not unpacked:
            return True
        if isinstance(parent, ast.If | ast.While | ast.Assert | ast.IfExp):
            return parent.test is node  # a truth test: `if ssl:` after a guarded import
        if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
            return True
        if isinstance(parent, ast.Call) and parent.args and parent.args[0] is node:
            return self._lookup(parent) is not None
        return False

    def _read(self, node: ast.Attribute) -> bool:
        """``x.__dict__[key]`` or ``x.__dict__.get(...)`` on anything but self or cls."""
        if _is_self(node.value):
            return False
        outer = self.parents.get(node)
        if isinstance(outer, ast.Subscript) and outer.value is node:
            return literal(outer.slice) is None
        return isinstance(outer, ast.Attribute) and outer.attr in _READERS

    def _indexed(self, call: ast.Call) -> bool:
        outer = self.parents.get(call)
        return isinstance(outer, ast.Subscript | ast.Attribute) and outer.value is call

    def _lookup(self, node: ast.Call) -> tuple[ast.expr, ast.expr, bool] | None:
        """(object, name, strict) when ``node`` looks an attribute up by name; strict: getattr."""
        funcs, args, func = self.scope.resolve(node.func), node.args, node.func
        if funcs & GETATTR_LIKE and len(args) > 1:
            return args[0], args[1], True
        if isinstance(func, ast.Attribute) and func.attr == "__getattribute__" and args:
            return func.value, args[0], True
        if isinstance(func, ast.Attribute) and func.attr in _PATCHERS and len(args) > 1:
            return (args[0], args[1], False) if literal(args[1]) is not None else None
        return None

    def _call(self, node: ast.Call) -> None:
        if self.scope.resolve(node.func) & NAME_GETTERS:
            for arg in node.args:
                name = literal(arg)
                if name is None or SENSITIVE_LEAVES & set(name.split(".")):
                    self._add(DYNAMIC, ast.unparse(node), node)
            return
        lookup = self._lookup(node)
        if lookup is None:
            return
        target, name_node, strict = lookup
        targets, name = self.scope.resolve(target), literal(name_node)
        shown = ast.unparse(target)
        if name is None:
            if not _is_self(target) and "builtins.hasattr" not in self.scope.resolve(node.func):
                self._add(DYNAMIC, f"{ast.unparse(node.func)}({shown}, <computed>)", node)
            return
        for q in sorted(targets):
            cat = category(f"{q}.{name}") or CONDITIONAL.get(f"{q}.{name}")
            if cat:
                self._add(
                    cat,
                    f"{ast.unparse(node.func)}({shown}, {name!r}) -> {q}.{name}",
                    node,
                    f"{q}.{name}",
                )
        if strict and (name in ESCAPE_ATTRIBUTES or (not targets and name in SENSITIVE_LEAVES)):
            self._add(DYNAMIC, f"{ast.unparse(node.func)}({shown}, {name!r})", node)


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _label(node: ast.expr, name: str) -> str:
    text, shown = ast.unparse(node), name.removeprefix("builtins.")
    return shown if text == shown else f"{text} -> {shown}"
