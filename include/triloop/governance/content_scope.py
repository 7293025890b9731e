"""What each name of a module may mean, for the content rules: imports, aliases, builtins.

Resolution over-approximates on purpose: a name means everything any binding in the file gives
it (``x = os.system`` in one function makes ``x`` mean ``os.system`` everywhere), plus the
builtin of that name unless a function scope binds it (Python's own rule: a function-local
name never falls back to the builtins). A module-level ``def eval`` does not hide the builtin.
"""

from __future__ import annotations

import ast
import builtins
from collections import defaultdict
from dataclasses import dataclass, field

from triloop.governance.content_table import members

_BUILTINS = frozenset(dir(builtins))
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
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
            elif node.id in _BUILTINS and id(node) not in self.local:
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


def module_scope(tree: ast.Module) -> Scope:
    scope = Scope()
    pairs: list[tuple[str, ast.expr]] = []
    for node in ast.walk(tree):
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
    scope.local = _function_locals(tree)
    return scope


def _pairs(target: ast.expr, value: ast.expr) -> list[tuple[str, ast.expr]]:
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if isinstance(target, ast.Tuple | ast.List) and isinstance(value, ast.Tuple | ast.List):
        pairs = zip(target.elts, value.elts, strict=False)
        if len(target.elts) == len(value.elts):
            return [p for t, v in pairs for p in _pairs(t, v)]
    return []


Chain = tuple[tuple[frozenset[str], frozenset[str]], ...]


def _function_locals(tree: ast.Module) -> set[int]:
    """Ids of the builtin-named Name nodes that a function scope around them binds."""
    found: set[int] = set()
    stack: list[tuple[ast.AST, Chain]] = [(tree, ())]
    while stack:
        node, chain = stack.pop()
        if isinstance(node, ast.Name):
            if node.id in _BUILTINS and _is_local(node.id, chain):
                found.add(id(node))
        elif isinstance(node, _FUNCTIONS):
            inner = (*chain, _bound(node))
            args = node.args
            outer: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d)]
            if not isinstance(node, ast.Lambda):
                outer += [*node.decorator_list, *([node.returns] if node.returns else [])]
                body: list[ast.AST] = list(node.body)
            else:
                body = [node.body]
            stack += [(n, chain) for n in outer] + [(n, inner) for n in body]
        elif isinstance(node, _COMPREHENSIONS):
            gens, inner = node.generators, (*chain, _bound(node))
            heads = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            inside = [*heads, *(g.target for g in gens), *(i for g in gens for i in g.ifs)]
            stack.append((gens[0].iter, chain))  # the first iterable is evaluated outside
            stack += [(n, inner) for n in [*inside, *(g.iter for g in gens[1:])]]
        else:
            stack += [(n, chain) for n in ast.iter_child_nodes(node)]
    return found


def _is_local(name: str, chain: Chain) -> bool:
    for bound, global_names in reversed(chain):
        if name in global_names:
            return False
        if name in bound:
            return True
    return False


def _bound(scope: ast.AST) -> tuple[frozenset[str], frozenset[str]]:
    """The names a function or comprehension binds locally, and those it declares global."""
    bound: set[str] = set()
    declared: set[str] = set()
    todo: list[ast.AST] = []
    if isinstance(scope, _FUNCTIONS):
        a = scope.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
        bound |= {p.arg for p in params if p is not None}
        todo = list(scope.body) if isinstance(scope.body, list) else [scope.body]
    elif isinstance(scope, _COMPREHENSIONS):
        todo = [g.target for g in scope.generators]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            continue
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global):
            declared |= set(node.names)
        if not isinstance(node, (ast.Lambda, *_COMPREHENSIONS)):
            todo += list(ast.iter_child_nodes(node))
    return frozenset(bound - declared), frozenset(declared)
