"""The cell scanner's full output, pinned: every event, its order, line and ``definite`` flag.

Every code cell of the sample and corpus notebooks, and a set of snippets chosen for the
syntax the scanner treats specially, are scanned and compared with
``tests/golden/scanner_events.json``. A change to the scanner that changes any event shows
up here as the exact cell and position where it differs. Regenerate on purpose with
``CELLPIPE_REGEN_GOLDEN=1 python -m pytest tests/core/test_scanner_events.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pytest

from cellpipe.core.analysis import CellCode, scan_cell
from cellpipe.core.annotations import parse_cell
from cellpipe.core.notebook import read_notebook
from tests.conftest import ROOT, SAMPLES

GOLDEN = ROOT / "tests" / "golden" / "scanner_events.json"
REGEN = os.environ.get("CELLPIPE_REGEN_GOLDEN") == "1"
NOTEBOOKS = sorted(SAMPLES.glob("*.ipynb")) + sorted((ROOT / "tests" / "corpus").glob("*.ipynb"))

# name -> source. Each exercises syntax the scanner handles on a path of its own.
SNIPPETS: dict[str, str] = {
    "walrus": (
        "if (n := len(xs)) > limit:\n    print(n)\n"
        "while (chunk := read(size)):\n    out.append(chunk)\n"
        "y = (z := f(a)) + z\n"
    ),
    "comprehensions": (
        "ys = [x * k for x in xs if x > lo]\n"
        "grid = {(i, j): v for i, row in enumerate(mat) for j, v in enumerate(row)}\n"
        "s = {w.lower() for w in words}\n"
        "g = (t for t in ts)\n"
        "found = [y for x in xs if (y := f(x))]\n"
        "acc = [(total := total + v) for v in vals]\n"
        "nested = [[c for c in r if c] for r in rows]\n"
        "print(x, k)\n"
    ),
    "nested_functions": (
        "def outer(a, b=default, *args, c, d=other, **kw):\n"
        "    n = 0\n"
        "    def inner():\n"
        "        nonlocal n\n"
        "        n += 1\n"
        "        return n + helper(a)\n"
        "    return inner\n"
        "counter = outer(1, c=2)\n"
        "counter()\n"
    ),
    "global_nonlocal": (
        "global shared\n"
        "def configure(path):\n"
        "    global cfg, calls\n"
        "    cfg = load(path)\n"
        "    calls += 1\n"
        "    registry.append(path)\n"
        "configure(config_path)\n"
        "print(cfg)\n"
    ),
    "augmented_assignment": (
        "total += step\n"
        "obj.count += 1\n"
        "d['k'] += v\n"
        "m[i][j] -= delta\n"
        "frames[0].n *= 2\n"
        "f().attr += 1\n"
    ),
    "try_except_else_finally": (
        "try:\n"
        "    value = risky(a)\n"
        "    both = 1\n"
        "except (ValueError, TypeError) as exc:\n"
        "    log(exc)\n"
        "    both = 2\n"
        "except KeyError:\n"
        "    both = 3\n"
        "    value = None\n"
        "except:\n"
        "    raise\n"
        "else:\n"
        "    ok = True\n"
        "finally:\n"
        "    done = cleanup(value)\n"
        "print(exc)\n"
    ),
    "try_star": (
        "try:\n"
        "    run(jobs)\n"
        "except* OSError as group:\n"
        "    failed = group.exceptions\n"
        "except* (ValueError, KeyError):\n"
        "    failed = []\n"
    ),
    "match": (
        "match command.split():\n"
        "    case [action]:\n"
        "        result = act(action)\n"
        "    case [action, obj, *rest] if obj in known:\n"
        "        result = act(action, obj, rest)\n"
        "    case {'kind': kind, **others}:\n"
        "        result = kind\n"
        "    case Point(x=0, y=yy) | Point(x=yy, y=0):\n"
        "        result = yy\n"
        "    case Color.RED:\n"
        "        result = 'red'\n"
        "    case str() as text:\n"
        "        result = text\n"
        "    case _:\n"
        "        result = None\n"
    ),
    "with_as": (
        "with open(path) as fh, lock:\n"
        "    text = fh.read()\n"
        "with ctx() as (a, [b, *c]), other as obj.attr:\n"
        "    pass\n"
        "with open('out.csv', 'w') as out:\n"
        "    out.write(text)\n"
    ),
    "async": (
        "async def fetch(session, url):\n"
        "    async with session.get(url) as resp:\n"
        "        return await resp.text()\n"
        "async for item in stream(src):\n"
        "    items.append(item)\n"
        "else:\n"
        "    finished = True\n"
        "async with client as c:\n"
        "    page = await c.get(base)\n"
        "data = await fetch(sess, url)\n"
    ),
    "del": (
        "del a\n"
        "del b, (c, d), [e]\n"
        "del frame['col'], obj.attr, rows[0][1]\n"
        "del globals()['x']\n"
        "del items[lo:hi]\n"
    ),
    "star_assign": (
        "first, *middle, last = seq\n"
        "[p, q] = pair\n"
        "x = y = z = make()\n"
        "a, (b, c) = one, (two, three)\n"
        "arr[i:j] = other\n"
        "obj.field = value\n"
        "globals()['dyn'] = 1\n"
        "h = [m, *more]\n"
        "conf = {'a': a, 'b': b, **base}\n"
    ),
    "decorators": (
        "@functools.lru_cache(maxsize=size)\n"
        "def cached(x):\n"
        "    return x + offset\n"
        "\n"
        "@register(name=label)\n"
        "@dataclass\n"
        "class Config:\n"
        "    lr: float = DEFAULT_LR\n"
        "    layers: list = field(default_factory=list)\n"
    ),
    "class_bodies": (
        "class Model(Base, metaclass=Meta):\n"
        "    '''A model.'''\n"
        "    scale = factor * 2\n"
        "    def __init__(self):\n"
        "        self.items = []\n"
        "        self.n = 0\n"
        "    def fit(self, data):\n"
        "        self.n += 1\n"
        "        self.items.append(data)\n"
        "        return self\n"
        "    def score(self):\n"
        "        return metric(self.items)\n"
        "m = Model()\n"
        "m.fit(train)\n"
    ),
    "lambda_defaults": (
        "f = lambda x, y=default, *a, k=kdef, **kw: x + y + z\n"
        "df['c'] = df.apply(lambda row: row.a * weight, axis=1)\n"
        "g = lambda: (w := 1)\n"
        "sorted(items, key=lambda it: it[idx])\n"
    ),
    "f_strings": (
        "msg = f'{name!r:>{width}} has {count:,} rows and {len(rows) / total:.2%}'\n"
        "print(f'{a}{b!s}{{literal}}')\n"
        "path = f'data/{split}/{name}.csv'\n"
        "df = pd.read_csv(f'{root}/train.csv')\n"
    ),
    "conditional_imports": (
        "try:\n"
        "    import ujson as json\n"
        "except ImportError:\n"
        "    import json\n"
        "if sys.version_info >= (3, 11):\n"
        "    import tomllib\n"
        "else:\n"
        "    import tomli as tomllib\n"
        "from os import path as p, sep\n"
        "import os.path\n"
        "from .local import thing\n"
        "from pylab import *\n"
    ),
    "conditional_import_fallback": (
        "try:\n"
        "    import yaml\n"
        "except ImportError:\n"
        "    yaml = None\n"
    ),
    "main_guard": (
        "def main():\n"
        "    return run(args)\n"
        "if __name__ == '__main__':\n"
        "    main()\n"
    ),
    "loops_break_else": (
        "for i, (key, *vals) in enumerate(pairs):\n"
        "    if key == target:\n"
        "        hit = i\n"
        "        break\n"
        "    elif not vals:\n"
        "        continue\n"
        "else:\n"
        "    hit = -1\n"
        "for it in iterator:\n"
        "    pass\n"
        "while budget > 0:\n"
        "    budget -= cost\n"
        "    if done():\n"
        "        break\n"
        "else:\n"
        "    exhausted = True\n"
        "for obj.attr in things:\n"
        "    pass\n"
    ),
    "if_branches": (
        "if flag:\n"
        "    a = 1\n"
        "    b = 2\n"
        "    import math\n"
        "    def h(): pass\n"
        "elif other:\n"
        "    a = 3\n"
        "    import math\n"
        "    def h(): return 1\n"
        "else:\n"
        "    a = 4\n"
        "    b = 5\n"
        "    import math\n"
        "    class h: pass\n"
        "print(a, b)\n"
    ),
    "annotated": (
        "x: int\n"
        "y: list[int] = []\n"
        "(z): int = 1\n"
        "obj.attr: Tp = v\n"
        "d['k']: Tp\n"
    ),
    "mutating_calls": (
        "data = [train_df, test_df]\n"
        "for d in data:\n"
        "    d['x'] = d['y'] * 2\n"
        "items.append(item)\n"
        "cfg.update(extra)\n"
        "df.fillna(0, inplace=True)\n"
        "df['c'].fillna(0, inplace=True)\n"
        "rows[0].sort()\n"
        "model.fit(X, y)\n"
        "random.shuffle(deck)\n"
        "it = iter(xs)\n"
        "first = next(it)\n"
        "gen = (v for v in vs)\n"
        "r = rng\n"
        "f(a, *rest, b)\n"
        "g(*args, key=val, **opts)\n"
    ),
    "random_state": (
        "np.random.seed(seed)\n"
        "random.seed(0)\n"
        "x = np.random.rand(3)\n"
        "y = random.random()\n"
        "rng = np.random.default_rng(0)\n"
        "z = rng.normal()\n"
        "torch.manual_seed(1)\n"
    ),
    "files": (
        "os.makedirs(out_dir, exist_ok=True)\n"
        "df = pd.read_csv('data/in.csv')\n"
        "df.to_parquet(os.path.join(out_dir, 'out.parquet'))\n"
        "with open(Path(root) / 'notes.txt', 'a') as fh:\n"
        "    fh.write('x')\n"
        "os.chdir('..')\n"
        "text = Path(name).read_text()\n"
    ),
    "setup_statements": (
        "'''Docstring.'''\n"
        "import warnings\n"
        "warnings.filterwarnings('ignore')\n"
        "pd.set_option('display.max_rows', max_rows)\n"
        "pd.options.display.width = width\n"
        "plt.rcParams['figure.figsize'] = (w, h)\n"
        "os.environ['TOKEN'] = token\n"
        "sys.path.append(src_dir)\n"
        "np.random.seed(42)\n"
        "get_ipython().run_line_magic('matplotlib', 'inline')\n"
        "get_ipython().register_magic_function(fn)\n"
        "def helper():\n"
        "    return base\n"
        "del helper\n"
        "pass\n"
    ),
    "shared_only_defs": (
        "import numpy as np\n"
        "def f(x):\n"
        "    return np.sqrt(x) + c\n"
        "class K:\n"
        "    pass\n"
    ),
    "if_with_walrus_test": (
        "if (m := re.match(pat, s)):\n"
        "    import json\n"
    ),
    "dynamic": (
        "exec(code)\n"
        "v = eval('1 + 1')\n"
        "globals().update(values)\n"
        "globals()['name'] = 1\n"
        "vars()['n'] = 2\n"
        "fs = [exec(c) for c in codes]\n"
        "def dyn():\n"
        "    exec('x = 1')\n"
    ),
    "other_statements": (
        "assert x > 0, f'bad {x}'\n"
        "raise ValueError(msg) from err\n"
        "import_me = __import__(name)\n"
        "x if cond else y\n"
        "a < b < c\n"
        "print(*args, sep=sep, **kw)\n"
        "obj.method(arg).other(z)\n"
        "xs[i:j:k]\n"
        "-(+v)\n"
        "{**m, 'k': q}\n"
        "await asyncio.sleep(delay)\n"
    ),
    "ipython_magics": (
        "%matplotlib inline\n"
        "%load_ext autoreload\n"
        "%autoreload 2\n"
        "%time y = g(x)\n"
        "%timeit -n 10 -r 2 f(x)\n"
        "%prun -s cumulative run(model)\n"
        "%env MODE=fast\n"
        "%cd {folder}\n"
        "files = !ls {folder}\n"
        "!echo $name {count + 1}\n"
        "%store result\n"
        "result?\n"
    ),
    "pip_install": (
        "!pip install pandas==2.1 'scikit-learn>=1.3'\n"
        "%pip install -q -r requirements.txt\n"
        "%cellpipe run\n"
        "import pandas as pd\n"
    ),
    "cell_magic_time": "%%time\nresult = train(model, data)\nscore = evaluate(result)\n",
    "cell_magic_capture": "%%capture out\nprint(banner)\nimport tqdm\n",
    "cell_magic_bash": "%%bash\necho $HOME\nls\n",
    "syntax_error": "x = 1\ndef broken(:\n    pass\n",
    "empty": "",
    "comment_only": "# nothing here\n",
    "generator_function": (
        "def batches(seq, n):\n"
        "    for i in range(0, len(seq), n):\n"
        "        yield seq[i : i + n]\n"
        "bs = batches(data, size)\n"
        "first = next(bs)\n"
        "def noisy():\n"
        "    return np.random.rand()\n"
    ),
    "del_nested": "del (a, b[0], (c, d)), [e.f]\ndel x.y.z, m[i][j]\n",
    "match_nested": (
        "match event:\n"
        "    case [(a, b), c, *_]:\n"
        "        pair = (a, b, c)\n"
        "    case {'k': [x, *ys], 'v': Kind.ONE | Kind.TWO}:\n"
        "        pair = (x, ys)\n"
        "    case Box(inner=Box(value=v) as boxed):\n"
        "        pair = (v, boxed)\n"
    ),
    "nested_branches": (
        "for row in rows:\n"
        "    try:\n"
        "        if a:\n"
        "            if b:\n"
        "                x = 1\n"
        "            else:\n"
        "                x = 2\n"
        "        else:\n"
        "            x = 3\n"
        "    except ValueError:\n"
        "        break\n"
        "else:\n"
        "    y = 1\n"
        "if a:\n"
        "    if b:\n"
        "        z = 1\n"
        "    else:\n"
        "        z = 2\n"
        "else:\n"
        "    z = 3\n"
        "with ctx() as (first, *others):\n"
        "    w = first\n"
    ),
    "targets_in_place": (
        "a.b[c].d = 1\n"
        "for x[0] in ys:\n"
        "    pass\n"
        "rows[0]['k'], cols.n = 1, 2\n"
        "globals().pop('x')\n"
        "locals()['x'] = 1\n"
        "exec(*parts)\n"
        "print(next(gen))\n"
        "v = np.random.seed(0) or 1\n"
    ),
    "nested_scopes": (
        "fs = [lambda v, d=k: v + d + c for k in ks]\n"
        "g = lambda n=[i for i in base]: n\n"
        "res = [x async for x in aiter(src) if x > lim]\n"
        "gen = (y for y in (z for z in zs))\n"
        "async with lock:\n"
        "    await job(q)\n"
    ),
    "setup_in_branches": (
        "if debug:\n"
        "    pd.set_option('display.max_rows', rows)\n"
        "else:\n"
        "    import logging\n"
        "    logging.basicConfig(level=level)\n"
        "try:\n"
        "    import x\n"
        "except* ImportError:\n"
        "    pass\n"
        "del helper\n"
        "from . import *\n"
    ),
    "magic_python": (
        "%timeit -n1 squares = [i * i for i in data]\n"
        "%time def f(): return g\n"
        "%prun -l 4\n"
        "%time\n"
    ),
}

# Snippets scanned as if a ``%%step`` header (or more) stood above them.
OFFSET_SNIPPETS = {"with_as": 1, "try_except_else_finally": 3, "ipython_magics": 2,
                   "setup_statements": 1, "dynamic": 4, "syntax_error": 1, "match": 2}


def plain(value: Any) -> Any:
    """A JSON-ready copy of ``value``: dataclasses by field, sets sorted, tuples as lists.

    Fields of a dataclass that hold their default are left out (every event has ten), so
    the golden file shows what each event says.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {"__type__": type(value).__name__}
        for spec in dataclasses.fields(value):
            field_value = getattr(value, spec.name)
            if spec.default is not dataclasses.MISSING and field_value == spec.default:
                continue
            if (spec.default_factory is not dataclasses.MISSING
                    and field_value == spec.default_factory()):
                continue
            fields[spec.name] = plain(field_value)
        return fields
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__repr__": repr(value)}


def scanned(code: CellCode) -> dict[str, Any]:
    """Everything the scanner decides about a cell (the syntax tree left out)."""
    result: dict[str, Any] = plain(dataclasses.replace(code, tree=None))
    del result["__type__"]
    result["events"] = [plain(event) for event in code.events]  # an empty list kept too
    for event in result["events"]:
        del event["__type__"]
    return result


def notebook_cells() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in NOTEBOOKS:
        notebook = read_notebook(path)
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            note = parse_cell(cell.tags, cell.source, cell.index, [])
            key = f"{path.relative_to(ROOT)}#{cell.index}"
            found[key] = scanned(scan_cell(cell.index, note.body, note.body_line_offset))
    return found


def snippet_cells() -> dict[str, dict[str, Any]]:
    found = {f"snippet:{name}": scanned(scan_cell(7, source)) for name, source in SNIPPETS.items()}
    for name, offset in OFFSET_SNIPPETS.items():
        found[f"snippet:{name}@{offset}"] = scanned(scan_cell(7, SNIPPETS[name], offset))
    return found


def current() -> dict[str, dict[str, Any]]:
    return {**notebook_cells(), **snippet_cells()}


def to_text(cells: dict[str, dict[str, Any]]) -> str:
    """JSON with one event a line, so a diff of the golden file reads event by event."""
    blocks = []
    for key in sorted(cells):
        fields = []
        for name, value in sorted(cells[key].items()):
            if name == "events":
                events = ",\n".join(f"   {json.dumps(e, sort_keys=True)}" for e in value)
                fields.append(f'  "events": [\n{events}\n  ]' if value else '  "events": []')
            else:
                fields.append(f"  {json.dumps(name)}: {json.dumps(value, sort_keys=True)}")
        blocks.append(f" {json.dumps(key)}: {{\n" + ",\n".join(fields) + "\n }")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


def test_scanner_output_matches_golden_file():
    cells = current()
    text = to_text(cells)
    if REGEN:
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), f"no golden file; run with CELLPIPE_REGEN_GOLDEN=1 to create {GOLDEN}"
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sorted(cells) == sorted(golden), "the set of scanned cells changed"
    for key in sorted(golden):
        want, got = golden[key], cells[key]
        for field_name in sorted(want):
            if field_name == "events":
                for position, (w, g) in enumerate(zip(want["events"], got["events"], strict=False)):
                    assert g == w, f"{key}: event {position} differs"
                assert len(got["events"]) == len(want["events"]), f"{key}: event count"
            else:
                assert got[field_name] == want[field_name], f"{key}: {field_name} differs"
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "scanner output differs from tests/golden/scanner_events.json; if the change is "
        "intended, regenerate with CELLPIPE_REGEN_GOLDEN=1"
    )


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_every_snippet_parses_or_is_meant_not_to(name):
    code = scan_cell(0, SNIPPETS[name])
    assert (code.syntax_error is not None) == (name == "syntax_error"), code.syntax_error
