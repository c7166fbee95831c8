"""The contract on notebooks built here: each, run as a pipeline, ends with the values it
ends with when nbclient runs it top to bottom (long chains, a diamond with an in-place
mutation, functions reading globals, parameters and metrics, aliased mutation)."""

from __future__ import annotations

import nbformat
import pytest

from cellpipe import api
from tests.conftest import make_nb
from tests.engines.faithful import assert_faithful

pytest.importorskip("nbclient", reason="nbclient is installed by `.[test]`")


def long_chain(length=20):
    cells = [("step:s00", "v00 = 0")]
    for i in range(1, length):
        cells.append((f"step:s{i:02d}", f"v{i:02d} = v{i - 1:02d} + {i}\nlast = v{i:02d}"))
    return make_nb(*cells)


def diamond_with_mutation():
    return make_nb(
        ("step:load", "import pandas as pd\n"
         "df = pd.DataFrame({'a': [1, 2, 3], 'b': [0.5, 1.5, 2.5]})"),
        ("step:inspect", "columns_before = list(df.columns)\nrows = len(df)"),
        ("step:feature", "df['x'] = df['a'] * df['b']\ndf.loc[0, 'a'] = 10"),
        ("step:join", "summary = {'cols': columns_before, 'rows': rows,\n"
         "           'x_sum': float(df['x'].sum()), 'a0': int(df['a'][0])}"),
    )


def helper_reading_global():
    return make_nb(
        ("step:config", "factor = 3\noffset = 0.5"),
        "def scale(values):\n    return [v * factor + offset for v in values]",
        ("step:data", "raw = [1, 2, 3]"),
        ("step:apply", "scaled = scale(raw)\nnested = [scale([v]) for v in raw]"),
    )


def parameters_and_metrics():
    return make_nb(
        ("md", "# Train"),
        ("parameters", "lr = 0.25\nepochs = 3\nname = 'run'"),
        ("step:train", "weights = [0.0]\nfor epoch in range(epochs):\n"
         "    weights.append(weights[-1] + lr * (1 - weights[-1]))\nhistory = list(weights)"),
        ("step:evaluate", "loss = 1 - weights[-1]\nlabel = f'{name}-{epochs}'"),
        ("metrics", "final_loss = loss\nsteps_taken = epochs"),
    )


def aliased_mutation():
    return make_nb(
        ("step:load", "train = {'n': 1}\ntest = {'n': 2}"),
        ("step:prep", "data = [train, test]\nfor d in data:\n    d['doubled'] = d['n'] * 2"),
        ("step:use", "total = train['doubled'] + test['doubled']"),
    )


NOTEBOOKS = {
    "chain20": long_chain,
    "diamond": diamond_with_mutation,
    "helper": helper_reading_global,
    "params_metrics": parameters_and_metrics,
    "aliased": aliased_mutation,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_generated_notebook_pipeline_equals_top_to_bottom(name, tmp_path):
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(NOTEBOOKS[name](), path)
    run = assert_faithful(path, tmp_path)
    assert all(s["status"] == "succeeded" for s in run.steps.values()), run.steps
    if name == "params_metrics":
        assert run.metrics == {"final_loss": run.load("loss"), "steps_taken": 3}


def test_shapes_of_the_generated_pipelines():
    """The generated notebooks are the shapes the faithfulness test means them to be."""
    chain = api.compile_spec(long_chain()).to_dict()
    assert len(chain["steps"]) == 20
    assert all(s["upstream"] == [chain["steps"][i]["name"]]
               for i, s in enumerate(chain["steps"][1:]))

    diamond = {s["name"]: s for s in api.compile_spec(diamond_with_mutation()).to_dict()["steps"]}
    assert diamond["inspect"]["upstream"] == ["load"]
    assert diamond["feature"]["upstream"] == ["load"]
    assert sorted(diamond["join"]["upstream"]) == ["feature", "inspect"]
    assert diamond["join"]["reads"]["df"] == "feature"

    helper = {s["name"]: s for s in api.compile_spec(helper_reading_global()).to_dict()["steps"]}
    assert helper["apply"]["reads"]["factor"] == "config"

    params = api.compile_spec(parameters_and_metrics()).to_dict()
    assert [p["name"] for p in params["parameters"]] == ["lr", "epochs", "name"]
    assert [m["name"] for m in params["metrics"]] == ["final_loss", "steps_taken"]
