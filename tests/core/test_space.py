"""The search-space syntax shared by `cellpipe tune` and the Katib target."""

from __future__ import annotations

import pytest

from cellpipe.core.space import Dimension, SpaceError, parse_dimension, parse_space
from cellpipe.core.spec import Parameter

PARAMETERS = (
    Parameter(name="lr", type="float", default=0.01, cell=0, line=1),
    Parameter(name="depth", type="int", default=3, cell=0, line=2),
    Parameter(name="kernel", type="str", default="rbf", cell=0, line=3),
    Parameter(name="scale", type="bool", default=False, cell=0, line=4),
)


def test_each_form_reads_as_its_dimension() -> None:
    found = parse_space(["lr=loguniform(1e-4, 1e-1)", "depth=int(2, 8, 2)",
                         "kernel=choice(rbf, linear, 'poly')", "scale=choice(true, false)"],
                        PARAMETERS)
    assert found == [
        Dimension("lr", "float", 1e-4, 1e-1, log=True, text="loguniform(1e-4, 1e-1)"),
        Dimension("depth", "int", 2, 8, step=2, text="int(2, 8, 2)"),
        Dimension("kernel", "categorical", choices=("rbf", "linear", "poly"),
                  text="choice(rbf, linear, 'poly')"),
        Dimension("scale", "categorical", choices=(True, False), text="choice(true, false)"),
    ]
    assert found[1].grid() == [2, 4, 6, 8]
    assert found[2].grid() == ["rbf", "linear", "poly"]


def test_a_mapping_and_a_list_are_the_yaml_forms() -> None:
    found = parse_space({"lr": "uniform(0, 1)", "depth": [2, 3, 5]}, PARAMETERS)
    assert found[0].kind == "float" and (found[0].low, found[0].high) == (0.0, 1.0)
    assert found[1].choices == (2, 3, 5)
    assert found[1].to_dict() == {"name": "depth", "kind": "categorical",
                                  "text": "choice(2, 3, 5)", "choices": [2, 3, 5]}


@pytest.mark.parametrize(("name", "text", "words"), [
    ("lr", "gauss(0, 1)", "unknown search space 'gauss'"),
    ("lr", "uniform(1, 0)", "LOW must be below HIGH"),
    ("lr", "loguniform(0, 1)", "log scale needs LOW above 0"),
    ("lr", "uniform(a, 1)", "'a' is not a number"),
    ("depth", "uniform(1, 5)", "is an int; uniform(1, 5) draws floats"),
    ("depth", "int(1.5, 5)", "not a whole number"),
    ("depth", "choice(1, two)", "is an int; 'two' is not"),
    ("kernel", "int(1, 3)", "is a str"),
    ("rate", "uniform(0, 1)", "no parameter 'rate'"),
    ("lr", "uniform 0 1", "cannot read"),
])
def test_a_space_that_cannot_feed_the_notebook_is_refused(name: str, text: str,
                                                          words: str) -> None:
    with pytest.raises(SpaceError) as caught:
        parse_dimension(name, text, PARAMETERS)
    assert words in caught.value.message
    assert caught.value.hint
    assert caught.value.variable == name


def test_a_continuous_range_has_no_grid_and_an_empty_space_is_refused() -> None:
    with pytest.raises(SpaceError, match="continuous range"):
        parse_dimension("lr", "uniform(0, 1)", PARAMETERS).grid()
    with pytest.raises(SpaceError, match="empty"):
        parse_space([], PARAMETERS)
    with pytest.raises(SpaceError, match="twice"):
        parse_space(["lr=uniform(0, 1)", "lr=uniform(0, 2)"], PARAMETERS)


def test_suggest_draws_from_an_optuna_trial() -> None:
    import optuna

    space = parse_space(["lr=loguniform(1e-4, 1e-1)", "depth=int(2, 8)",
                         "kernel=choice(rbf, linear)"], PARAMETERS)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    drawn = {d.name: d.suggest(trial) for d in space}
    assert 1e-4 <= drawn["lr"] <= 1e-1
    assert isinstance(drawn["depth"], int) and 2 <= drawn["depth"] <= 8
    assert drawn["kernel"] in ("rbf", "linear")
