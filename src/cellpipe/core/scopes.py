"""Name scoping of code that runs later: functions, lambdas, classes, comprehensions.

A function body does not run where it is defined; what matters is which global names it
will read, write or mutate when called. :func:`summarize_scope` answers that for any
scope node, following Python's rules (locals are decided per scope; ``global`` and
``nonlocal``; comprehension variables are local; class bodies are invisible to methods).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

# Methods that change their receiver in place. Deliberately broad: a false positive costs
# an extra export, a miss breaks the contract.
MUTATING_METHODS = frozenset(
    {
        "append", "extend", "insert", "remove", "pop", "popitem", "clear", "update",
        "setdefault", "sort", "reverse", "add", "discard", "difference_update",
        "intersection_update", "symmetric_difference_update", "appendleft", "extendleft",
        "popleft", "rotate", "fit", "partial_fit", "fit_transform", "fit_predict",
        "set_params", "set_output", "resize", "fill", "itemset", "setflags", "put", "sort_index",
        "__setitem__", "__delitem__", "write", "writelines", "seek", "truncate",
        "load_state_dict", "train", "eval", "step", "zero_grad", "requires_grad_",
        "set_index_inplace", "set_axis_inplace", "insert_column", "compile", "build",
    }
)
# Functions that change their first argument in place (``np.random.shuffle(x)``).
MUTATING_FUNCTIONS = frozenset({"shuffle", "copyto", "setattr", "delattr", "heappush",
                                "heappop", "heapify", "heapreplace", "heappushpop", "place",
                                "putmask", "fill_diagonal"})


def root_name(node: ast.expr) -> str | None:
    """Return ``x`` for ``x``, ``x.a.b``, ``x[0].c``, ``x.f().g`` is not a root (None)."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def is_mutating_call(call: ast.Call) -> str | None:
    """Return the name a call changes in place, or None.

    ``x.append(1)``, ``df.fillna(0, inplace=True)``, ``t.add_(1)`` (the trailing-underscore
    convention of in-place tensor methods), ``np.random.shuffle(x)``.
    """
    func = call.func
    if isinstance(func, ast.Attribute):
        attr = func.attr
        inplace = any(
            kw.arg == "inplace" and not (isinstance(kw.value, ast.Constant) and not kw.value.value)
            for kw in call.keywords
        )
        if (
            attr in MUTATING_METHODS
            or inplace
            or (attr.endswith("_") and not attr.endswith("__") and not attr.startswith("_"))
        ):
            return root_name(func.value)
        if attr in MUTATING_FUNCTIONS and call.args:
            return root_name(call.args[0])
    elif isinstance(func, ast.Name) and func.id in MUTATING_FUNCTIONS and call.args:
        return root_name(call.args[0])
    return None


@dataclass
class ScopeSummary:
    """What a scope does to global names when it runs.

    Attributes:
        free: Global names it may read (including names of other functions it calls).
        global_writes: Global names it rebinds (``global x; x = …``).
        global_mutations: Global names it changes in place.
        param_mutations: Positions of parameters it changes in place (functions only).
        dynamic: Lines using exec/eval/globals() inside the scope.
        params: Parameter names, positional ones first (functions only).
        positional: How many of ``params`` can be passed by position.
        param_passes: ``(callee, slot, index)``: parameter ``index`` is passed to the
            global function ``callee`` at ``slot`` (a position or a keyword), so the
            callee may change it in place; linking resolves ``callee``.
        generator: A function whose calls return generators (it yields).
        mutating_methods: A class's methods that change their instance (``self.n += 1``,
            ``self.items.append(…)``, or calling such a method of ``self``).
        draws_random: It draws from (or seeds) the global random state when called.
    """

    free: set[str] = field(default_factory=set)
    global_writes: set[str] = field(default_factory=set)
    global_mutations: set[str] = field(default_factory=set)
    param_mutations: set[int] = field(default_factory=set)
    dynamic: list[tuple[str, int]] = field(default_factory=list)
    params: tuple[str, ...] = ()
    positional: int = 0
    param_passes: set[tuple[str, int | str, int]] = field(default_factory=set)
    generator: bool = False
    draws_random: bool = False
    mutating_methods: frozenset[str] = frozenset()


_SCOPE_NODES = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
)


def summarize_scope(node: ast.AST) -> ScopeSummary:
    """Summarize a function, lambda, class or comprehension as seen from the module.

    The names a scope reads that are not its own (nor an enclosing function's) are global
    reads; ``global`` declarations make writes global.
    """
    summary = ScopeSummary()
    free, writes, mutations, params = _analyze(node, enclosing_locals=frozenset(), summary=summary)
    # Decorators, defaults and base classes are evaluated where the definition runs.
    definition_time = _Collector()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        definition_time._defn(node)
    elif isinstance(node, ast.Lambda):
        definition_time.visit_Lambda(node)
    elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        definition_time.visit(node.generators[0].iter)
    free |= definition_time.loads
    summary.free = free
    summary.global_writes = writes
    summary.global_mutations = mutations
    summary.param_mutations = params
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        summary.params = tuple(_params(node.args))
        summary.positional = len(node.args.posonlyargs) + len(node.args.args)
        summary.param_passes = _param_passes(node, summary.params)
    return summary


def _param_passes(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, params: tuple[str, ...]
) -> set[tuple[str, int | str, int]]:
    """Where a function passes its own parameters to other global functions by name."""
    collector = _Collector()
    collector.bound.update(params)
    for stmt in [node.body] if isinstance(node, ast.Lambda) else node.body:
        collector.visit(stmt)
    local = collector.bound - collector.globals - collector.nonlocals
    passes: set[tuple[str, int | str, int]] = set()
    for call in collector.calls:
        if not isinstance(call.func, ast.Name) or call.func.id in local:
            continue
        slots: list[tuple[int | str, ast.expr]] = []
        for position, arg in enumerate(call.args):
            if isinstance(arg, ast.Starred):
                break  # later positions are unknown
            slots.append((position, arg))
        slots += [(kw.arg, kw.value) for kw in call.keywords if kw.arg is not None]
        for slot, value in slots:
            name = root_name(value)
            if name is not None and name in params:
                passes.add((call.func.id, slot, params.index(name)))
    return passes


def _params(args: ast.arguments) -> list[str]:
    names = [a.arg for a in (*args.posonlyargs, *args.args)]
    rest = [a.arg for a in args.kwonlyargs]
    if args.vararg:
        rest.append(args.vararg.arg)
    if args.kwarg:
        rest.append(args.kwarg.arg)
    return names + rest


class _Collector(ast.NodeVisitor):
    """Collect one scope's bindings, loads, declarations and nested scopes (not their insides)."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.loads: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.mutated: set[str] = set()
        self.nested: list[ast.AST] = []
        self.dynamic: list[tuple[str, int]] = []
        self.calls: list[ast.Call] = []

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.add(node.id)
        else:
            self.bound.add(node.id)

    def visit_Global(self, node: ast.Global) -> None:
        self.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.nonlocals.update(node.names)

    def _defn(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.bound.add(node.name)
        for deco in node.decorator_list:
            self.visit(deco)
        if isinstance(node, ast.ClassDef):
            for base in (*node.bases, *(k.value for k in node.keywords)):
                self.visit(base)
        else:
            for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d)):
                self.visit(default)
        self.nested.append(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _defn

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d)):
            self.visit(default)
        self.nested.append(node)

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
    ) -> None:
        # The first iterable is evaluated in the enclosing scope.
        self.visit(node.generators[0].iter)
        self.nested.append(node)
        # Walrus targets inside a comprehension bind in the enclosing scope.
        for sub in ast.walk(node):
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
                self.bound.add(sub.target.id)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.bound.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.bound.add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.bound.add(node.rest)
        self.generic_visit(node)

    def _store_target(self, target: ast.expr) -> None:
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            name = root_name(target)
            if name:
                self.mutated.add(name)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            for sub in ast.walk(target):
                if isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(
                    sub.ctx, ast.Store
                ):
                    self._store_target(sub)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._store_target(node.target)
        if isinstance(node.target, ast.Name):
            self.loads.add(node.target.id)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._store_target(target)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = is_mutating_call(node)
        if name:
            self.mutated.add(name)
        if isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval", "globals"):
            self.dynamic.append((node.func.id, node.lineno))
        self.calls.append(node)
        self.generic_visit(node)


def _analyze(
    node: ast.AST, enclosing_locals: frozenset[str], summary: ScopeSummary
) -> tuple[set[str], set[str], set[str], set[int]]:
    """Return (free names, global writes, global mutations, mutated parameter positions)."""
    collector = _Collector()
    params: list[str] = []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        params = _params(node.args)
        collector.bound.update(params)
        for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                    node.args.vararg, node.args.kwarg):
            if arg is not None and arg.annotation is not None and not isinstance(node, ast.Lambda):
                collector.visit(arg.annotation)
        if not isinstance(node, ast.Lambda) and node.returns is not None:
            collector.visit(node.returns)
        body: list[ast.AST] = [node.body] if isinstance(node, ast.Lambda) else list(node.body)
    elif isinstance(node, ast.ClassDef):
        body = list(node.body)
    elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        for i, gen in enumerate(node.generators):
            for sub in ast.walk(gen.target):
                if isinstance(sub, ast.Name):
                    collector.bound.add(sub.id)
            if i > 0:
                collector.visit(gen.iter)
            for cond in gen.ifs:
                collector.visit(cond)
        body = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        # Walrus targets belong to the enclosing scope, not the comprehension.
        walrus = {
            sub.target.id
            for sub in ast.walk(node)
            if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name)
        }
        for stmt in body:
            collector.visit(stmt)
        collector.bound -= walrus
        body = []
    else:  # pragma: no cover - callers pass scope nodes only
        raise TypeError(node)
    for stmt in body:
        collector.visit(stmt)
    summary.dynamic.extend(collector.dynamic)

    is_class = isinstance(node, ast.ClassDef)
    declared_global = collector.globals
    local = (collector.bound - declared_global) - collector.nonlocals
    # Names visible from nested function scopes: this scope's locals (not a class's).
    visible_to_nested = enclosing_locals | (frozenset() if is_class else frozenset(local))

    free: set[str] = set()
    for name in collector.loads:
        if name in declared_global or (name not in local and name not in enclosing_locals):
            free.add(name)
    if is_class:
        # A class-body name read before the body binds it is looked up in the globals
        # (``class C: x = x + 1``); decided statement by statement.
        seen: set[str] = set()
        for stmt in body:
            part = _Collector()
            part.visit(stmt)
            free |= (part.loads - seen) & local
            seen |= part.bound
    writes = {n for n in collector.bound if n in declared_global}
    mutations = {
        n for n in collector.mutated
        if n in declared_global or (n not in local and n not in enclosing_locals)
    }
    param_mutations = {i for i, p in enumerate(params) if p in collector.mutated and p in local}

    for child in collector.nested:
        child_free, child_writes, child_mut, _ = _analyze(child, visible_to_nested, summary)
        free |= {n for n in child_free if n in declared_global or n not in local or is_class}
        writes |= child_writes
        mutations |= {n for n in child_mut if n in declared_global or n not in local}
    return free, writes, mutations, param_mutations


def mutating_methods(node: ast.ClassDef) -> frozenset[str]:
    """The methods of a class that change ``self`` (directly or through another method)."""
    methods = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    changing: set[str] = set()
    calls: dict[str, set[str]] = {}
    for method in methods:
        if not method.args.args:
            continue
        summary = summarize_scope(method)
        if 0 in summary.param_mutations:
            changing.add(method.name)
        own = method.args.args[0].arg
        calls[method.name] = {
            sub.func.attr for sub in ast.walk(method)
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
            and isinstance(sub.func.value, ast.Name) and sub.func.value.id == own
        }
    grown = True
    while grown:  # a method calling a changing method of self changes it too
        grown = False
        for name, called in calls.items():
            if name not in changing and called & changing:
                changing.add(name)
                grown = True
    return frozenset(changing)
