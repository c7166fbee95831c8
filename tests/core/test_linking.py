"""Linking steps into a DAG: producers, edges, parameters, after:, and what lint reports.

A value a step reads comes from the last earlier step (in notebook order) that writes or
mutates it. Tests named ``test_kale_*`` pin a failure mode of Kale's linker.
"""

from __future__ import annotations

import pytest

from cellpipe import api
from cellpipe.errors import PipelineError
from tests.core.nbutil import analyze, codes, edges, errors, found, notebook, reads, step

# -- producers ------------------------------------------------------------------------------


def test_read_comes_from_the_last_earlier_writer():
    p = analyze(
        ("step:a", "x = 1"),
        ("step:b", "x = 2"),
        ("step:c", "y = x"),
        ("step:d", "x = 3"),
    )
    assert reads(p, "c") == {"x": "b"}
    assert edges(p) == {("b", "c")}


@pytest.mark.parametrize("order", ["bc", "cb"])
def test_kale_mutation_on_one_branch_of_a_diamond_is_not_lost(order):
    a = ("step:a", "import pandas as pd\ndf = pd.DataFrame({'v': [1]})")
    b = ("step:b", "df['w'] = df['v'] * 2")
    c = ("step:c", "n = len(df)")
    d = ("step:d", "print(df)")
    p = analyze(a, *([b, c] if order == "bc" else [c, b]), d)
    assert step(p, "b").mutates == ("df",)
    assert reads(p, "b") == {"df": "a"}
    # D's df is B's: the last earlier writer or mutator in notebook order.
    assert reads(p, "d") == {"df": "b"}
    if order == "bc":
        # C comes after B's mutation, so it reads B's df.
        assert reads(p, "c") == {"df": "b"}
        assert edges(p) == {("a", "b"), ("b", "c"), ("b", "d")}
    else:
        assert reads(p, "c") == {"df": "a"}
        assert edges(p) == {("a", "c"), ("a", "b"), ("b", "d")}


def test_kale_parallel_producers_of_one_name():
    p = analyze(
        ("step:a", "base = 1"),
        ("step:b", "x = base + 1"),
        ("step:c", "x = base + 2"),
        ("step:d", "print(x)"),
    )
    assert reads(p, "b") == {"base": "a"}
    assert reads(p, "c") == {"base": "a"}
    assert reads(p, "d") == {"x": "c"}
    assert edges(p) == {("a", "b"), ("a", "c"), ("c", "d")}
    assert step(p, "b").upstream == ("a",)
    assert step(p, "c").upstream == ("a",)
    assert step(p, "d").upstream == ("c",)


def test_independent_branches_get_no_edge_between_them():
    p = analyze(
        ("step:load", "data = [1, 2, 3]"),
        ("step:total", "total = sum(data)"),
        ("step:count", "count = len(data)"),
        ("step:report", "mean = total / count"),
    )
    assert edges(p) == {
        ("load", "total"),
        ("load", "count"),
        ("total", "report"),
        ("count", "report"),
    }
    assert step(p, "report").upstream == ("total", "count")
    edge = next(e for e in p.edges if (e.source, e.target) == ("load", "total"))
    assert (edge.variables, edge.explicit) == (("data",), False)


def test_edges_carry_all_variables_between_two_steps():
    p = analyze(("step:a", "x = 1\ny = 2\nz = 3"), ("step:b", "s = x + y"))
    (edge,) = p.edges
    assert (edge.source, edge.target, edge.variables) == ("a", "b", ("x", "y"))


# -- parameters -----------------------------------------------------------------------------


def test_parameters_are_bound_not_data_edges():
    p = analyze(
        ("parameters", "lr = 0.1\nepochs = 3"),
        ("step:a", "x = lr * epochs"),
        ("step:b", "y = x + lr"),
    )
    assert step(p, "a").parameters == ("epochs", "lr")
    assert reads(p, "a") == {}
    assert step(p, "b").parameters == ("lr",)
    assert reads(p, "b") == {"x": "a"}
    assert [(e.source, e.target, e.variables) for e in p.edges] == [("a", "b", ("x",))]
    assert [(q.name, q.type, q.default) for q in p.parameters] == [
        ("lr", "float", 0.1),
        ("epochs", "int", 3),
    ]


def test_kale_reassigned_parameter_flows_as_data_after_the_step():
    p = analyze(
        ("parameters", "lr = 0.1\nepochs = 3"),
        ("step:a", "print(lr)"),
        ("step:s", "lr = lr * 2"),
        ("step:t", "print(lr, epochs)"),
        ("step:u", "print(epochs)"),
    )
    # Before S and in S itself, lr is the parameter.
    assert step(p, "a").parameters == ("lr",)
    assert step(p, "s").parameters == ("lr",)
    assert step(p, "s").writes == ("lr",)
    # After S, lr is S's value: a data edge; epochs is still a parameter.
    assert reads(p, "t") == {"lr": "s"}
    assert step(p, "t").parameters == ("epochs",)
    assert reads(p, "u") == {}
    assert edges(p) == {("s", "t")}
    (note,) = found(p, "CP203")
    assert (note.severity, note.step, note.variable, note.cell) == ("info", "s", "lr", 2)


def test_parameter_mutated_in_place_is_exported():
    p = analyze(
        ("parameters", "layers = [8, 4]"),
        ("step:a", "layers.append(2)"),
        ("step:b", "print(layers)"),
    )
    assert step(p, "a").mutates == ("layers",)
    assert reads(p, "b") == {"layers": "a"}
    assert [d.code for d in p.diagnostics] == ["CP203"]


# -- after: edges ---------------------------------------------------------------------------


def test_explicit_after_edge_is_kept_without_data():
    p = analyze(("step:a", "x = 1"), (["step:b", "after:a"], "y = 2"))
    (edge,) = p.edges
    assert (edge.source, edge.target, edge.variables, edge.explicit) == ("a", "b", (), True)
    assert step(p, "b").upstream == ("a",)


def test_after_edge_in_step_header():
    p = analyze(("step:a", "x = 1"), ("step:b", "y = 2"), "%%step c --after a b\nz = 3")
    assert step(p, "c").upstream == ("a", "b")
    assert all(e.explicit for e in p.edges)


def test_data_edge_not_named_by_after_tags_is_added_and_reported():
    p = analyze(
        ("step:a", "x = 1"),
        ("step:b", "y = 2"),
        (["step:c", "after:b"], "z = x + y"),
    )
    assert step(p, "c").upstream == ("a", "b")
    (note,) = found(p, "CP402")
    assert (note.severity, note.step, note.cell) == ("info", "c", 2)
    assert "'a'" in note.message


def test_unknown_after_name_is_an_error_with_a_suggestion():
    p = analyze(("step:load", "x = 1"), (["step:train", "after:laod"], "y = 2"))
    (error,) = found(p, "CP105")
    assert (error.severity, error.cell, error.step) == ("error", 1, "train")
    assert "'laod'" in error.message
    assert error.hint == "did you mean 'load'?"
    assert p.edges == ()


def test_cycle_through_after_is_an_error_naming_the_loop():
    p = analyze(
        (["step:a", "after:c"], "x = 1"),
        ("step:b", "y = x"),
        ("step:c", "z = y"),
    )
    (error,) = found(p, "CP401")
    assert error.severity == "error"
    # Arrows follow the edges: a feeds b, b feeds c, c runs before a.
    assert error.message.endswith("a → b → c → a")
    with pytest.raises(PipelineError):
        api.compile_spec(notebook((["step:a", "after:b"], "x = 1"), ("step:b", "y = x")))


def test_self_after_is_ignored():
    p = analyze((["step:a", "after:a"], "x = 1"))
    assert p.edges == ()
    assert codes(p) == []


# -- undefined names and positions ---------------------------------------------------------


def test_undefined_name_points_at_cell_and_line():
    p = analyze(
        ("md", "# Title"),
        ("step:a", "x = 1"),
        ("step:b", "y = x\n\nz = y + missing"),
    )
    (error,) = found(p, "CP301")
    assert (error.cell, error.line, error.step, error.variable) == (2, 3, "b", "missing")


def test_undefined_name_line_counts_the_step_header():
    p = analyze(("step:a", "x = 1"), "%%step b\ny = 2\nz = undefined_thing + y")
    assert errors(p) == [("CP301", 1, 3, "undefined_thing")]


def test_undefined_name_suggests_a_close_name():
    p = analyze(("step:a", "train_df = 1"), ("step:b", "print(trian_df)"))
    (error,) = found(p, "CP301")
    assert error.hint == "did you mean 'train_df'?"


def test_name_defined_only_later_is_undefined():
    p = analyze(("step:a", "print(later)"), ("step:b", "later = 1"))
    assert errors(p) == [("CP301", 0, 1, "later")]
    assert p.edges == ()


def test_builtins_and_ipython_names_are_not_undefined():
    p = analyze(("step:a", "print(len([1]))\ndisplay(1)\nget_ipython()\nxs = sorted({1})"))
    assert errors(p) == []


# -- step structure -------------------------------------------------------------------------


def test_empty_step_is_an_error():
    p = analyze(("step:a", "x = 1"), ("step:b", "# just a comment\n"), ("step:c", "print(x)"))
    (error,) = found(p, "CP107")
    assert (error.severity, error.cell, error.step) == ("error", 1, "b")
    assert reads(p, "c") == {"x": "a"}


def test_step_names_that_collide_on_kubernetes():
    p = analyze(("step:a-b", "x = 1"), ("step:a_b", "y = 1"))
    (error,) = found(p, "CP106")
    assert (error.cell, error.step) == (1, "a_b")
    assert "'a-b'" in error.message


def test_invalid_step_name_is_reported_and_normalized():
    p = analyze(("step:A", "x = 1"), ("step:b", "y = x"))
    (error,) = found(p, "CP101")
    assert error.cell == 0
    assert [s.name for s in p.steps] == ["a", "b"]
    assert reads(p, "b") == {"x": "a"}


def test_cells_of_the_same_step_anywhere_form_one_step():
    p = analyze(
        ("step:a", "x = 1"),
        ("step:b", "y = 2"),
        ("step:a", "w = x * 2"),
        ("step:c", "print(w, y)"),
    )
    assert [(s.name, [i for i, _ in s.cells]) for s in p.steps] == [
        ("a", [0, 2]),
        ("b", [1]),
        ("c", [3]),
    ]
    assert step(p, "a").writes == ("w", "x")
    assert reads(p, "a") == {}
    assert reads(p, "c") == {"w": "a", "y": "b"}
    assert codes(p) == []


def test_untagged_cells_join_the_step_above():
    p = analyze(("step:a", "x = 1"), "y = x + 1", ("step:b", "print(y)"))
    assert [i for i, _ in step(p, "a").cells] == [0, 1]
    assert step(p, "a").writes == ("x", "y")
    assert reads(p, "b") == {"y": "a"}


def test_metrics_cell_runs_in_the_step_above():
    p = analyze(
        ("step:train", "acc = 0.9\nloss = 0.1"),
        ("metrics", "print(acc)\nprint(loss)"),
        ("step:report", "print(acc)"),
    )
    assert [s.name for s in p.steps] == ["train", "report"]
    assert [i for i, _ in step(p, "train").cells] == [0, 1]
    assert step(p, "train").metrics == ("acc", "loss")
    assert p.metrics == (("acc", "train"), ("loss", "train"))
    assert reads(p, "report") == {"acc": "train"}


def test_skipped_cells_are_not_analyzed():
    p = analyze(("step:a", "x = 1"), ("skip", "x = undefined + 1"), ("step:b", "print(x)"))
    assert reads(p, "b") == {"x": "a"}
    assert errors(p) == []


def test_kale_tags_are_aliases():
    p = analyze(
        ("pipeline-parameters", "n = 3"),
        ("block:load", "data = list(range(n))"),
        (["block:train", "prev:load"], "model = sum(data)"),
        ("pipeline-metrics", "print(model)"),
    )
    assert [s.name for s in p.steps] == ["load", "train"]
    assert step(p, "load").parameters == ("n",)
    assert reads(p, "train") == {"data": "load"}
    (edge,) = p.edges
    assert (edge.source, edge.target, edge.explicit) == ("load", "train", True)
    assert p.metrics == (("model", "train"),)


def test_shared_cells_above_the_first_step_are_not_a_step():
    p = analyze(
        "import math\n%matplotlib inline\n\ndef f(v):\n    return math.sqrt(v)",
        ("step:a", "x = f(4)"),
    )
    assert [s.name for s in p.steps] == ["a"]
    a = step(p, "a")
    assert a.imports == ("import math",)
    assert a.setup == ("get_ipython().run_line_magic('matplotlib', 'inline')",)


def test_compile_spec_carries_the_linked_edges():
    spec = api.compile_spec(
        notebook(("step:a", "x = 1"), ("step:b", "y = x"), (["step:c", "after:a"], "z = 1"))
    ).to_dict()
    assert [(e["from"], e["to"], e["variables"], e["explicit"]) for e in spec["edges"]] == [
        ("a", "b", ["x"], False),
        ("a", "c", [], True),
    ]
    assert spec["steps"][1]["reads"] == {"x": "a"}


def test_read_before_a_later_step_assigns_it_says_where():
    """Kale-merged cells: the second 'load' cell reads what step 'other' (between) makes."""
    from cellpipe import api
    from tests.conftest import make_nb

    nb = make_nb(("block:load", "a = 1"), ("block:other", "b = a + 1"), ("block:load", "c = b"))
    [found] = [d for d in api.analyze(nb).diagnostics if d.code == "CP404"]
    assert found.cell == 2 and found.step == "load" and found.variable == "b"
    assert found.severity == "error"
    assert found.message.startswith("step 'load' (cells 1, 3) cannot run where its first cell "
                                    "puts it: cell 3 reads 'b' from step 'other', which needs "
                                    "step 'load' itself")
    assert found.loop == (("load", "other", ("a",)), ("other", "load", ("b",)))
    assert found.to_dict()["loop"] == [{"from": "load", "to": "other", "variables": ["a"]},
                                       {"from": "other", "to": "load", "variables": ["b"]}]
    assert "rename the cells from cell 3 on" in found.hint
    # with no loop (other does not need load), it says which cell reads what, between them
    nb = make_nb(("block:load", "a = 1"), ("block:other", "b = 2"), ("block:load", "c = b"))
    [found] = [d for d in api.analyze(nb).diagnostics if d.code == "CP404"]
    assert found.loop == () and "between its cells" in found.message


def test_deep_call_graph_replays_every_definition_once():
    """40 helpers each calling the previous two: all replayed, each once, GAIN read once."""
    from cellpipe import api
    from tests.conftest import make_nb

    lines = []
    for k in range(40):
        calls = " + ".join(f"g{j}(v - 1)" for j in (k - 1, k - 2) if j >= 0) or "GAIN"
        lines += [f"def g{k}(v):", f"    return v if v < 1 else {calls}", ""]
    nb = make_nb("\n".join(lines), ("step:gain", "GAIN = 2"), ("step:use", "x = g39(3)"))
    step = api.analyze(nb).step("use")
    assert step.reads == {"GAIN": "gain"}
    assert [d.split("(")[0] for d in step.definitions] == [f"def g{k}" for k in range(40)]


def test_global_random_state_is_threaded_through_the_steps_that_draw():
    from cellpipe import api
    from tests.conftest import make_nb

    nb = make_nb(
        "import numpy as np\nnp.random.seed(0)",
        ("step:a", "x = np.random.rand(3)"),
        ("step:b", "y = x * 2"),
        ("step:c", "z = np.random.normal(size=3) + y"),
    )
    pipeline = api.analyze(nb)
    [info] = [d for d in pipeline.diagnostics if d.code == "CP308"]
    assert info.severity == "info" and info.step == "c"
    assert (info.cell, info.line) == (3, 1)
    assert "steps a, c share the global random state" in info.message
    # the seed runs once, in the first step that draws; c continues from a's state
    assert pipeline.step("a").setup == ("np.random.seed(0)",)
    assert pipeline.step("c").setup == ()
    assert pipeline.step("c").reads["(random state)"] == "a"
    assert pipeline.step("a").random_state == "draws"
    assert pipeline.step("b").setup == () and pipeline.step("b").random_state == ""
    assert "(random state)" not in pipeline.step("b").reads
    # one step drawing random numbers: nothing shared, no info
    single = make_nb("import numpy as np\nnp.random.seed(0)", ("step:a", "x = np.random.rand(3)"),
                     ("step:b", "y = x * 2"))
    assert "CP308" not in [d.code for d in api.analyze(single).diagnostics]


def test_parallel_branches_reusing_a_loop_variable_stay_independent():
    """`for i in …` in two branches must not make the second read `i` from the first."""
    from cellpipe import api
    from tests.conftest import make_nb

    nb = make_nb(("step:size", "n = 3"),
                 ("step:left", "a = 0\nfor i in range(n):\n    a += i"),
                 ("step:right", "b = 0\nfor i in range(n):\n    b += i * 2"),
                 ("step:after", "last = [7]\nfor j in last:\n    pass\nw = j + i"))
    pipeline = api.analyze(nb)
    assert pipeline.step("right").reads == {"n": "size"}
    assert pipeline.step("right").upstream == ("size",)
    # after a loop its variable is only maybe rebound: the earlier value is still read
    assert pipeline.step("after").reads == {"i": "right"}
