"""Which names a function scope binds: there, a builtin's name is not the builtin.

Python's own rule: a name a function (or lambda, or comprehension) binds is local throughout it
and never falls back to the builtins. Defaults, decorators and a comprehension's first iterable
are evaluated outside, so ``def f(eval=eval)`` still reads the builtin. Class bodies do not hide
builtins from the functions inside them, and a module-level binding never hides them here.
Also the one-pass walk the content rules share, and string annotations read as the code that
typing.get_type_hints and pydantic evaluate them as.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable

BUILTINS = frozenset(dir(builtins))
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

Children = dict[ast.AST, list[ast.AST]]


def children_of(tree: ast.AST) -> Children:
    """Every node of ``tree`` and its children, in one pass (ast.walk per question is slow)."""
    out: Children = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        out[node] = kids = list(ast.iter_child_nodes(node))
        stack += kids
    return out


Chain = tuple[tuple[frozenset[str], frozenset[str]], ...]


def function_locals(tree: ast.Module, children: Children) -> set[int]:
    """Ids of the builtin-named Name nodes that a function scope around them binds."""
    found: set[int] = set()
    stack: list[tuple[ast.AST, Chain]] = [(tree, ())]
    while stack:
        node, chain = stack.pop()
        if isinstance(node, ast.Name):
            if node.id in BUILTINS and _is_local(node.id, chain):
                found.add(id(node))
        elif isinstance(node, _FUNCTIONS):
            inner = (*chain, _bound(node, children))
            args = node.args
            outer: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d)]
            if not isinstance(node, ast.Lambda):
                outer += [*node.decorator_list, *([node.returns] if node.returns else [])]
                body: list[ast.AST] = list(node.body)
            else:
                body = [node.body]
            stack += [(n, chain) for n in outer] + [(n, inner) for n in body]
        elif isinstance(node, _COMPREHENSIONS):
            gens, inner = node.generators, (*chain, _bound(node, children))
            heads = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            inside = [*heads, *(g.target for g in gens), *(i for g in gens for i in g.ifs)]
            stack.append((gens[0].iter, chain))  # the first iterable is evaluated outside
            stack += [(n, inner) for n in [*inside, *(g.iter for g in gens[1:])]]
        else:
            stack += [(n, chain) for n in children[node]]
    return found


def _is_local(name: str, chain: Chain) -> bool:
    for bound, global_names in reversed(chain):
        if name in global_names:
            return False
        if name in bound:
            return True
    return False


def _bound(scope: ast.AST, children: Children) -> tuple[frozenset[str], frozenset[str]]:
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
            todo += children[node]
    return frozenset(bound - declared), frozenset(declared)


def string_annotations(nodes: Iterable[ast.AST]) -> list[ast.expr]:
    """String annotations as code: typing.get_type_hints and pydantic evaluate them."""
    out = []
    for node in list(nodes):
        if isinstance(node, ast.arg | ast.AnnAssign):
            annotation = node.annotation
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            annotation = node.returns
        else:
            continue
        for const in ast.walk(annotation) if annotation else ():
            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                try:
                    code = ast.parse(const.value.strip(), mode="eval").body
                except SyntaxError:
                    continue  # Literal["any text"]
                out.append(ast.increment_lineno(code, const.lineno - 1))
    return out
