"""The events of a cell's top-level code, in the order it runs them.

A visitor with one method per kind of statement or expression finds the names the code
loads, stores, deletes and changes in place, the calls it makes, the files it touches,
its use of the random state and of ``exec``/``globals()``. A store that may not happen
(in a branch, a loop body, a handler) is not ``definite``. Nested scopes are not
entered: :func:`~cellpipe.core.scopes.summarize_scope` says what running them does.
"""

from __future__ import annotations

import ast

from cellpipe.core.cell_events import CellCode, Definition, Event, Import
from cellpipe.core.files import file_effects
from cellpipe.core.ipython_source import PYTHON_LINE_MAGICS, magic_statements
from cellpipe.core.rng import draws_random, is_generator_function, rng_effect
from cellpipe.core.scopes import (
    ScopeSummary,
    is_mutating_call,
    mutating_methods,
    root_name,
    summarize_scope,
)
from cellpipe.core.syntax import (
    held_names,
    is_alias_value,
    is_globals_call,
    names_in_template,
    path_value,
    through_element,
    value_origin,
    walrus_targets,
)

# Methods of ``globals()`` that set or remove names no one can list.
_GLOBALS_WRITERS = ("update", "__setitem__", "setdefault", "pop", "__delitem__")


def scan_events(code: CellCode, node: ast.Module | ast.stmt) -> None:
    """Append the events of ``node`` (a parsed cell, or one statement) to ``code.events``.

    Lines are shifted by ``code.line_offset``; definitions take their source from
    ``code.python``.
    """
    _EventScanner(code).visit(node)


def _bound_name(alias: ast.alias) -> str:
    """The name an import binds: ``b`` for ``import a as b``, ``a`` for ``import a.c``."""
    return alias.asname or alias.name.split(".")[0]


class _EventScanner(ast.NodeVisitor):
    """Turn statements into events, in execution order."""

    def __init__(self, code: CellCode) -> None:
        self.code = code
        self.lines = code.python.split("\n")
        self.offset = code.line_offset
        self.definite = True

    def emit(self, kind: str, name: str, node: ast.AST, **extra: object) -> None:
        line = getattr(node, "lineno", 1) + self.offset
        self.code.events.append(
            Event(kind, name, line, definite=self.definite and extra.pop("definite", True), **extra)  # type: ignore[arg-type]
        )

    def dynamic(self, what: str, line: int) -> None:
        self.code.events.append(Event("dynamic", what, line))

    def generic_visit(self, node: ast.AST) -> None:
        """``return x``, ``raise``, ``assert``, ``a + b``, ``x[i]``, …: the expressions in them.

        Only the expressions: the type parameters of a ``type`` alias (3.12) are not read.
        """
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.visit(child)

    # -- blocks ---------------------------------------------------------------------

    def visit_Module(self, node: ast.Module) -> None:
        for stmt in node.body:
            self.visit(stmt)

    def block(self, body: list[ast.stmt], definite: bool) -> None:
        """Statements that run only if ``definite`` (and the code around them runs)."""
        saved = self.definite
        self.definite = saved and definite
        for stmt in body:
            self.visit(stmt)
        self.definite = saved

    def confirm(self, stmt: ast.stmt, branches: list[list[ast.stmt]]) -> None:
        """Mark the names stored on every branch of ``stmt`` as surely stored."""
        if not self.definite:
            return
        stored = [_StoredNames.of(body) for body in branches]
        for name in sorted(set.intersection(*stored) if stored else set()):
            self.emit("store", name, stmt, binding="confirm")

    # -- definitions and imports ----------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.define(node, summarize_scope(node))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        scope = summarize_scope(node)
        scope.mutating_methods = mutating_methods(node)
        self.define(node, scope)

    def define(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, scope: ScopeSummary
    ) -> None:
        """A store bound to the definition (its source with decorators is replayed)."""
        start = min([d.lineno for d in node.decorator_list] + [node.lineno])
        source = "\n".join(self.lines[start - 1 : node.end_lineno])
        scope.generator = is_generator_function(node)
        scope.draws_random = draws_random(node)
        # exec/eval/globals() in a body act where it is called: linking reports them
        # in the steps that use the definition.
        scope.dynamic[:] = [(what, line + self.offset) for what, line in scope.dynamic]
        line = node.lineno + self.offset
        definition = Definition(node.name, source, scope, self.code.index, line)
        self.emit("store", node.name, node, binding=definition)

    def visit_Import(self, node: ast.Import) -> None:
        self.imported(node, [_bound_name(alias) for alias in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.names[0].name == "*":  # always alone; the names it binds are unknown here
            star = Import((), ast.unparse(node), self.code.index, node.lineno + self.offset)
            self.emit("star", node.module or "", node, binding=star)
        else:
            self.imported(node, [_bound_name(alias) for alias in node.names])

    def imported(self, node: ast.Import | ast.ImportFrom, names: list[str]) -> None:
        imp = Import(tuple(names), ast.unparse(node), self.code.index, node.lineno + self.offset)
        for name in names:
            self.emit("store", name, node, binding=imp)

    # -- assignments and deletions --------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        shared = is_alias_value(node.value)
        made_by, source = value_origin(node.value)
        held = held_names(node.value)
        path = path_value(node.value)
        for target in node.targets:
            _Stores(self, shared, made_by, source, held, path).visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            made_by, source = value_origin(node.value)
            _Stores(self, is_alias_value(node.value), made_by, source).visit(node.target)
        if node.simple == 0 or node.value is not None:
            self.visit(node.annotation)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):  # ``x += v`` reads x, then binds it again
            self.emit("load", node.target.id, node)
            self.emit("store", node.target.id, node)
        else:
            self.changed_in_place(node.target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            _Deletes(self).visit(target)

    def changed_in_place(self, target: ast.Attribute | ast.Subscript) -> None:
        """``x[i] = …``, ``x.a = …``, ``del x[i]``, ``x.a += …``: x changes in place."""
        if isinstance(target, ast.Subscript):  # its index is evaluated first
            self.visit(target.slice)
        self.visit(target.value)
        name = root_name(target)
        if name:
            self.emit("mutate", name, target, alias=through_element(target.value))
        elif is_globals_call(target.value):
            self.dynamic("globals", target.lineno + self.offset)

    # -- control flow ---------------------------------------------------------------

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        if isinstance(node.iter, ast.Name):  # iterating advances an iterator
            self.emit("use", node.iter.id, node.iter)
        # Inside the body the loop variable is certainly bound; after the loop it is
        # only maybe (an empty iterable leaves the earlier value).
        _Stores(self, True).visit(node.target)
        self.block(node.body, False)
        self.block(node.orelse, False)
        for sub in ast.walk(node.target):
            if isinstance(sub, ast.Name):
                self.emit("store", sub.id, sub, binding="demote")

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> None:
        self.visit(node.test)
        self.block(node.body, False)
        self.block(node.orelse, False)

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        self.block(node.body, False)
        self.block(node.orelse, False)
        self.confirm(node, [node.body, node.orelse])

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                made_by, source = value_origin(item.context_expr)
                _Stores(self, True, made_by, source).visit(item.optional_vars)
        self.block(node.body, True)

    visit_AsyncWith = visit_With

    def visit_Try(self, node: ast.Try | ast.TryStar) -> None:
        self.block(node.body, False)
        for handler in node.handlers:
            if handler.type is not None:
                self.visit(handler.type)
            if handler.name:
                self.emit("store", handler.name, handler, definite=False)
            self.block(handler.body, False)
            if handler.name:  # Python unbinds ``except … as e`` when the handler ends
                self.emit("del", handler.name, handler, definite=False)
        self.block(node.orelse, False)
        self.block(node.finalbody, True)
        self.confirm(node, [node.body + node.orelse] + [h.body for h in node.handlers])

    visit_TryStar = visit_Try

    def visit_Match(self, node: ast.Match) -> None:
        self.visit(node.subject)
        for case in node.cases:
            saved = self.definite
            self.definite = False
            # Breadth first: the names the pattern binds, the values (``Color.RED``) and
            # classes (``Point(…)``) it reads.
            for sub in ast.walk(case.pattern):
                bound = getattr(sub, "name", None) or getattr(sub, "rest", None)
                if isinstance(bound, str):
                    self.emit("store", bound, case.pattern)
                if isinstance(sub, ast.expr):
                    self.visit(sub)
            if case.guard is not None:
                self.visit(case.guard)
            self.definite = saved
            self.block(case.body, False)

    # -- expressions ----------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):  # stores and deletions belong to their statement
            self.emit("load", node.id, node)

    def nested_scope(
        self, node: ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
    ) -> None:
        # A lambda's body may run at once (df.apply(lambda …)): treat its globals as read here.
        scope = summarize_scope(node)
        for what, line in scope.dynamic:
            self.dynamic(what, line + self.offset)
        walrus, read_first = walrus_targets(node)
        for name in sorted((scope.free - walrus) | read_first):
            self.emit("load", name, node)
        if draws_random(node):
            self.emit("rng", "draw", node)
        for name in sorted(scope.global_mutations):
            self.emit("mutate", name, node, alias=False)
        for name in sorted(walrus):  # bound here, unless the comprehension is empty
            self.emit("store", name, node, definite=False)

    visit_Lambda = visit_ListComp = visit_SetComp = visit_DictComp = nested_scope
    visit_GeneratorExp = nested_scope

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.emit("store", node.target.id, node.target, definite=False)

    def visit_Call(self, node: ast.Call) -> None:
        self.visit(node.func)
        for arg in node.args:
            self.visit(arg)
        for kw in node.keywords:
            self.visit(kw.value)
        self.call_effects(node)

    def call_effects(self, node: ast.Call) -> None:
        """What a call does once its arguments are evaluated."""
        func = node.func
        method = func if isinstance(func, ast.Attribute) else None  # ``obj.method(…)``
        rng = rng_effect(node)
        if rng == "seed":
            names = sorted({n.id for n in ast.walk(node)
                            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})
            self.emit("rng", "seed", node, binding=(ast.unparse(node), tuple(names)))
        elif rng == "draw":
            self.emit("rng", "draw", node)
        # Objects whose methods are called or that are handed to a call: a generator or
        # iterator among them advances (linking decides which names hold one).
        receiver = root_name(method.value) if method else None
        if receiver is not None and method:
            self.emit("use", receiver, node, method=method.attr)
        for arg in [*node.args, *(kw.value for kw in node.keywords)]:
            value = arg.value if isinstance(arg, ast.Starred) else arg
            if isinstance(value, ast.Name):
                self.emit("use", value.id, node)
        for effect in file_effects(node):
            self.emit("file", effect.kind, node, binding=effect.path)
        mutated = is_mutating_call(node)
        if mutated:
            obj = method.value if method else node.args[0]
            self.emit("mutate", mutated, node, alias=through_element(obj))
        if isinstance(func, ast.Name):
            self.named_call(node, func.id)
        elif method and is_globals_call(method.value) and method.attr in _GLOBALS_WRITERS:
            self.dynamic("globals", node.lineno + self.offset)
        if (
            method
            and method.attr in ("system", "getoutput", "run_line_magic")
            and isinstance(method.value, ast.Call)
            and isinstance(method.value.func, ast.Name)
            and method.value.func.id == "get_ipython"
        ):
            self.ipython_call(node, method.attr)

    def named_call(self, node: ast.Call, name: str) -> None:
        """``f(a, k=b)``: linking follows it to a notebook function, if ``f`` is one."""
        if name in ("exec", "eval"):
            self.dynamic(name, node.lineno + self.offset)
        positional = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                break  # later positions are unknown
            positional.append(root_name(arg))
        keywords = tuple((kw.arg, root_name(kw.value)) for kw in node.keywords if kw.arg)
        self.emit("call", name, node, args=tuple(positional), keywords=keywords)

    def ipython_call(self, node: ast.Call, method: str) -> None:
        """``!cmd`` and line magics: IPython expands ``$name`` and ``{expr}`` in them."""
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                for name in sorted(names_in_template(arg.value)):
                    self.emit("load", name, node)
        magic = [a.value for a in node.args if isinstance(a, ast.Constant)]
        python_magic = len(magic) == 2 and magic[0] in PYTHON_LINE_MAGICS
        if method == "run_line_magic" and python_magic:  # %time, %timeit, %prun run Python
            for stmt in magic_statements(str(magic[1]), node.lineno):
                self.visit(stmt)


class _Stores(ast.NodeVisitor):
    """One target of ``=``, ``for`` or ``with … as``, bound to a value.

    A name is stored with what is known of the value; unpacking stores each element (an
    element is not the whole value); an attribute or an item changes its object.
    """

    def __init__(
        self, scanner: _EventScanner, alias: bool, made_by: str | None = None,
        source: str | None = None, shares: tuple[str, ...] = (),
        path: tuple[object, ...] | None = None,
    ) -> None:
        self.scanner = scanner
        self.alias = alias
        self.value = {"made_by": made_by, "source": source, "shares": shares, "path": path}

    def visit_Name(self, node: ast.Name) -> None:
        self.scanner.emit("store", node.id, node, alias=self.alias, **self.value)

    def visit_Tuple(self, node: ast.Tuple | ast.List) -> None:
        for elt in node.elts:
            _Stores(self.scanner, self.alias).visit(elt)

    visit_List = visit_Tuple

    def visit_Starred(self, node: ast.Starred) -> None:
        _Stores(self.scanner, self.alias).visit(node.value)

    def visit_Attribute(self, node: ast.Attribute | ast.Subscript) -> None:
        self.scanner.changed_in_place(node)

    visit_Subscript = visit_Attribute


class _Deletes(ast.NodeVisitor):
    """One target of ``del``: a name is unbound, an attribute or an item changes its object.

    Of a parenthesized ``del (a, b)`` only the names directly inside are seen.
    """

    def __init__(self, scanner: _EventScanner) -> None:
        self.scanner = scanner

    def visit_Name(self, node: ast.Name) -> None:
        self.scanner.emit("del", node.id, node)

    def visit_Tuple(self, node: ast.Tuple | ast.List) -> None:
        for elt in node.elts:
            if isinstance(elt, ast.Name):
                self.visit_Name(elt)

    visit_List = visit_Tuple

    def visit_Attribute(self, node: ast.Attribute | ast.Subscript) -> None:
        self.scanner.changed_in_place(node)

    visit_Subscript = visit_Attribute


class _StoredNames(ast.NodeVisitor):
    """The names statements bind anywhere inside them: assigned, defined or imported."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    @classmethod
    def of(cls, body: list[ast.stmt]) -> set[str]:
        collector = cls()
        for stmt in body:
            collector.visit(stmt)
        return collector.names

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.names.add(node.id)

    def visit_FunctionDef(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> None:
        self.names.add(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.names.update(_bound_name(alias) for alias in node.names)

    visit_ImportFrom = visit_Import
