"""The ``%cellpipe params`` form, driven from code: widgets by type, typed values,
``_cellpipe_params``, per-field errors."""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe_kernel.params_form import PARAMS_VARIABLE, ParamsForm
from tests.conftest import write_nb

PARAMETERS_CELL = """\
lr = 0.1
epochs = 3
name = "baseline"
shuffle = True
layers = [64, 32]
options = {"dropout": 0.5}
seed = None
"""


@pytest.fixture
def parameters(tmp_path):
    """The parameters as the magic passes them: from the analyzer of a saved notebook."""
    path = write_nb(tmp_path, ("parameters", PARAMETERS_CELL), ("step:a", "x = lr * epochs"))
    return [{"name": p.name, "type": p.type, "default": p.default}
            for p in api.lint(path, environment=False).pipeline.parameters]


def test_one_widget_per_parameter_by_type_prefilled_with_the_defaults(parameters):
    form = ParamsForm(parameters, {})
    kinds = {name: type(field) for name, field in form.fields.items()}
    assert kinds == {"lr": widgets.FloatText, "epochs": widgets.IntText, "name": widgets.Text,
                     "shuffle": widgets.Checkbox, "layers": widgets.Textarea,
                     "options": widgets.Textarea, "seed": widgets.Text}
    shown = {name: field.value for name, field in form.fields.items()}
    assert shown == {"lr": 0.1, "epochs": 3, "name": "baseline", "shuffle": True,
                     "layers": "[64, 32]", "options": '{"dropout": 0.5}', "seed": "null"}
    assert all(field.description == name for name, field in form.fields.items())


def test_values_are_typed(parameters):
    form = ParamsForm(parameters, {})
    form.fields["lr"].value = 0.25
    form.fields["layers"].value = "[128]"
    form.fields["options"].value = '{"dropout": 0.1, "norm": true}'
    form.fields["seed"].value = "7"
    assert form.values() == {"lr": 0.25, "epochs": 3, "name": "baseline", "shuffle": True,
                             "layers": [128], "options": {"dropout": 0.1, "norm": True},
                             "seed": 7}


def test_apply_stores_the_values_and_confirms(parameters):
    user_ns: dict = {}
    form = ParamsForm(parameters, user_ns)
    form.fields["epochs"].value = 10
    form.fields["shuffle"].value = False
    assert form.apply() is True
    assert user_ns[PARAMS_VARIABLE] == {"lr": 0.1, "epochs": 10, "name": "baseline",
                                        "shuffle": False, "layers": [64, 32],
                                        "options": {"dropout": 0.5}, "seed": None}
    assert "epochs=10" in form.status.value and "shuffle=False" in form.status.value
    assert "%cellpipe run" in form.status.value
    assert all(label.value == "" for label in form.errors.values())


def test_the_button_applies(parameters):
    user_ns: dict = {}
    form = ParamsForm(parameters, user_ns)
    form.fields["name"].value = "wide"
    form.apply_button.click()
    assert user_ns[PARAMS_VARIABLE]["name"] == "wide"


def test_a_bad_value_is_shown_beside_its_field_and_nothing_is_stored(parameters):
    user_ns = {PARAMS_VARIABLE: {"epochs": 5}}
    form = ParamsForm(parameters, user_ns)
    form.fields["layers"].value = "[1, 2"  # not JSON, not a list
    form.fields["options"].value = "[1, 2]"  # a list where a dict is declared
    assert form.apply() is False
    assert user_ns[PARAMS_VARIABLE] == {"epochs": 5}
    assert "layers" in form.errors["layers"].value
    assert "options" in form.errors["options"].value and "dict" in form.errors["options"].value
    assert form.errors["lr"].value == "" and form.errors["name"].value == ""
    assert "2 value(s) to fix" in form.status.value
    with pytest.raises(CellpipeError, match="options"):
        form.values()
    form.fields["layers"].value = "[1, 2]"
    form.fields["options"].value = "{}"
    assert form.apply() is True
    assert form.errors["layers"].value == "" and form.errors["options"].value == ""


def test_the_form_starts_from_the_values_in_use_and_resets_to_the_notebook(parameters):
    user_ns = {PARAMS_VARIABLE: {"lr": 0.5, "epochs": "many", "gone": 1}}
    form = ParamsForm(parameters, user_ns)
    assert form.fields["lr"].value == 0.5
    assert form.fields["epochs"].value == 3  # an unusable value: the notebook's instead
    form.reset()
    assert form.fields["lr"].value == 0.1
    assert form.apply() is True
    assert "gone" not in user_ns[PARAMS_VARIABLE]  # only the notebook's parameters


def test_the_form_displays_as_a_widget(parameters):
    bundle = ParamsForm(parameters, {})._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
