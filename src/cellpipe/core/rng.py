"""Random state and stateful objects: which calls seed, draw from or make them.

The global generators (``np.random``, ``random``, ``torch``) are state every step that
draws from them shares; generators, iterators and connections are objects whose state
advances when used, or that cannot leave their process.
"""

from __future__ import annotations

import ast
import re

from cellpipe.core.files import dotted_name

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
