"""What the cluster UIs publish, as the notebook says it: ``model:NAME`` and classification
metrics in a metrics cell (a dict with a confusion matrix's or an ROC curve's keys)."""

from __future__ import annotations

import pytest

from cellpipe import api
from cellpipe.core.annotations import parse_cell
from cellpipe.core.spec import PipelineSpec
from tests.conftest import make_nb

FIT = "from sklearn.linear_model import LogisticRegression\nimport numpy as np"


def parse(tags=(), source="x = 1\n"):
    diagnostics = []
    note = parse_cell(tuple(tags), source, 0, diagnostics)
    return note, diagnostics


def test_model_tags_add_up_and_the_header_takes_model_options():
    note, diags = parse(["step:train", "model:clf", "model:scaler", "model:clf"])
    assert (note.settings, diags) == ({"model": ["clf", "scaler"]}, [])
    note, diags = parse(source="%%step train --model clf --model=scaler\nclf = 1\n")
    assert (note.step, note.settings, diags) == ("train", {"model": ["clf", "scaler"]}, [])


@pytest.mark.parametrize("tag", ["model:", "model:my model", "model:2fast", "model:a.b"])
def test_a_model_tag_that_names_no_variable_is_cp102(tag):
    note, diags = parse(["step:train", tag])
    assert [d.code for d in diags] == ["CP102"]
    assert "model" not in note.settings
    assert "model:clf" in diags[0].hint


def test_models_of_a_step_reach_the_spec_and_round_trip():
    nb = make_nb(FIT, (["step:train", "model:clf"], "clf = LogisticRegression()"),
                 ("model:scaler", "scaler = np.ones(3)\nclf.fit(np.eye(3), [0, 1, 1])"))
    spec = api.compile_spec(nb)
    (train,) = spec.steps
    assert train.settings.models == ("clf", "scaler")
    assert train.settings.to_dict() == {"model": ["clf", "scaler"]}
    assert PipelineSpec.from_json(spec.to_json()) == spec


def test_a_model_the_step_does_not_assign_is_an_error_with_a_suggestion():
    nb = make_nb(FIT, (["step:train", "model:clff"], "clf = LogisticRegression()"))
    (diagnostic,) = [d for d in api.lint(nb).diagnostics if d.code == "CP312"]
    assert diagnostic.severity == "error"
    assert (diagnostic.step, diagnostic.variable, diagnostic.cell) == ("train", "clff", 1)
    assert diagnostic.hint == "did you mean 'clf'?"


def test_a_model_read_from_an_earlier_step_is_a_warning_naming_its_producer():
    nb = make_nb(FIT, ("step:train", "clf = LogisticRegression().fit(np.eye(3), [0, 1, 1])"),
                 (["step:score", "model:clf"], "predicted = clf.predict(np.eye(3))"))
    (diagnostic,) = [d for d in api.lint(nb).diagnostics if d.code == "CP312"]
    assert diagnostic.severity == "warning"
    assert "step 'train' made" in diagnostic.message
    assert api.compile_spec(nb).step("score").settings.models == ("clf",)


def test_classification_metrics_are_charts_not_metrics():
    nb = make_nb(
        FIT, ("step:evaluate", "labels = ['no', 'yes']\nmatrix = [[5, 1], [2, 7]]"),
        ("metrics", "accuracy = 0.8\n"
                    "confusion = {'labels': labels, 'matrix': matrix}\n"
                    "roc = dict(fpr=[0, 1], tpr=[0, 1], thresholds=[1, 0])\n"
                    "almost = {'labels': labels, 'matrix': matrix, 'title': 'x'}"),
    )
    spec = api.compile_spec(nb)
    step = spec.step("evaluate")
    assert dict(step.charts) == {"confusion": "confusion_matrix", "roc": "roc_curve"}
    assert step.metrics == ("accuracy", "almost")  # other dicts stay metrics (not reported)
    assert [m.name for m in spec.metrics] == ["accuracy", "almost"]
    assert spec.to_dict()["steps"][0]["classification"] == {
        "confusion": "confusion_matrix", "roc": "roc_curve"}
    assert PipelineSpec.from_json(spec.to_json()) == spec
    assert "CP211" not in [d.code for d in api.lint(nb).diagnostics]


def test_a_metrics_cell_with_only_a_chart_names_a_metric():
    nb = make_nb(("step:evaluate", "m = [[1]]"), ("metrics", "cm = {'labels': ['a'], 'matrix': m}"))
    assert "CP211" not in [d.code for d in api.lint(nb).diagnostics]
    assert api.compile_spec(nb).step("evaluate").metrics == ()


def test_steps_without_models_or_charts_write_the_spec_they_wrote_before():
    nb = make_nb(("step:a", "x = 1"), ("metrics", "x"))
    step = api.compile_spec(nb).to_dict()["steps"][0]
    assert "classification" not in step
    assert "model" not in step["settings"]
