"""Static analysis of one cell: what it reads, writes, mutates, imports and defines, in order.

Each cell is transformed from IPython syntax to Python (only when it is not plain Python,
so plain notebooks never import IPython; see :mod:`cellpipe.core.ipython_source`), parsed
once, and reduced to a list of :class:`Event` in execution order
(:mod:`cellpipe.core.scanner`); its top-level statements are sorted into computation and
shared code (imports, definitions, session setup). Linking
(:mod:`cellpipe.core.pipeline`) replays those events per step against what earlier steps
bound: one pass over the notebook, no re-parsing per pair of steps.
"""

from __future__ import annotations

import ast
import re

# What a scanned cell is, and the conversion of its source, are owned elsewhere; these are
# the names other modules import from here.
from cellpipe.core.cell_events import CellCode as CellCode
from cellpipe.core.cell_events import Definition as Definition
from cellpipe.core.cell_events import Event as Event
from cellpipe.core.cell_events import Import as Import
from cellpipe.core.ipython_source import blank_installs, parse
from cellpipe.core.ipython_source import imported_modules as imported_modules
from cellpipe.core.ipython_source import to_python as to_python
from cellpipe.core.rng import is_seed
from cellpipe.core.rng import process_bound_maker as process_bound_maker
from cellpipe.core.rng import stateful_maker as stateful_maker
from cellpipe.core.scanner import scan_events

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
    for stmt in tree.body:
        if not _statement_is_shared(code, stmt):
            code.only_shared = False
    scan_events(code, tree)
    return code


# Shared statements that need no replay as session setup: steps replay imports and
# definitions anyway, and ``pass`` or a docstring does nothing.
_REPLAYED_ANYWAY = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                    ast.ClassDef, ast.Pass, ast.Expr)


def _statement_is_shared(code: CellCode, stmt: ast.stmt) -> bool:
    """Imports, definitions, docstrings, session setup and seeds are not computation.

    Other shared statements (setup calls, ``if``/``try`` blocks of imports, ``del`` of
    helpers) are kept in ``code.setup``, to be replayed at the start of every later step.
    """
    if not _SharedCode().visit(stmt):
        return False
    if is_seed(stmt):
        return True  # the random state is a value: see RANDOM_STATE
    if not isinstance(stmt, _REPLAYED_ANYWAY) or _is_setup(stmt):
        code.setup.append((ast.unparse(stmt), free_names(stmt)))
    return True


class _SharedCode(ast.NodeVisitor):
    """Whether one top-level statement is shared code; ``visit`` returns the answer.

    ``if`` and ``try`` blocks count when every statement in them does (``try: import x``
    / ``except ImportError: …``), and ``del`` when it removes helpers defined above it.
    """

    def __init__(self) -> None:
        self.defined: set[str] = set()

    def visit_FunctionDef(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> bool:
        self.defined.add(node.name)
        return True

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import | ast.ImportFrom | ast.Pass) -> bool:
        return True

    visit_ImportFrom = visit_Pass = visit_Import

    def visit_Expr(self, node: ast.Expr) -> bool:
        return isinstance(node.value, ast.Constant) or self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> bool:
        return all(isinstance(t, ast.Name) and t.id in self.defined for t in node.targets)

    def visit_If(self, node: ast.If) -> bool:
        if any(isinstance(n, ast.NamedExpr) for n in ast.walk(node.test)):
            return False  # the test binds a name: computation
        return self.all_shared([node.body, node.orelse])

    def visit_Try(self, node: ast.Try) -> bool:
        bodies = [node.body, node.orelse, *(h.body for h in node.handlers), node.finalbody]
        return self.all_shared(bodies)

    def all_shared(self, bodies: list[list[ast.stmt]]) -> bool:
        return all(self.visit(stmt) for body in bodies for stmt in body)

    def generic_visit(self, node: ast.AST) -> bool:
        """Any other statement: shared if it sets up the session or seeds the random state."""
        return isinstance(node, ast.stmt) and (_is_setup(node) or is_seed(node))


def _is_setup(stmt: ast.stmt) -> bool:
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


def free_names(stmt: ast.stmt) -> tuple[str, ...]:
    """Global names a statement reads when replayed on its own (its defs' globals too)."""
    probe = CellCode(index=-1, python="")
    scan_events(probe, stmt)
    stored = {e.name for e in probe.events if e.kind == "store"}
    names = {e.name for e in probe.events if e.kind == "load"}
    for event in probe.events:
        if isinstance(event.binding, Definition):
            names |= event.binding.scope.free
    return tuple(sorted(names - stored))
