"""Static analysis of one cell: what it reads, writes, mutates, imports and defines, in order.

Each cell is transformed from IPython syntax to Python (only when it is not plain Python,
so plain notebooks never import IPython), parsed once, and reduced to a list of
:class:`Event` in execution order. Linking (:mod:`cellpipe.core.pipeline`) replays those
events per step against what earlier steps bound: one pass over the notebook, no
re-parsing per pair of steps.
"""

from __future__ import annotations

import ast
import re
from typing import cast

from cellpipe.core.cell_events import CellCode as CellCode
from cellpipe.core.cell_events import Definition as Definition
from cellpipe.core.cell_events import Event as Event
from cellpipe.core.cell_events import Import as Import
from cellpipe.core.files import file_effects
from cellpipe.core.ipython_source import PYTHON_LINE_MAGICS as PYTHON_LINE_MAGICS
from cellpipe.core.ipython_source import blank_installs as blank_installs
from cellpipe.core.ipython_source import imported_modules as imported_modules
from cellpipe.core.ipython_source import install_arguments as install_arguments
from cellpipe.core.ipython_source import magic_statements as magic_statements
from cellpipe.core.ipython_source import parse as parse
from cellpipe.core.ipython_source import to_python as to_python
from cellpipe.core.rng import draws_random as draws_random
from cellpipe.core.rng import is_generator_function as is_generator_function
from cellpipe.core.rng import is_seed as is_seed
from cellpipe.core.rng import process_bound_maker as process_bound_maker
from cellpipe.core.rng import rng_effect as rng_effect
from cellpipe.core.rng import stateful_maker as stateful_maker
from cellpipe.core.scopes import (
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

# Line magics that configure the session rather than compute: replayed in later steps.
_SETUP_MAGICS = {"matplotlib", "config", "load_ext", "reload_ext", "env", "autoreload",
                 "precision", "cd", "set_env"}

# Calls that change the session rather than a variable (working directory, import path,
# environment, display options, warnings, logging, plotting style): replayed, in notebook
# order, at the start of every later step. Seeds are not among them: the global random
# state travels between steps as a value (see :data:`RANDOM_STATE`).
_SETUP_CALLS = re.compile(
    r"^(warnings\.(filterwarnings|simplefilter|resetwarnings)|\w+\.set_option|"
    r"\w+\.reset_option|(np|numpy)\.(set_printoptions|seterr)|"
    r"(plt|matplotlib\.pyplot)\.(style\.use|rc|rcdefaults|rcParams\.update|ion|ioff)|"
    r"(matplotlib|mpl)\.(use|rc|rcParams\.update)|"
    r"sns\.set(_theme|_style|_context|_palette)?|seaborn\.set\w*|"
    r"logging\.(basicConfig|disable|captureWarnings)|logging\.getLogger\([^)]*\)\.setLevel|"
    r"os\.(chdir|putenv|unsetenv)|os\.environ\.(update|setdefault|pop)|"
    r"sys\.path\.(append|insert|extend)|sys\.setrecursionlimit|"
    r"tf\.random\.set_seed|tensorflow\.random\.set_seed|pd\.options\.\w+|"
    r"(sklearn\.)?set_config|tqdm\.pandas|torch\.set_default_dtype|torch\.set_num_threads|"
    r"torch\.set_printoptions|pd\.set_eng_float_format)$"
)

# The hidden value that carries the global random states (numpy's legacy RandomState,
# Python's ``random``, torch's CPU generator) from each step that draws to the next.
RANDOM_STATE = "(random state)"

# The hidden value a dynamic step (exec, globals()) leaves: the names it exported, so a
# later dynamic step can receive them all.
DYNAMIC_NAMES = "(dynamic names)"

def scan_cell(index: int, source: str, line_offset: int = 0) -> CellCode:
    """Transform, parse and scan one code cell."""
    runnable, packages, notes = blank_installs(source)
    python = to_python(runnable)
    code = CellCode(
        index=index, python=python, source=runnable, line_offset=line_offset,
        requirements=packages,
    )
    code.notes.extend((c, m, ln + line_offset) for c, m, ln in notes)
    try:
        tree = parse(python)
    except SyntaxError as exc:
        code.syntax_error = (exc.msg, (exc.lineno or 1) + line_offset)
        code.only_shared = False
        return code
    code.tree = tree
    _Scanner(code, python, line_offset).scan(tree)
    return code


class _Scanner:
    """Turn a module's top-level statements into events, in execution order."""

    def __init__(self, code: CellCode, python: str, offset: int) -> None:
        self.code = code
        self.lines = python.split("\n")
        self.offset = offset
        self.definite = True

    def emit(self, kind: str, name: str, node: ast.AST, **extra: object) -> None:
        line = getattr(node, "lineno", 1) + self.offset
        self.code.events.append(
            Event(kind, name, line, definite=self.definite and extra.pop("definite", True), **extra)  # type: ignore[arg-type]
        )

    def scan(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            shared = self.statement_is_shared(stmt)
            if not shared:
                self.code.only_shared = False
            self.stmt(stmt)

    # -- classification -------------------------------------------------------------

    def statement_is_shared(self, stmt: ast.stmt) -> bool:
        """Imports, definitions, docstrings, session setup and seeds are not computation."""
        if self._shared(stmt, defined=set()):
            if is_seed(stmt):
                return True  # the random state is a value: see RANDOM_STATE
            if not isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                     ast.AsyncFunctionDef, ast.ClassDef, ast.Pass, ast.Expr))\
                    or self.is_setup(stmt):
                self.code.setup.append((ast.unparse(stmt), free_names(stmt)))
            return True
        return False

    def _shared(self, stmt: ast.stmt, defined: set[str]) -> bool:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(stmt.name)
            return True
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
            return True
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            return True
        if self.is_setup(stmt) or is_seed(stmt):
            return True
        if isinstance(stmt, ast.Delete):  # del of a helper defined just above
            return all(isinstance(t, ast.Name) and t.id in defined for t in stmt.targets)
        if isinstance(stmt, (ast.If, ast.Try)):  # e.g. try: import x / except: …
            if isinstance(stmt, ast.If) and any(
                isinstance(n, ast.NamedExpr) for n in ast.walk(stmt.test)
            ):
                return False  # the test binds a name: computation
            bodies = [stmt.body, stmt.orelse]
            if isinstance(stmt, ast.Try):
                bodies += [h.body for h in stmt.handlers] + [stmt.finalbody]
            return all(self._shared(s, defined) for body in bodies for s in body)
        return False

    @staticmethod
    def is_setup(stmt: ast.stmt) -> bool:
        call = None
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            call = stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, (ast.Attribute, ast.Subscript)):
                dotted = ast.unparse(target.value if isinstance(target, ast.Subscript) else target)
                return bool(
                    re.match(
                        r"^(pd\.options\.|pandas\.options\.|os\.environ|plt\.rcParams|"
                        r"(matplotlib|mpl)\.rcParams|sys\.path$|np\.random\.seed)", dotted
                    )
                )
            return False
        if call is None:
            return False
        func = ast.unparse(call.func)
        if func == "get_ipython().run_line_magic" and call.args:
            first = call.args[0]
            return isinstance(first, ast.Constant) and first.value in _SETUP_MAGICS
        if func.startswith("get_ipython().") and func.split(".")[1] in (
            "register_magic_function", "register_magics", "extension_manager", "magics_manager"
        ):
            return True
        return bool(_SETUP_CALLS.match(func))

    # -- statements -----------------------------------------------------------------

    def block(self, body: list[ast.stmt], definite: bool) -> None:
        saved = self.definite
        self.definite = saved and definite
        for stmt in body:
            self.stmt(stmt)
        self.definite = saved

    def definite_in_all(self, branches: list[list[ast.stmt]]) -> set[str]:
        """Names stored (at this level) on every branch: those stores are definite."""
        sets = []
        for body in branches:
            names: set[str] = set()
            for stmt in body:
                for node in ast.walk(stmt):
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        names.add(node.id)
                    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        names.add(node.name)
                    elif isinstance(node, (ast.Import, ast.ImportFrom)):
                        names.update(a.asname or a.name.split(".")[0] for a in node.names)
            sets.append(names)
        return set.intersection(*sets) if sets else set()

    def stmt(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([d.lineno for d in stmt.decorator_list] + [stmt.lineno])
            source = "\n".join(self.lines[start - 1 : stmt.end_lineno])
            scope = summarize_scope(stmt)
            scope.generator = is_generator_function(stmt)
            scope.draws_random = draws_random(stmt)
            if isinstance(stmt, ast.ClassDef):
                scope.mutating_methods = mutating_methods(stmt)
            # exec/eval/globals() in a body act where it is called: linking reports them
            # in the steps that use the definition.
            scope.dynamic[:] = [(what, line + self.offset) for what, line in scope.dynamic]
            line = stmt.lineno + self.offset
            definition = Definition(stmt.name, source, scope, self.code.index, line)
            self.emit("store", stmt.name, stmt, binding=definition)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            names = []
            for alias in stmt.names:
                if alias.name == "*":
                    star = Import((), ast.unparse(stmt), self.code.index, stmt.lineno + self.offset)
                    self.emit("star", getattr(stmt, "module", "") or "", stmt, binding=star)
                else:
                    names.append(alias.asname or alias.name.split(".")[0])
            if names:
                line = stmt.lineno + self.offset
                imp = Import(tuple(names), ast.unparse(stmt), self.code.index, line)
                for name in names:
                    self.emit("store", name, stmt, binding=imp)
        elif isinstance(stmt, ast.Assign):
            self.expr(stmt.value)
            shared = is_alias_value(stmt.value)
            origin = value_origin(stmt.value)
            held = held_names(stmt.value)
            path = path_value(stmt.value)
            for target in stmt.targets:
                self.target(target, shared, *origin, shares=held, path=path)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self.expr(stmt.value)
                self.target(stmt.target, is_alias_value(stmt.value), *value_origin(stmt.value))
            if stmt.simple == 0 or stmt.value is not None:
                self.expr(stmt.annotation)
        elif isinstance(stmt, ast.AugAssign):
            self.expr(stmt.value)
            if isinstance(stmt.target, ast.Name):
                self.emit("load", stmt.target.id, stmt)
                self.emit("store", stmt.target.id, stmt)
            else:
                self.mutation_target(stmt.target)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    self.emit("del", target.id, target)
                elif isinstance(target, (ast.Tuple, ast.List)):
                    for elt in target.elts:
                        if isinstance(elt, ast.Name):
                            self.emit("del", elt.id, elt)
                else:
                    self.mutation_target(target)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self.expr(stmt.iter)
            if isinstance(stmt.iter, ast.Name):  # iterating advances an iterator
                self.emit("use", stmt.iter.id, stmt.iter)
            # Inside the body the loop variable is certainly bound; after the loop it is
            # only maybe (an empty iterable leaves the earlier value).
            self.target(stmt.target, True)
            self.block(stmt.body, False)
            self.block(stmt.orelse, False)
            for node in ast.walk(stmt.target):
                if isinstance(node, ast.Name):
                    self.emit("store", node.id, node, binding="demote")
        elif isinstance(stmt, ast.While):
            self.expr(stmt.test)
            self.block(stmt.body, False)
            self.block(stmt.orelse, False)
        elif isinstance(stmt, ast.If):
            self.expr(stmt.test)
            self.block(stmt.body, False)
            self.block(stmt.orelse, False)
            self.confirm(stmt, self.definite_in_all([stmt.body, stmt.orelse]))
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars, True, *value_origin(item.context_expr))
            self.block(stmt.body, True)
        elif isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            try_stmt = cast(ast.Try, stmt)  # TryStar (3.11+) has the same fields
            self.block(try_stmt.body, False)
            for handler in try_stmt.handlers:
                if handler.type is not None:
                    self.expr(handler.type)
                if handler.name:
                    self.emit("store", handler.name, handler, definite=False)
                self.block(handler.body, False)
                if handler.name:  # Python unbinds ``except … as e`` when the handler ends
                    self.emit("del", handler.name, handler, definite=False)
            self.block(try_stmt.orelse, False)
            self.block(try_stmt.finalbody, True)
            branches = [try_stmt.body + try_stmt.orelse] + [h.body for h in try_stmt.handlers]
            self.confirm(stmt, self.definite_in_all(branches))
        elif isinstance(stmt, ast.Match):
            self.expr(stmt.subject)
            for case in stmt.cases:
                saved = self.definite
                self.definite = False
                for node in ast.walk(case.pattern):
                    bound = getattr(node, "name", None) or getattr(node, "rest", None)
                    if isinstance(bound, str):
                        self.emit("store", bound, case.pattern)
                    if isinstance(node, ast.expr):
                        self.expr(node)
                if case.guard is not None:
                    self.expr(case.guard)
                self.definite = saved
                self.block(case.body, False)
        elif isinstance(stmt, ast.Expr):
            self.expr(stmt.value)
        elif isinstance(stmt, (ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue)):
            pass
        else:  # Return, Raise, Assert, … : just the names they read
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def confirm(self, stmt: ast.stmt, names: set[str]) -> None:
        """Mark stores made on every branch of ``stmt`` as definite."""
        if not self.definite:
            return
        for name in sorted(names):
            self.emit("store", name, stmt, binding="confirm")

    def target(
        self, target: ast.expr, alias: bool, made_by: str | None = None,
        source: str | None = None, shares: tuple[str, ...] = (),
        path: tuple[object, ...] | None = None,
    ) -> None:
        if isinstance(target, ast.Name):
            self.emit("store", target.id, target, alias=alias, made_by=made_by, source=source,
                      shares=shares, path=path)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:  # an unpacked element is not the whole made value
                self.target(elt, alias)
        elif isinstance(target, ast.Starred):
            self.target(target.value, alias)
        else:
            self.mutation_target(target)

    def mutation_target(self, target: ast.expr) -> None:
        """``x[i] = …``, ``x.a = …``, ``del x[i]``, ``x.a += …``: x changes in place."""
        if isinstance(target, ast.Subscript):
            self.expr(target.slice)
        inner = target.value if isinstance(target, (ast.Subscript, ast.Attribute)) else target
        self.expr(inner)
        name = root_name(target)
        if name:
            self.emit("mutate", name, target, alias=through_element(inner))
        elif is_globals_call(inner):
            self.dynamic("globals", target.lineno + self.offset)

    # -- expressions ----------------------------------------------------------------

    def expr(self, node: ast.expr) -> None:
        """Emit loads (and stores of walrus targets, and mutations of calls) in order."""
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.emit("load", node.id, node)
            return
        if isinstance(
            node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
        ):
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
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.emit("store", node.target.id, node.target, definite=False)
            return
        if isinstance(node, ast.Call):
            self.expr(node.func)
            for arg in node.args:
                self.expr(arg)
            for kw in node.keywords:
                self.expr(kw.value)
            self.call(node)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.comprehension):  # pragma: no cover - handled above
                self.expr(child.iter)

    def call(self, node: ast.Call) -> None:
        func = node.func
        rng = rng_effect(node)
        if rng == "seed":
            names = sorted({n.id for n in ast.walk(node)
                            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})
            self.emit("rng", "seed", node, binding=(ast.unparse(node), tuple(names)))
        elif rng == "draw":
            self.emit("rng", "draw", node)
        # Objects whose methods are called or that are handed to a call: a generator or
        # iterator among them advances (linking decides which names hold one).
        receiver = root_name(func.value) if isinstance(func, ast.Attribute) else None
        if receiver is not None and isinstance(func, ast.Attribute):
            self.emit("use", receiver, node, method=func.attr)
        for arg in [*node.args, *(kw.value for kw in node.keywords)]:
            value = arg.value if isinstance(arg, ast.Starred) else arg
            if isinstance(value, ast.Name):
                self.emit("use", value.id, node)
        for effect in file_effects(node):
            self.emit("file", effect.kind, node, binding=effect.path)
        mutated = is_mutating_call(node)
        if mutated:
            obj = func.value if isinstance(func, ast.Attribute) else node.args[0]
            self.emit("mutate", mutated, node, alias=through_element(obj))
        if isinstance(func, ast.Name):
            if func.id in ("exec", "eval"):
                self.dynamic(func.id, node.lineno + self.offset)
            positional = []
            for arg in node.args:
                if isinstance(arg, ast.Starred):
                    break  # later positions are unknown
                positional.append(root_name(arg))
            keywords = tuple((kw.arg, root_name(kw.value)) for kw in node.keywords if kw.arg)
            self.emit("call", func.id, node, args=tuple(positional), keywords=keywords)
        elif (
            isinstance(func, ast.Attribute)
            and is_globals_call(func.value)
            and func.attr in ("update", "__setitem__", "setdefault", "pop", "__delitem__")
        ):
            self.dynamic("globals", node.lineno + self.offset)
        # IPython expands $name and {expr} in shell lines and line magics.
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("system", "getoutput", "run_line_magic")
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
        ):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    for name in sorted(names_in_template(arg.value)):
                        self.emit("load", name, node)
            magic = [a.value for a in node.args if isinstance(a, ast.Constant)]
            python_magic = len(magic) == 2 and magic[0] in PYTHON_LINE_MAGICS
            if func.attr == "run_line_magic" and python_magic:
                for stmt in magic_statements(str(magic[1]), node.lineno):
                    self.stmt(stmt)

    def dynamic(self, what: str, line: int) -> None:
        self.code.events.append(Event("dynamic", what, line))


def free_names(stmt: ast.stmt) -> tuple[str, ...]:
    """Global names a statement reads when replayed on its own (its defs' globals too)."""
    probe = CellCode(index=-1, python="")
    _Scanner(probe, "", 0).stmt(stmt)
    stored = {e.name for e in probe.events if e.kind == "store"}
    names = {e.name for e in probe.events if e.kind == "load"}
    for event in probe.events:
        if isinstance(event.binding, Definition):
            names |= event.binding.scope.free
    return tuple(sorted(names - stored))
