"""Cutting notebooks into steps; the parameters and metrics cells."""

from __future__ import annotations

import pytest

from cellpipe import api
from tests.conftest import make_nb


def steps(nb, **kw):
    return [(s.name, [i for i, _ in s.cells]) for s in api.analyze(nb, **kw).steps]


def codes(nb, **kw):
    return [d.code for d in api.analyze(nb, **kw).diagnostics]


def test_untagged_cells_join_the_step_above():
    nb = make_nb(("step:a", "x = 1"), "y = x", ("step:b", "z = y"))
    assert steps(nb) == [("a", [0, 1]), ("b", [2])]


def test_cells_above_first_step_with_only_imports_and_defs_are_not_a_step():
    nb = make_nb(
        "import math\n\ndef f(v):\n    return math.sqrt(v)",
        "%matplotlib inline",
        ("step:a", "x = f(4)"),
    )
    pipeline = api.analyze(nb)
    assert [s.name for s in pipeline.steps] == ["a"]
    step = pipeline.step("a")
    assert step.imports == ("import math",)
    assert step.definitions[0].startswith("def f(v):")
    assert step.setup == ("get_ipython().run_line_magic('matplotlib', 'inline')",)


def test_cells_above_first_step_with_computation_are_a_step():
    nb = make_nb("import math\nbase = 10", ("step:a", "x = base * 2"))
    pipeline = api.analyze(nb)
    assert [s.name for s in pipeline.steps] == ["setup", "a"]
    assert pipeline.step("a").reads == {"base": "setup"}


def test_same_step_name_anywhere_is_one_step():
    nb = make_nb(
        ("block:load", "df = [1]"), ("block:other", "n = len(df)"), ("block:load", "df2 = df + [2]")
    )
    assert steps(nb) == [("load", [0, 2]), ("other", [1])]


def test_skip_cells_are_left_out():
    nb = make_nb(("step:a", "x = 1"), ("skip", "print(x)"), ("step:b", "y = x"))
    assert steps(nb) == [("a", [0]), ("b", [2])]


def test_split_headings_is_the_default_without_tags():
    nb = make_nb(
        ("md", "# Study"),
        "import math",
        ("md", "## Load the data"),
        "x = [1, 2]",
        ("md", "### detail (not a split)"),
        "y = len(x)",
        ("md", "## 2. Fit"),
        "z = y + 1",
    )
    assert steps(nb) == [("load-the-data", [3, 5]), ("fit", [7])]


def test_split_cells_and_none():
    nb = make_nb("import math", "x = 1", "y = x + 1")
    assert steps(nb, split="cells") == [("cell-2", [1]), ("cell-3", [2])]
    assert steps(nb, split="none") == [("notebook", [0, 1, 2])]


def test_split_is_ignored_with_tags():
    nb = make_nb(("step:a", "x = 1"))
    assert "CP109" in codes(nb, split="cells")


def test_parameters_are_typed_literals():
    nb = make_nb(
        (
            "parameters",
            "lr = 0.1\nepochs = 3\nshift = -2.5\nname = 'run'\nflag = True\n"
            "nothing = None\nlayers = [64, 32]\nopts = {'a': 1}\nalpha: float = 1\n",
        ),
        ("step:a", "x = lr * epochs"),
    )
    params = {p.name: (p.type, p.default) for p in api.analyze(nb).parameters}
    assert params == {
        "lr": ("float", 0.1),
        "epochs": ("int", 3),
        "shift": ("float", -2.5),
        "name": ("str", "run"),
        "flag": ("bool", True),
        "nothing": ("none", None),
        "layers": ("list", [64, 32]),
        "opts": ("dict", {"a": 1}),
        "alpha": ("float", 1.0),
    }
    assert api.analyze(nb).step("a").parameters == ("epochs", "lr")


def test_a_parameter_contradicting_its_annotation_is_an_error_with_cell_and_line():
    nb = make_nb("import math", ("parameters", "lr = 0.1\nn: int = 'x'"), ("step:a", "y = 1"))
    found = [d for d in api.analyze(nb).diagnostics if d.code == "CP202"]
    assert found and found[0].cell == 1 and found[0].line == 2
    assert found[0].severity == "error"


@pytest.mark.parametrize(
    ("source", "lines", "params", "code_names"),
    [
        ("lr = 0.1\nn = compute()", [2], ["lr"], ["n"]),
        ("t = (1, 2)\nepochs = 3", [1], ["epochs"], ["t"]),
        ("a = 2\nb = 3\n# derived\nn = a * b\nprint(f'n={n}')", [4, 5], ["a", "b"], ["n"]),
    ],
)
def test_parameters_cell_code_runs_in_place_as_part_of_the_next_step(
    source, lines, params, code_names
):
    """papermill's convention: literal assignments are parameters, the rest is code."""
    nb = make_nb("def compute():\n    return 7", ("parameters", source), ("step:a", "y = 1"))
    pipeline = api.analyze(nb)
    assert [p.name for p in pipeline.parameters] == params
    [warning] = [d for d in pipeline.diagnostics if d.code == "CP205"]
    assert warning.severity == "warning" and warning.cell == 1 and warning.line == lines[0]
    assert "as part of step 'a'" in warning.message
    assert not [d for d in pipeline.diagnostics if d.severity == "error"]
    step = pipeline.step("a")
    assert [index for index, _ in step.cells] == [1, 2]  # the parameters cell's code first
    assert set(code_names) <= set(step.writes)
    # the literal assignments are not run as code: they are bound from the run's values
    assert all(f"{p} =" not in step.sources[0] for p in params)


def test_metrics_cell_names_assignments_bare_names_and_prints():
    nb = make_nb(
        ("step:a", "acc = 0.9\nloss = 0.1\nf1 = 0.8"),
        ("metrics", "score = acc\nloss"),
        ("pipeline-metrics", "print(f1)"),
    )
    pipeline = api.analyze(nb)
    assert pipeline.metrics == (("score", "a"), ("loss", "a"), ("f1", "a"))
    assert [i for i, _ in pipeline.step("a").cells] == [0, 1, 2]


def test_metrics_cell_with_no_names_warns():
    assert "CP211" in codes(make_nb(("step:a", "x = 1"), ("metrics", "print('done')")))


def test_empty_step_is_an_error():
    nb = make_nb(("step:a", "x = 1"), ("step:b", "# nothing yet\n"))
    found = [d for d in api.analyze(nb).diagnostics if d.code == "CP107"]
    assert found and found[0].step == "b" and found[0].cell == 1


def test_install_lines_are_not_run_and_become_requirements():
    nb = make_nb(("step:a", "!pip install -q xgboost==2.0 lightgbm\nx = 1"))
    pipeline = api.analyze(nb)
    step = pipeline.step("a")
    assert step.requirements == ("xgboost==2.0", "lightgbm")
    assert "pip install" not in step.sources[0]
    assert "CP305" in [d.code for d in pipeline.diagnostics]
