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
from dataclasses import dataclass, field
from typing import cast

from cellpipe.core.files import dotted_name, file_effects, path_template
from cellpipe.core.scopes import (
    ScopeSummary,
    is_mutating_call,
    mutating_methods,
    root_name,
    summarize_scope,
)

_PIP_LINE = re.compile(r"^(\s*)[!%]\s*(?:pip3?|conda|mamba|uv\s+pip)\s+install\b(.*)$")
# ``%cellpipe run`` in a step would start the pipeline from inside itself.
_CELLPIPE_LINE = re.compile(r"^(\s*)%cellpipe\b")
# Cell magics whose body is Python run in the user namespace.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
# Line magics whose argument is Python run in the user namespace (``%timeit f(x)``).
_PYTHON_LINE_MAGICS = {"time", "timeit", "prun"}
_CELL_MAGIC = re.compile(r"^\s*%%(\w+)([^\n]*)(?:\n|$)")
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
# Seeding calls: they set the global random state without reading it.
_SEED_CALLS = re.compile(r"^((np|numpy)\.random\.seed|random\.seed|torch\.(random\.)?manual_seed|"
                         r"torch\.(random\.)?seed)$")
# Modules whose functions draw from (or set) the global random state.
_GLOBAL_RNG_MODULES = frozenset({"np.random", "numpy.random", "random", "npr"})
_RNG_SAFE = frozenset({"default_rng", "RandomState", "Generator", "SeedSequence", "PCG64",
                       "MT19937", "Philox", "SFC64", "BitGenerator", "get_state", "getstate",
                       "Random", "SystemRandom", "get_bit_generator"})
_TORCH_DRAWS = frozenset({"rand", "randn", "randint", "randperm", "normal", "bernoulli",
                          "multinomial", "poisson", "rand_like", "randn_like", "randint_like",
                          "set_rng_state"})
# Constructors of objects that change every time they are used (random generators,
# iterators): a method call on one, passing it to a function, or next() advances it.
_STATEFUL_CALLS = re.compile(
    r"^((np|numpy)\.random\.(default_rng|RandomState|Generator)|random\.Random|"
    r"torch\.Generator|iter|itertools\.\w+|(csv\.)?(reader|DictReader)|enumerate|zip|"
    r"map|filter|reversed|(np|numpy)\.random\.(PCG64|MT19937|Philox|SFC64)|"
    r"(np|numpy)\.nditer)$"
)
# Values that live only in the process that made them: a later step cannot be given one.
_PROCESS_BOUND_CALLS = {
    "open": "an open file", "io.open": "an open file", "gzip.open": "an open file",
    "bz2.open": "an open file", "lzma.open": "an open file", "tarfile.open": "an open file",
    "zipfile.ZipFile": "an open file", "tempfile.TemporaryFile": "an open file",
    "tempfile.NamedTemporaryFile": "an open file", "sqlite3.connect": "a database connection",
    "socket.socket": "a network socket", "threading.Lock": "a thread lock",
    "threading.RLock": "a thread lock", "threading.Thread": "a thread",
    "subprocess.Popen": "a running process", "multiprocessing.Pool": "a process pool",
    "create_engine": "a database engine", "sqlalchemy.create_engine": "a database engine",
}


@dataclass(frozen=True)
class Definition:
    """A function or class defined at the top level of a cell.

    Attributes:
        name: The bound name.
        source: Its source (with decorators), ready to be replayed.
        scope: What it reads, writes and mutates when called.
        cell: Index of the defining cell.
        line: Line of the definition in that cell.
    """

    name: str
    source: str
    scope: ScopeSummary
    cell: int
    line: int


@dataclass(frozen=True)
class Import:
    """An import statement binding ``names``; ``source`` replays it."""

    names: tuple[str, ...]
    source: str
    cell: int
    line: int


@dataclass(frozen=True)
class Event:
    """One effect of a cell's top-level code on the notebook's names, in order.

    ``kind`` is one of ``load``, ``store``, ``del``, ``mutate``, ``call``, ``use``, ``rng``,
    ``file``, ``dynamic``, ``star``. ``file`` events are a read, write, mkdir or chdir
    (``name``) of the path template in ``binding`` (None: a path not known). ``use`` names
    an object whose method is called, that is passed to a call or iterated (it advances if
    it is a generator or an iterator); ``rng`` is a draw from (``name`` ``draw``) or a
    seeding of (``seed``) the global random state, a seed carrying ``binding`` = (statement,
    the names it reads). ``store`` events carry ``binding``: ``value``, or an
    :class:`Import` / :class:`Definition`; ``definite`` is False where the store may not
    happen (a branch, a loop body; a ``demote`` store marks a loop variable as only maybe
    bound after its loop, a ``confirm`` store marks a name bound on every branch); ``alias``
    is True where the stored value may be shared with other names (``d = df``, a loop
    variable). ``mutate`` events carry ``alias`` when the change goes through a container's
    element (``d[0]["x"] = …``). ``call`` events list the root names of positional arguments
    (up to the first ``*args``) and of keyword arguments. ``star`` events carry the
    :class:`Import` to replay.
    """

    kind: str
    name: str
    line: int
    definite: bool = True
    alias: bool = False
    binding: object = None
    args: tuple[str | None, ...] = ()
    keywords: tuple[tuple[str, str | None], ...] = ()
    made_by: str | None = None  # store: the dotted function whose call made the value
    source: str | None = None  # store: the name whose object is bound again (``r = rng``)
    shares: tuple[str, ...] = ()  # store: names whose objects the value holds (``[a, b]``)
    method: str | None = None  # use: the method called on the object
    path: tuple[object, ...] | None = None  # store: the path template the value is


@dataclass
class CellCode:
    """A code cell after transformation and scanning.

    Attributes:
        index: Cell index in the notebook.
        python: The cell's code as Python (IPython syntax transformed, installs removed).
        events: Top-level effects in execution order.
        setup: Statements that configure the session (replayed in later steps), each with
            the global names it reads.
        requirements: Packages named by ``!pip install`` lines.
        source: The cell as a step runs it: IPython syntax kept, install lines blanked.
        only_shared: True when the cell holds only imports, definitions and setup.
        syntax_error: (message, line) when the cell cannot be parsed.
        notes: (code, message, line) findings for lint.
    """

    index: int
    python: str
    source: str = ""
    line_offset: int = 0
    events: list[Event] = field(default_factory=list)
    setup: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    only_shared: bool = True
    syntax_error: tuple[str, int] | None = None
    notes: list[tuple[str, str, int]] = field(default_factory=list)
    tree: ast.Module | None = None


def blank_installs(source: str) -> tuple[str, list[str], list[tuple[str, str, int]]]:
    """Blank ``!pip install`` lines (steps must not reach the network) and ``%cellpipe`` lines.

    Returns:
        (source with install lines replaced by ``pass``, packages named, notes).
    """
    notes: list[tuple[str, str, int]] = []
    packages: list[str] = []
    lines = source.split("\n")
    for number, text in enumerate(lines, start=1):
        control = _CELLPIPE_LINE.match(text)
        if control:
            lines[number - 1] = f"{control.group(1)}pass  # cellpipe: %cellpipe is not run in steps"
            continue
        match = _PIP_LINE.match(text)
        if match:
            args = install_arguments(match.group(2))
            packages.extend(args)
            lines[number - 1] = f"{match.group(1)}pass  # cellpipe: install line not run in steps"
            notes.append(
                (
                    "CP305",
                    f"'{text.strip()}' is environment setup: it is not run inside steps; "
                    f"{', '.join(args) or 'its packages'} join the step images' requirements",
                    number,
                )
            )
    return "\n".join(lines), packages, notes


# pip options that take a value (the value is not a package).
_PIP_VALUE_OPTIONS = frozenset({
    "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
    "-t", "--target", "--prefix", "--root", "--src", "--trusted-host", "--platform",
    "--python-version", "--implementation", "--abi", "--upgrade-strategy", "--progress-bar",
    "--cache-dir", "--log", "--timeout", "--retries", "--proxy", "--config-settings", "-C",
})


def install_arguments(text: str) -> list[str]:
    """The packages of an install line's arguments: quoted specs kept whole, options dropped.

    ``-r FILE`` (``--requirement FILE``) is kept as ``-r FILE``: the file is read, relative
    to the notebook, where requirements are resolved. ``-e PATH`` is kept as the path.
    """
    import shlex

    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote: take the words as they are
        words = text.split()
    found: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        name, eq, value = word.partition("=")
        if word in ("-r", "--requirement") and index + 1 < len(words):
            found.append(f"-r {words[index + 1]}")
            index += 2
            continue
        if eq and name in ("--requirement",):
            found.append(f"-r {value}")
        elif word.startswith("-r") and len(word) > 2 and not word.startswith("-r="):
            found.append(f"-r {word[2:]}")
        elif word in ("-e", "--editable") and index + 1 < len(words):
            found.append(words[index + 1])
            index += 2
            continue
        elif word in _PIP_VALUE_OPTIONS:
            index += 2
            continue
        elif not word.startswith("-") and not word.startswith(("$", "{")):
            found.append(word)
        index += 1
    return found


def imported_modules(source: str) -> list[tuple[str, int]]:
    """Top-level modules a cell imports (absolute imports only), with line numbers, in order.

    What step images must hold and what the notebook has loaded above a step; cells with
    IPython syntax (magics, ``!cmd``) are transformed to Python first.
    """
    try:
        tree = parse(to_python(source))
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module.split(".")[0], node.lineno))
    return sorted(found, key=lambda item: item[1])


def parse(source: str) -> ast.Module:
    """Parse a cell as IPython runs it: top-level ``await`` is allowed (autoawait)."""
    tree = compile(source, "<cell>", "exec",
                   flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    assert isinstance(tree, ast.Module)
    return tree


def to_python(source: str) -> str:
    """Turn a cell's IPython source into Python with the same line numbers.

    Plain Python is returned as is, so notebooks without magics never import IPython.
    """
    text = source
    try:
        parse(text)
        return text
    except SyntaxError:
        pass
    magic = _CELL_MAGIC.match(text)
    if magic and magic.group(1) in _PYTHON_CELL_MAGICS:
        # Keep the body analyzable; the header line becomes a no-op with the same numbering.
        body = text[magic.end() :]
        header = "pass  # %%" + magic.group(1) + magic.group(2)
        if magic.group(1) == "capture" and magic.group(2).split():
            target = [w for w in magic.group(2).split() if not w.startswith("-")]
            if target and target[0].isidentifier():
                header = f"{target[0]} = None  # %%capture {target[0]}"
        return header + "\n" + to_python(body)
    from IPython.core.inputtransformer2 import TransformerManager

    transformed: str = TransformerManager().transform_cell(text)
    return transformed.rstrip("\n")


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


def _names_in_template(text: str) -> set[str]:
    """Names IPython expands in shell lines and magics: ``$name`` and ``{expr}``."""
    names = set(re.findall(r"(?<!\$)\$([A-Za-z_]\w*)", text))
    for expr in re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", text):
        try:
            tree = ast.parse(expr.strip(), mode="eval")
        except SyntaxError:
            continue
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names


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
                self.code.setup.append((ast.unparse(stmt), _free_names(stmt)))
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
            shared = _is_alias_value(stmt.value)
            origin = _origin(stmt.value)
            held = _held_names(stmt.value)
            path = path_value(stmt.value)
            for target in stmt.targets:
                self.target(target, shared, *origin, shares=held, path=path)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self.expr(stmt.value)
                self.target(stmt.target, _is_alias_value(stmt.value), *_origin(stmt.value))
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
                    self.target(item.optional_vars, True, *_origin(item.context_expr))
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
            self.emit("mutate", name, target, alias=_through_element(inner))
        elif _is_globals_call(inner):
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
            walrus, read_first = _walrus_targets(node)
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
            self.emit("mutate", mutated, node, alias=_through_element(obj))
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
            and _is_globals_call(func.value)
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
                    for name in sorted(_names_in_template(arg.value)):
                        self.emit("load", name, node)
            magic = [a.value for a in node.args if isinstance(a, ast.Constant)]
            python_magic = len(magic) == 2 and magic[0] in _PYTHON_LINE_MAGICS
            if func.attr == "run_line_magic" and python_magic:
                for stmt in _magic_statements(str(magic[1]), node.lineno):
                    self.stmt(stmt)

    def dynamic(self, what: str, line: int) -> None:
        self.code.events.append(Event("dynamic", what, line))


def _free_names(stmt: ast.stmt) -> tuple[str, ...]:
    """Global names a statement reads when replayed on its own (its defs' globals too)."""
    probe = CellCode(index=-1, python="")
    _Scanner(probe, "", 0).stmt(stmt)
    stored = {e.name for e in probe.events if e.kind == "store"}
    names = {e.name for e in probe.events if e.kind == "load"}
    for event in probe.events:
        if isinstance(event.binding, Definition):
            names |= event.binding.scope.free
    return tuple(sorted(names - stored))


def _walrus_targets(node: ast.expr) -> tuple[set[str], set[str]]:
    """Names a comprehension's ``:=`` binds in the enclosing scope, and those it reads first.

    ``[y for x in xs if (y := f(x))]`` binds y; ``[t := t + x for x in xs]`` binds t and
    reads the t that was there before. A lambda's walrus targets stay in the lambda.
    """
    if isinstance(node, ast.Lambda):
        return set(), set()
    targets: set[str] = set()
    read_first: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        sub = stack.pop()
        if isinstance(sub, ast.NamedExpr) and isinstance(sub.target, ast.Name):
            targets.add(sub.target.id)
            if any(
                isinstance(n, ast.Name) and n.id == sub.target.id and isinstance(n.ctx, ast.Load)
                for n in ast.walk(sub.value)
            ):
                read_first.add(sub.target.id)
        stack.extend(c for c in ast.iter_child_nodes(sub) if not isinstance(c, ast.Lambda))
    return targets, read_first


def _magic_statements(argument: str, line: int) -> list[ast.stmt]:
    """The Python code of ``%time``/``%timeit``/``%prun`` (after their options), at ``line``."""
    words = argument.split()
    for skip in range(len(words) + 1):
        if skip and not words[0].startswith("-"):
            break
        code = argument.split(maxsplit=skip)[skip] if skip < len(words) else ""
        try:
            tree = ast.parse(code.strip())
        except SyntaxError:
            continue
        ast.increment_lineno(tree, line - 1)
        return tree.body
    return []


def _is_alias_value(value: ast.expr) -> bool:
    """True when assigning ``value`` may share an object with another name."""
    if isinstance(value, (ast.Name, ast.Attribute, ast.Subscript, ast.Starred)):
        return True
    if isinstance(value, (ast.Tuple, ast.List)):
        return any(_is_alias_value(e) for e in value.elts)
    return False


def _through_element(obj: ast.expr) -> bool:
    """True when the changed object was reached through indexing a container (``d[0]``)."""
    while isinstance(obj, ast.Attribute):
        obj = obj.value
    return isinstance(obj, ast.Subscript) and isinstance(
        obj.value, (ast.Name, ast.Subscript)
    ) and not _looks_like_column(obj)


def _looks_like_column(obj: ast.Subscript) -> bool:
    # df["col"].fillna(…, inplace=True) changes df's column: the root is df, not an alias.
    return isinstance(obj.slice, ast.Constant) and isinstance(obj.slice.value, str)


def _is_globals_call(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("globals", "vars", "locals")
        and not node.args
    )


def rng_effect(call: ast.Call) -> str | None:
    """``seed`` when a call sets the global random state, ``draw`` when it draws from it."""
    func = call.func
    dotted = dotted_name(func)
    if _SEED_CALLS.match(dotted) or dotted in ("np.random.set_state", "numpy.random.set_state",
                                               "random.setstate", "torch.set_rng_state"):
        return "seed"
    if not isinstance(func, ast.Attribute):
        return None
    module = dotted_name(func.value)
    if module in _GLOBAL_RNG_MODULES and func.attr not in _RNG_SAFE:
        return "draw"
    if module in ("torch", "torch.random") and func.attr in _TORCH_DRAWS:
        return "draw"
    return None


def is_seed(stmt: ast.stmt) -> bool:
    """A statement that only seeds the global random state (``np.random.seed(0)``)."""
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and rng_effect(stmt.value) == "seed")


def draws_random(node: ast.AST) -> bool:
    """Whether code (a function body) draws from or seeds the global random state."""
    return any(isinstance(n, ast.Call) and rng_effect(n) is not None for n in ast.walk(node))


def is_generator_function(node: ast.AST) -> bool:
    """A ``def`` whose calls return generators (it yields, outside nested scopes)."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    stack: list[ast.AST] = list(node.body)
    while stack:
        sub = stack.pop()
        if isinstance(sub, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(sub))
    return False


def stateful_maker(made_by: str) -> bool:
    """Whether calling ``made_by`` returns an object that changes as it is used."""
    return made_by == "<generator>" or bool(_STATEFUL_CALLS.match(made_by))


def process_bound_maker(made_by: str) -> str | None:
    """What calling ``made_by`` returns when that cannot leave its process ("an open file")."""
    if made_by == "<generator>":
        return "a generator"
    return _PROCESS_BOUND_CALLS.get(made_by)


def _origin(value: ast.expr) -> tuple[str | None, str | None]:
    """(the dotted function that made ``value``, or the name it is taken from)."""
    if isinstance(value, ast.GeneratorExp):
        return "<generator>", None
    if isinstance(value, ast.Call):
        return dotted_name(value.func) or None, None
    if isinstance(value, ast.Name):
        return None, value.id
    return None, None


def _held_names(value: ast.expr) -> tuple[str, ...]:
    """Names whose objects a value holds itself: ``[a, b]``, ``{"k": a}``, ``(a, b)``, ``a``.

    The new name and those share objects: a later step that reads both must get them from
    one step, so that a change through one shows through the other, as in the notebook.
    """
    if isinstance(value, ast.Name):
        return (value.id,)
    elements: list[ast.expr] = []
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        elements = list(value.elts)
    elif isinstance(value, ast.Dict):
        elements = [v for v in value.values if v is not None]
    names: list[str] = []
    for element in elements:
        inner = element.value if isinstance(element, ast.Starred) else element
        if isinstance(inner, ast.Name):
            names.append(inner.id)
    return tuple(dict.fromkeys(names))


def path_value(value: ast.expr) -> tuple[object, ...] | None:
    """The path template of a value built like a path, else None.

    A literal string, an f-string, ``os.path.join``, ``Path(…)``, ``… / …``.
    """
    if isinstance(value, ast.Name):
        return None  # an alias: linking follows the name itself
    if isinstance(value, ast.Constant) and not isinstance(value.value, str):
        return None
    template = path_template(value)
    if template is None or not any(isinstance(part, str) and part for part in template):
        return None
    return template
