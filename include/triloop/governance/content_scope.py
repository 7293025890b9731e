"""What each name of a module may mean, for the content rules: imports, aliases, builtins.

Resolution over-approximates on purpose: a name means everything any binding in the file gives
it (``x = os.system`` in one function makes ``x`` mean ``os.system`` everywhere), plus the
builtin of that name unless a function scope binds it (Python's own rule: a function-local
name never falls back to the builtins). A module-level ``def eval`` does not hide the builtin.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field

from triloop.governance.content_locals import BUILTINS, Children, function_locals
from triloop.governance.content_table import CONDITIONAL, SAFE_YAML_LOADERS, members

_IMPORTERS = frozenset(("builtins.__import__", "importlib.import_module"))
_ROUNDS = 4  # alias chains (a = os; b = a; c = b.system) resolve in this many passes


def literal(node: ast.AST | None) -> str | None:
    """The string ``node`` always evaluates to (constants, ``+`` and f-strings of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = literal(node.left), literal(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [literal(v) for v in node.values]
        return None if None in parts else "".join(p for p in parts if p is not None)
    return None


@dataclass
class Scope:
    """The meanings (qualified names) of a module's names, and the function-local name nodes."""

    bindings: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    local: set[int] = field(default_factory=set)

    def resolve(self, node: ast.AST) -> set[str]:
        """Every qualified name ``node`` may evaluate to (empty: nothing known)."""
        if isinstance(node, ast.Name):
            found = set(self.bindings.get(node.id, ()))
            if node.id == "__builtins__":
                found.add("builtins")
            elif node.id in BUILTINS and id(node) not in self.local:
                found.add(f"builtins.{node.id}")
            return found
        if isinstance(node, ast.Attribute):
            return {f"{q}.{node.attr}" for q in self.resolve(node.value)}
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value)
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body) | self.resolve(node.orelse)
        if isinstance(node, ast.BoolOp):
            return {q for value in node.values for q in self.resolve(value)}
        if isinstance(node, ast.Subscript):
            name = literal(node.slice)
            return {name} if name and "sys.modules" in self.resolve(node.value) else set()
        if isinstance(node, ast.Call) and node.args:
            funcs, name = self.resolve(node.func), literal(node.args[0])
            if name and funcs & _IMPORTERS:
                return {name, name.split(".")[0]}
            attr = literal(node.args[1]) if len(node.args) > 1 else None
            if attr and "builtins.getattr" in funcs:
                return {f"{q}.{attr}" for q in self.resolve(node.args[0])}
        return set()


def module_scope(tree: ast.Module, children: Children) -> Scope:
    scope = Scope()
    pairs: list[tuple[str, ast.expr]] = []
    for node in children:
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                scope.bindings[alias.asname or top].add(alias.name if alias.asname else top)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names = members(node.module) if alias.name == "*" else {alias.name}
                for name in names:
                    scope.bindings[alias.asname or name].add(f"{node.module}.{name}")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                pairs += _pairs(target, node.value)
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            pairs += _pairs(node.target, node.value)
    for _ in range(_ROUNDS):
        for name, value in pairs:
            scope.bindings[name] |= scope.resolve(value)
    scope.local = function_locals(tree, children)
    return scope


def _pairs(target: ast.expr, value: ast.expr) -> list[tuple[str, ast.expr]]:
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List):
        pairs = zip(target.elts, value.elts, strict=False)
        if len(target.elts) == len(value.elts):
            return [p for t, v in pairs for p in _pairs(t, v)]
    return []


def safe_call(name: str, call: ast.Call | None, scope: Scope) -> bool:
    """A conditional loader called with the arguments that make it safe."""
    if name not in CONDITIONAL or call is None:
        return False
    keywords = {k.arg: k.value for k in call.keywords}
    if None in keywords or any(isinstance(a, ast.Starred) for a in call.args):
        return False  # **kwargs or *args: cannot tell
    if name.startswith("yaml."):
        loader = keywords.get("Loader") or (call.args[1] if len(call.args) > 1 else None)
        found = scope.resolve(loader) if loader is not None else set()
        return bool(found) and found <= SAFE_YAML_LOADERS
    if name == "numpy.load":
        flag = keywords.get("allow_pickle") or (call.args[2] if len(call.args) > 2 else None)
        return flag is None or (isinstance(flag, ast.Constant) and flag.value is False)
    flag = keywords.get("weights_only")  # torch.load
    return isinstance(flag, ast.Constant) and flag.value is True
