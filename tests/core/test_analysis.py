"""What one step reads, writes, mutates, imports and defines: scopes, mutation, functions.

Every test builds a small notebook in memory and checks exact reads (with their
producers), writes, mutations, replayed imports/definitions and diagnostics. Tests named
``test_kale_*`` pin a failure mode of Kale's analyzer that cellpipe must not repeat.
"""

from __future__ import annotations

import pytest

from tests.core.nbutil import analyze, codes, edges, errors, found, reads, step

# -- scopes: comprehensions, lambdas, defs, classes -------------------------------------


def test_comprehension_variable_is_neither_read_nor_written():
    p = analyze(
        ("step:a", "xs = [1, 2]\nk = 3"),
        ("step:b", "ys = [x * k for x in xs]"),
    )
    b = step(p, "b")
    assert dict(b.reads) == {"k": "a", "xs": "a"}
    assert b.writes == ("ys",)
    assert not p.diagnostics


def test_comprehension_variable_does_not_shadow_global_read_after_it():
    p = analyze(
        ("step:a", "x = 5\nmat = [[1, 2]]"),
        (
            "step:b",
            "ys = [x for x in range(3)]\nzz = [[i * j for j in row] for i, row in "
            "enumerate(mat)]\nout = x + 1",
        ),
    )
    b = step(p, "b")
    assert dict(b.reads) == {"mat": "a", "x": "a"}
    assert b.writes == ("out", "ys", "zz")


def test_kale_comprehension_variables_are_not_exported():
    p = analyze(
        ("step:a", "rows = [[1, 2]]"),
        ("step:b", "flat = [v for row in rows for v in row]\npairs = {k: w for k, w in []}"),
        ("step:c", "print(v, row, k)"),
    )
    assert step(p, "b").writes == ("flat", "pairs")
    assert errors(p) == [
        ("CP301", 2, 1, "v"),
        ("CP301", 2, 1, "row"),
        ("CP301", 2, 1, "k"),
    ]


def test_comprehension_reads_globals_in_every_part():
    p = analyze(
        ("step:a", "keys = [1]\nk = 2\nlimit = 3\nfactor = 4"),
        (
            "step:b",
            "d = {kk: kk * k for kk in keys if kk < limit}\ng = sum(v * factor for v in keys)",
        ),
    )
    assert reads(p, "b") == {"factor": "a", "k": "a", "keys": "a", "limit": "a"}


def test_lambda_passed_to_apply_reads_its_globals():
    p = analyze(
        ("step:a", "import pandas as pd\ndf = pd.DataFrame({'v': [1]})\nk = 3"),
        ("step:b", "out = df.apply(lambda r: r * k)"),
    )
    assert reads(p, "b") == {"df": "a", "k": "a"}
    assert step(p, "b").writes == ("out",)


def test_lambda_parameters_and_defaults():
    p = analyze(
        ("step:a", "k = 2\nm = 3"),
        ("step:b", "f = lambda a: (lambda b: a * b * k)\nh = lambda r, m=m: r * m"),
    )
    assert reads(p, "b") == {"k": "a", "m": "a"}
    assert step(p, "b").writes == ("f", "h")


def test_nested_def_reads_global_through_inner_function():
    p = analyze(
        ("step:a", "k = 3\nunused = 0"),
        (
            "step:b",
            "def outer():\n    def inner():\n        return k\n    return inner()\nv = outer()",
        ),
    )
    assert reads(p, "b") == {"k": "a"}
    assert step(p, "b").writes == ("v",)


def test_global_declaration_makes_a_call_write_the_global():
    p = analyze(
        ("step:a", "counter = 0"),
        ("step:b", "def bump():\n    global counter\n    counter = counter + 1"),
        ("step:c", "bump()"),
        ("step:d", "print(counter)"),
    )
    # Defining bump does nothing; calling it reads and rewrites counter.
    assert step(p, "b").writes == ()
    assert reads(p, "b") == {}
    assert reads(p, "c") == {"counter": "a"}
    assert step(p, "c").writes == ("counter",)
    assert reads(p, "d") == {"counter": "c"}


def test_nonlocal_stays_inside_the_function():
    p = analyze(
        ("step:a", "k = 3\nn = 100"),
        (
            "step:b",
            "def f():\n    n = 0\n    def g():\n        nonlocal n\n        n += k\n"
            "    g()\n    return n\nv = f()",
        ),
    )
    # n is f's local: the global n is not read and not written.
    assert reads(p, "b") == {"k": "a"}
    assert step(p, "b").writes == ("v",)


def test_methods_do_not_see_class_level_names():
    p = analyze(
        ("step:a", "scale = 2\nk = 3"),
        (
            "step:b",
            "class C:\n    scale = 10\n    factor = k\n    def m(self):\n"
            "        return scale\nc = C()",
        ),
    )
    # factor = k reads the global k; m's scale is the global scale, not C.scale.
    assert reads(p, "b") == {"k": "a", "scale": "a"}
    assert step(p, "b").writes == ("c",)


def test_class_body_names_bound_before_use_are_not_reads():
    p = analyze(
        ("step:a", "a = 1"),
        ("step:b", "class C:\n    a = 5\n    b = a + 1\nc = C()"),
    )
    assert reads(p, "b") == {}


def test_class_body_reading_a_name_before_binding_it_reads_the_global():
    p = analyze(
        ("step:a", "x = 1"),
        ("step:b", "class C:\n    x = x + 1\nc = C()"),
    )
    assert reads(p, "b") == {"x": "a"}


def test_walrus_at_top_level_writes_the_name():
    p = analyze(
        ("step:a", "data = [1]"),
        ("step:b", "if (n := len(data)) > 0:\n    pass"),
        ("step:c", "print(n)"),
    )
    assert step(p, "b").writes == ("n",)
    assert reads(p, "c") == {"n": "b"}


def test_walrus_in_comprehension_binds_in_the_step_and_is_not_a_read():
    p = analyze(
        ("step:a", "data = [1, 2]"),
        ("step:b", "ys = [y for x in data if (y := x * 2) > 0]"),
        ("step:c", "print(y, ys)"),
    )
    assert reads(p, "b") == {"data": "a"}
    assert step(p, "b").writes == ("y", "ys")
    assert reads(p, "c") == {"y": "b", "ys": "b"}
    assert not p.diagnostics


def test_walrus_accumulator_in_comprehension_reads_the_earlier_value():
    p = analyze(
        ("step:a", "data = [1]\ntotal = 0"),
        ("step:b", "running = [total := total + x for x in data]"),
        ("step:c", "print(total)"),
    )
    assert reads(p, "b") == {"data": "a", "total": "a"}
    assert reads(p, "c") == {"total": "b"}


def test_walrus_inside_a_lambda_stays_in_the_lambda():
    p = analyze(
        ("step:a", "f = lambda v: (w := v)"),
        ("step:b", "print(w)"),
    )
    assert step(p, "a").writes == ("f",)
    assert errors(p) == [("CP301", 1, 1, "w")]


# -- del, augmented assignment, branches -------------------------------------------------


def test_kale_del_removes_the_export():
    p = analyze(
        ("step:a", "x = 1\ny = 2"),
        ("step:b", "z = x + 1\ndel x"),
        ("step:c", "print(x)"),
    )
    assert reads(p, "b") == {"x": "a"}
    assert step(p, "b").writes == ("z",)
    assert "x" not in step(p, "b").writes
    assert reads(p, "c") == {}
    assert errors(p) == [("CP301", 2, 1, "x")]


def test_read_after_del_in_the_same_step_is_an_error():
    p = analyze(("step:a", "x = 1\ndel x\nprint(x)"))
    assert errors(p) == [("CP301", 0, 3, "x")]
    assert "deleted" in found(p, "CP301")[0].message


def test_del_then_reassign_is_exported_again():
    p = analyze(
        ("step:a", "x = 1"),
        ("step:b", "del x\nx = 2"),
        ("step:c", "print(x)"),
    )
    assert step(p, "b").writes == ("x",)
    assert reads(p, "c") == {"x": "b"}


def test_augmented_assignment_reads_and_writes():
    p = analyze(
        ("step:a", "x = 1"),
        ("step:b", "x += 1"),
        ("step:c", "print(x)"),
    )
    assert reads(p, "b") == {"x": "a"}
    assert step(p, "b").writes == ("x",)
    assert step(p, "b").mutates == ()
    assert reads(p, "c") == {"x": "b"}


def test_assignment_on_one_branch_still_reads_the_upstream_value():
    p = analyze(
        ("step:a", "x = 0\ncond = True"),
        ("step:b", "if cond:\n    x = 1\nprint(x)"),
    )
    assert reads(p, "b") == {"cond": "a", "x": "a"}
    assert step(p, "b").writes == ("x",)


def test_assignment_on_both_branches_is_not_a_read():
    p = analyze(
        ("step:a", "x = 0\ncond = True"),
        ("step:b", "if cond:\n    x = 1\nelse:\n    x = 2\nprint(x)"),
    )
    assert reads(p, "b") == {"cond": "a"}
    assert step(p, "b").writes == ("x",)


def test_assignment_on_one_branch_without_upstream_is_not_an_error():
    p = analyze(("step:a", "cond = True"), ("step:b", "if cond:\n    x = 1\nprint(x)"))
    assert errors(p) == []
    assert step(p, "b").writes == ("x",)


def test_loop_body_assignment_is_not_definite():
    p = analyze(
        ("step:a", "best = None\nscores = [1]"),
        ("step:b", "for s in scores:\n    best = s\nprint(best)"),
    )
    assert reads(p, "b") == {"best": "a", "scores": "a"}


def test_match_statement_is_analyzed():
    p = analyze(
        ("step:a", "cmd = {'k': 1}"),
        (
            "step:b",
            "match cmd:\n    case {'k': v}:\n        out = v\n    case [first, *rest]:\n"
            "        out = first\n    case _:\n        out = None",
        ),
        ("step:c", "print(out)"),
    )
    assert reads(p, "b") == {"cmd": "a"}
    assert step(p, "b").writes == ("first", "out", "rest", "v")
    assert reads(p, "c") == {"out": "b"}


# -- mutation ---------------------------------------------------------------------------


def test_subscript_and_attribute_stores_are_mutations():
    p = analyze(
        ("step:a", "import pandas as pd\ndf = pd.DataFrame()\nclass O:\n    pass\nobj = O()"),
        ("step:b", "df['a'] = 1\nobj.attr = 2"),
        ("step:c", "print(df, obj)"),
    )
    b = step(p, "b")
    assert dict(b.reads) == {"df": "a", "obj": "a"}
    assert b.writes == ("df", "obj")
    assert b.mutates == ("df", "obj")
    assert reads(p, "c") == {"df": "b", "obj": "b"}


def test_del_of_an_item_is_a_mutation():
    p = analyze(("step:a", "d = {'a': 1}"), ("step:b", "del d['a']"), ("step:c", "print(d)"))
    assert step(p, "b").mutates == ("d",)
    assert reads(p, "c") == {"d": "b"}


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("lst.append(1)", "lst"),
        ("d.update(a=1)", "d"),
        ("model.fit(X, y)", "model"),
        ("df.fillna(0, inplace=True)", "df"),
        ("np.random.shuffle(arr)", "arr"),
        ("df['v'].fillna(0, inplace=True)", "df"),
        ("t.add_(1)", "t"),
        ("heapq.heappush(lst, 3)", "lst"),
    ],
)
def test_known_mutating_calls(code, name):
    p = analyze(
        (
            "step:a",
            "import heapq\nimport numpy as np\nimport pandas as pd\nlst = []\nd = {}\n"
            "arr = np.arange(3)\nmodel = object()\nX, y = 1, 2\n"
            "df = pd.DataFrame({'v': [1.0]})\nt = arr",
        ),
        ("step:b", code),
        ("step:c", f"print({name})"),
    )
    b = step(p, "b")
    # t = arr shares arr's object: a change of one is exported with the other
    assert set(b.mutates) - {"(random state)"} == (
        {"arr", "t"} if name in ("arr", "t") else {name})
    assert set(b.writes) - {"(random state)"} == set(b.mutates) - {"(random state)"}
    assert b.reads[name] == "a"
    assert reads(p, "c") == {name: "b"}


def test_model_fit_reads_its_arguments_without_mutating_them():
    p = analyze(
        ("step:a", "model = object()\nX, y = 1, 2"),
        ("step:b", "model.fit(X, y)"),
    )
    assert reads(p, "b") == {"X": "a", "model": "a", "y": "a"}
    assert step(p, "b").mutates == ("model",)


def test_inplace_false_is_not_a_mutation():
    p = analyze(
        ("step:a", "import pandas as pd\ndf = pd.DataFrame()"),
        ("step:b", "df2 = df.fillna(0, inplace=False)"),
        ("step:c", "print(df)"),
    )
    assert step(p, "b").mutates == ()
    assert step(p, "b").writes == ("df2",)
    assert reads(p, "c") == {"df": "a"}


def test_mutating_a_value_created_in_the_same_step_is_just_a_write():
    p = analyze(("step:a", "lst = []\nlst.append(1)"))
    assert step(p, "a").writes == ("lst",)
    assert step(p, "a").mutates == ()
    assert reads(p, "a") == {}


# -- aliasing -----------------------------------------------------------------------------


def test_mutation_through_a_list_of_frames_exports_every_frame():
    p = analyze(
        ("step:a", "import pandas as pd\ntrain_df = pd.DataFrame()\ntest_df = pd.DataFrame()"),
        ("step:b", "data = [train_df, test_df]\nfor d in data:\n    d['x'] = 1"),
        ("step:c", "print(train_df, test_df)"),
    )
    b = step(p, "b")
    assert dict(b.reads) == {"test_df": "a", "train_df": "a"}
    assert {"train_df", "test_df"} <= set(b.writes)
    assert {"train_df", "test_df"} <= set(b.mutates)
    assert reads(p, "c") == {"test_df": "b", "train_df": "b"}
    (note,) = found(p, "CP306")
    assert (note.severity, note.cell, note.line, note.step) == ("info", 1, 3, "b")
    assert "test_df, train_df" in note.message


def test_mutation_through_a_plain_alias():
    p = analyze(
        ("step:a", "import pandas as pd\ntrain_df = pd.DataFrame()"),
        ("step:b", "d = train_df\nd['x'] = 1"),
        ("step:c", "print(train_df)"),
    )
    assert "train_df" in step(p, "b").mutates
    assert reads(p, "c") == {"train_df": "b"}
    assert [d.line for d in found(p, "CP306")] == [2]


def test_mutation_of_a_fresh_object_is_not_an_alias():
    p = analyze(
        ("step:a", "import pandas as pd\ntrain_df = pd.DataFrame()"),
        ("step:b", "d = pd.DataFrame()\nd['x'] = 1"),
        ("step:c", "print(train_df)"),
    )
    assert step(p, "b").mutates == ()
    assert reads(p, "c") == {"train_df": "a"}
    assert found(p, "CP306") == []


# -- notebook functions ---------------------------------------------------------------------


def test_function_globals_are_read_transitively_and_defs_replayed():
    p = analyze(
        ("step:a", "import math\nTHRESHOLD = 0.5\nxs = [1, 4]"),
        ("step:b", "def g(v):\n    return math.sqrt(v) > THRESHOLD\n\ndef f(v):\n    return g(v)"),
        ("step:c", "out = [f(x) for x in xs]"),
    )
    c = step(p, "c")
    assert dict(c.reads) == {"THRESHOLD": "a", "xs": "a"}
    assert c.imports == ("import math",)
    assert [d.split("(")[0] for d in c.definitions] == ["def g", "def f"]
    # Definitions are replayed, not marshalled: b exports nothing, c does not read f or g.
    assert step(p, "b").writes == ()
    assert edges(p) == {("a", "c")}


def test_function_from_a_shared_cell_pulls_its_globals():
    p = analyze(
        "import math\n\ndef g(v):\n    return math.sqrt(v) > THRESHOLD\n\n"
        "def f(v):\n    return g(v)",
        ("step:a", "THRESHOLD = 0.5\nxs = [1, 4]"),
        ("step:b", "out = f(xs[0])"),
    )
    b = step(p, "b")
    assert dict(b.reads) == {"THRESHOLD": "a", "xs": "a"}
    assert b.imports == ("import math",)
    assert len(b.definitions) == 2


@pytest.mark.parametrize(
    "code",
    ["m = list(map(f, xs))", "s = sorted(xs, key=f)", "r = df.apply(f)", "r = [*filter(f, xs)]"],
)
def test_kale_callbacks_passed_by_name_pull_their_globals(code):
    p = analyze(
        "def f(v):\n    return v * K",
        ("step:a", "import pandas as pd\nK = 2\nxs = [1, 2]\ndf = pd.DataFrame({'v': xs})"),
        ("step:b", code),
    )
    b = step(p, "b")
    assert b.reads["K"] == "a"
    assert "K" in b.reads
    assert b.definitions == ("def f(v):\n    return v * K",)


def test_kale_function_globals_are_not_inputs_of_steps_that_do_not_use_it():
    p = analyze(
        ("functions", "def f(v):\n    return v * K\n\ndef g():\n    return SECRET"),
        ("step:a", "K = 2\nSECRET = 's'\nxs = [1, 2]"),
        ("step:b", "total = sum(xs)"),
        ("step:c", "ys = [f(x) for x in xs]"),
    )
    assert reads(p, "b") == {"xs": "a"}
    assert step(p, "b").definitions == ()
    assert reads(p, "c") == {"K": "a", "xs": "a"}
    assert "SECRET" not in reads(p, "c")


def test_function_mutating_its_parameter_mutates_the_argument():
    p = analyze(
        "def add(df):\n    df['x'] = 1",
        ("step:a", "import pandas as pd\ntrain = pd.DataFrame()\ntest = pd.DataFrame()"),
        ("step:b", "add(train)"),
        ("step:c", "print(train, test)"),
    )
    assert step(p, "b").mutates == ("train",)
    assert step(p, "b").writes == ("train",)
    assert reads(p, "c") == {"test": "a", "train": "b"}


def test_function_mutating_its_parameter_passed_by_keyword():
    p = analyze(
        "def add(df, value=1):\n    df['x'] = value",
        ("step:a", "import pandas as pd\ntrain = pd.DataFrame()"),
        ("step:b", "add(value=2, df=train)"),
        ("step:c", "print(train)"),
    )
    assert step(p, "b").mutates == ("train",)
    assert reads(p, "c") == {"train": "b"}


def test_function_mutating_its_parameter_through_another_function():
    p = analyze(
        "def add(df):\n    df['x'] = 1\n\ndef prep(frame):\n    add(frame)\n    return frame",
        ("step:a", "import pandas as pd\ntrain = pd.DataFrame()"),
        ("step:b", "prep(train)"),
        ("step:c", "print(train)"),
    )
    assert step(p, "b").mutates == ("train",)
    assert reads(p, "c") == {"train": "b"}


def test_function_reading_but_not_mutating_its_parameter():
    p = analyze(
        "def size(df):\n    return len(df)\n\ndef walk(df, n):\n"
        "    return walk(df, n - 1) if n else size(df)",
        ("step:a", "import pandas as pd\ntrain = pd.DataFrame()"),
        ("step:b", "n = walk(train, 3)"),
        ("step:c", "print(train)"),
    )
    assert step(p, "b").mutates == ()
    assert step(p, "b").writes == ("n",)
    assert reads(p, "c") == {"train": "a"}


def test_function_mutating_a_global():
    p = analyze(
        "def record(v):\n    results.append(v)",
        ("step:a", "results = []"),
        ("step:b", "record(3)"),
        ("step:c", "print(results)"),
    )
    assert reads(p, "b") == {"results": "a"}
    assert step(p, "b").mutates == ("results",)
    assert reads(p, "c") == {"results": "b"}


def test_method_of_a_notebook_class_reads_globals():
    p = analyze(
        "class Model:\n    def predict(self, v):\n        return v * WEIGHT",
        ("step:a", "WEIGHT = 2"),
        ("step:b", "m = Model()\nout = m.predict(3)"),
    )
    assert reads(p, "b") == {"WEIGHT": "a"}
    assert step(p, "b").definitions[0].startswith("class Model:")


def test_decorator_arguments_are_read_where_the_def_runs():
    p = analyze(
        ("step:a", "import functools\nN = 3"),
        ("step:b", "@functools.lru_cache(maxsize=N)\ndef f(v):\n    return v\nr = f(1)"),
    )
    assert reads(p, "b") == {"N": "a"}
    assert step(p, "b").imports == ("import functools",)


# -- imports and definitions are replayed ----------------------------------------------


def test_imports_are_replayed_not_read():
    p = analyze(
        ("step:a", "import numpy as np\nxs = np.arange(3)"),
        ("step:b", "m = np.mean(xs)"),
    )
    b = step(p, "b")
    assert dict(b.reads) == {"xs": "a"}
    assert b.imports == ("import numpy as np",)
    assert "np" not in step(p, "a").writes


def test_def_from_an_earlier_step_is_replayed_not_marshalled():
    p = analyze(
        (
            "step:a",
            "import numpy as np\nSCALE = 3\n\ndef scale(v):\n"
            "    return np.asarray(v) * SCALE\n\nxs = [1, 2]",
        ),
        ("step:b", "ys = scale(xs)"),
    )
    assert step(p, "a").writes == ("SCALE", "xs")
    b = step(p, "b")
    assert dict(b.reads) == {"SCALE": "a", "xs": "a"}
    assert b.definitions == ("def scale(v):\n    return np.asarray(v) * SCALE",)
    assert b.imports == ("import numpy as np",)


def test_unused_imports_are_not_replayed():
    p = analyze(
        "import os\nimport numpy as np",
        ("step:a", "x = np.zeros(2)"),
    )
    assert step(p, "a").imports == ("import numpy as np",)


# -- magics and shell lines --------------------------------------------------------------


def test_kale_magics_do_not_break_analysis():
    p = analyze(
        (
            "step:a",
            "%matplotlib inline\nimport numpy as np\nxs = np.arange(3)\n\n"
            "def f():\n    return xs.sum()",
        ),
        ("step:b", "%%time\ntotal = xs.sum()\nprint(total)"),
        ("step:c", "!ls\nfiles = !ls\nxs?\n%timeit f()\nn = len(files)"),
        ("step:d", "print(total, n)"),
    )
    assert errors(p) == []
    assert reads(p, "b") == {"xs": "a"}
    assert step(p, "b").writes == ("total",)
    c = step(p, "c")
    assert c.writes == ("files", "n")
    # %timeit f() runs f: its definition is replayed and its global xs is read.
    assert c.definitions == ("def f():\n    return xs.sum()",)
    assert c.reads["xs"] == "a"
    assert reads(p, "d") == {"n": "c", "total": "b"}


def test_time_line_magic_assigns_and_options_are_skipped():
    p = analyze(
        ("step:a", "def f():\n    return 1\nk = 2"),
        ("step:b", "%time t = f() + k\n%timeit -n 3 -r 2 f()\n%prun -s cumtime f()"),
        ("step:c", "print(t)"),
    )
    assert reads(p, "b") == {"k": "a"}
    assert step(p, "b").writes == ("t",)
    assert reads(p, "c") == {"t": "b"}


def test_cell_magic_with_options_keeps_the_body_and_line_numbers():
    p = analyze(("step:a", "x = 1"), ("step:b", "%%timeit -n 3\ny = x + 1\nz = missing"))
    assert reads(p, "b") == {"x": "a"}
    assert errors(p) == [("CP301", 1, 3, "missing")]


def test_shell_expansion_reads_variables():
    p = analyze(
        ("step:a", "path = '/tmp'\nname = 'x'\nother = 1"),
        ("step:b", "!echo {path}\n!echo $name"),
        ("step:c", "out = !ls {path}/$name"),
    )
    assert reads(p, "b") == {"name": "a", "path": "a"}
    assert reads(p, "c") == {"name": "a", "path": "a"}
    assert step(p, "c").writes == ("out",)


def test_pip_install_lines_are_setup_not_computation():
    p = analyze(("step:a", "!pip install -q requests\nx = 1"))
    assert step(p, "a").requirements == ("requests",)
    assert [(d.code, d.cell, d.line) for d in p.diagnostics] == [("CP305", 0, 1)]


# -- star imports and dynamic names ------------------------------------------------------


def test_kale_star_import_warns_and_unknown_names_are_not_errors():
    p = analyze(
        ("step:a", "x = 2\nfrom math import *\nv = sqrt(x) + pi"),
        ("step:b", "w = floor(v)"),
    )
    (warning,) = found(p, "CP302")
    assert (warning.severity, warning.cell, warning.line, warning.step) == ("warning", 0, 2, "a")
    assert "from math import *" in warning.message
    assert errors(p) == []
    assert reads(p, "a") == {}
    assert reads(p, "b") == {"v": "a"}
    # The star import is replayed where names may come from it.
    assert step(p, "b").imports == ("from math import *",)


def test_star_import_in_a_shared_cell_is_replayed():
    p = analyze(("", "from math import *"), ("step:a", "v = sqrt(2)"))
    assert [(d.code, d.cell, d.line, d.step) for d in p.diagnostics] == [("CP302", 0, 1, None)]
    assert step(p, "a").imports == ("from math import *",)


def test_exec_makes_the_step_dynamic_and_read_everything_earlier():
    p = analyze(
        ("step:a", "a1 = 1\nb1 = 2"),
        ("step:b", "w = 3\nexec('y = 1')"),
        ("step:c", "print(y)"),
    )
    (warning,) = found(p, "CP303")
    assert (warning.severity, warning.cell, warning.line, warning.step) == ("warning", 1, 2, "b")
    b = step(p, "b")
    assert b.dynamic
    assert dict(b.reads) == {"a1": "a", "b1": "a"}
    # y is unknown statically: it is assumed to come from the dynamic step.
    assert reads(p, "c") == {"y": "b"}
    assert errors(p) == []


@pytest.mark.parametrize("code", ["globals()['z'] = 1", "globals().update(z=1)", "vars()['z'] = 1"])
def test_globals_writes_make_the_step_dynamic(code):
    p = analyze(("step:a", "a1 = 1"), ("step:b", f"w = 1\n{code}"), ("step:c", "print(z)"))
    assert [(d.code, d.cell, d.line) for d in p.diagnostics] == [("CP304", 1, 2)]
    assert step(p, "b").dynamic
    assert reads(p, "b") == {"a1": "a"}
    assert reads(p, "c") == {"z": "b"}


def test_eval_inside_a_comprehension_is_dynamic():
    p = analyze(("step:a", "exprs = ['1']"), ("step:b", "ys = [eval(s) for s in exprs]"))
    assert [(d.code, d.cell, d.line) for d in p.diagnostics] == [("CP303", 1, 1)]
    assert step(p, "b").dynamic


def test_exec_inside_a_function_is_dynamic_where_it_is_called():
    p = analyze(
        "def f():\n    exec('q = 1')",
        ("step:a", "a1 = 1"),
        ("step:b", "f()"),
    )
    assert not step(p, "a").dynamic
    assert step(p, "b").dynamic
    assert [(d.code, d.cell, d.line, d.step) for d in p.diagnostics] == [("CP303", 0, 2, "b")]


def test_plain_notebook_has_no_diagnostics():
    p = analyze(
        ("step:load", "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})"),
        ("step:stats", "mean = df['a'].mean()"),
    )
    assert codes(p) == []


def test_cellpipe_magic_lines_are_not_run_inside_steps():
    """A `%cellpipe run` cell in a step would start the pipeline from inside itself."""
    from cellpipe import api
    from tests.conftest import make_nb

    nb = make_nb(("step:a", "x = 1"), "%cellpipe run\ny = x + 1")
    spec = api.compile_spec(nb).to_dict()
    (step,) = spec["steps"]
    sources = "\n".join(cell["source"] for cell in step["cells"])
    assert "%cellpipe run" not in sources and "y = x + 1" in sources
