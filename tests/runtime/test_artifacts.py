"""What a step leaves for a cluster's UI (``--outputs-dir DIR --artifacts``): its report as
HTML, its figures, its classification metrics and its models, under the names of
``core.layout.StepOutputs``."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import joblib
import numpy as np
import pytest

from cellpipe import api
from cellpipe.core.layout import StepLayout, StepOutputs
from cellpipe.marshal import open_store
from cellpipe.runtime import report as report_module
from cellpipe.runtime.artifacts import classification_values
from tests.conftest import ROOT, make_nb, write_nb

IMPORTS = ("import matplotlib.pyplot as plt\nimport numpy as np\n"
           "from sklearn.datasets import load_iris\n"
           "from sklearn.linear_model import LogisticRegression\n"
           "from sklearn.metrics import accuracy_score, confusion_matrix, roc_curve")
TRAIN = ("iris = load_iris()\n"
         "clf = LogisticRegression(max_iter=500).fit(iris.data, iris.target)\n"
         "predicted = clf.predict(iris.data)\n"
         "fpr, tpr, thresholds = roc_curve(iris.target == 0, clf.predict_proba(iris.data)[:, 0])\n"
         "fig, ax = plt.subplots()\n"
         "ax.scatter(iris.data[:, 0], iris.data[:, 1], c=predicted)\n"
         "plt.show()\n"
         "print('fitted on', len(iris.data), 'flowers')")
METRICS = ("accuracy = accuracy_score(iris.target, predicted)\n"
           "confusion = {'labels': iris.target_names, "
           "'matrix': confusion_matrix(iris.target, predicted)}\n"
           "roc = {'fpr': fpr, 'tpr': tpr, 'thresholds': thresholds}")


def run_step(tmp_path, *cells, step="train", artifacts=True):
    tmp_path.mkdir(exist_ok=True)
    path = write_nb(tmp_path, *cells)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.compile_spec(path).to_json())
    argv = [sys.executable, "-m", "cellpipe.runtime", "--spec", str(spec_path), "--step", step,
            "--store", str(tmp_path / "store"), "--step-dir", str(tmp_path / step),
            "--outputs-dir", str(tmp_path / "outputs")]
    done = subprocess.run(argv + (["--artifacts"] if artifacts else []), capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT / "src")}, timeout=300,
                          cwd=tmp_path)
    result = json.loads(StepLayout(tmp_path / step).result.read_text())
    return done, result, StepOutputs(tmp_path / "outputs")


def test_a_classifier_step_leaves_its_report_figures_charts_and_model(tmp_path):
    done, result, outputs = run_step(tmp_path, IMPORTS, (["step:train", "model:clf"], TRAIN),
                                     ("metrics", METRICS))
    assert done.returncode == 0, done.stderr
    assert result["artifacts"] == {"report": "nbconvert", "figures": 1,
                                   "classification": ["confusion", "roc"]}
    page = outputs.report.read_text()
    assert "fitted on 150 flowers" in page and "<html" in page
    png = outputs.figure(1).read_bytes()
    assert png.startswith(b"\x89PNG")
    markdown = outputs.figures_page.read_text()
    assert markdown.startswith("# Figures of step `train`")
    assert f"(data:image/png;base64,{base64.b64encode(png).decode()})" in markdown
    charts = json.loads(outputs.classification.read_text())
    assert charts["confusion"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert [sum(row) for row in charts["confusion"]["matrix"]] == [50, 50, 50]
    roc = charts["roc"]
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"]) > 2
    assert all(np.isfinite(roc["thresholds"]))  # scikit-learn's first threshold is inf
    assert result["classification"] == charts
    assert json.loads(outputs.metrics.read_text()) == {"accuracy": pytest.approx(0.973, 1e-3)}
    # the model: a store of its own, marshalled as the run's store does it
    assert result["models"]["clf"]["format"] == "joblib"
    model = open_store(str(outputs.model("clf"))).load("train", "clf")
    data = open_store(str(tmp_path / "store")).load("train", "iris").data
    assert (model.predict(data) == open_store(str(tmp_path / "store"))
            .load("train", "predicted")).all()
    assert type(joblib.load(outputs.model("clf") / "train" / "clf.joblib")).__name__ == \
        "LogisticRegression"


def test_without_artifacts_only_the_metrics_and_the_charts_in_the_result(tmp_path):
    done, result, outputs = run_step(tmp_path, IMPORTS, (["step:train", "model:clf"], TRAIN),
                                     ("metrics", METRICS), artifacts=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in outputs.path.iterdir()) == ["accuracy", "metrics.json"]
    assert set(result["classification"]) == {"confusion", "roc"}
    assert "models" not in result and "artifacts" not in result


def test_a_step_without_figures_says_so_and_a_bad_chart_is_a_warning(tmp_path):
    done, result, outputs = run_step(
        tmp_path, ("step:train", "labels = ['a', 'b']\nprint('no plot here')"),
        ("metrics", "cm = {'labels': labels, 'matrix': [[1, 2, 3]]}"))
    assert done.returncode == 0, done.stderr
    assert "Step `train` displayed no figures." in outputs.figures_page.read_text()
    assert not outputs.figures.exists()
    assert json.loads(outputs.classification.read_text()) == {}
    (warning,) = result["warnings"]
    assert warning["variable"] == "cm" and "2 labels need a 2×2 matrix" in warning["message"]


def test_a_model_left_unassigned_on_a_branch_is_a_warning_not_a_failure(tmp_path):
    done, result, outputs = run_step(
        tmp_path, (["step:train", "model:clf"], "if False:\n    clf = 1\nx = 2"))
    assert done.returncode == 0, done.stderr
    assert result["models"] == {}
    assert result["warnings"][0]["message"] == "model 'clf' of step 'train' was not assigned"
    assert not outputs.model("clf").exists()


def test_artifacts_need_an_outputs_dir(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cellpipe.runtime", "--spec", "s.json",
                           "--step", "a", "--store", "st", "--step-dir", "d", "--artifacts"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src")},
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "--artifacts needs --outputs-dir" in done.stderr


def test_without_nbconvert_the_report_is_a_plain_page_with_the_same_outputs(tmp_path,
                                                                             monkeypatch):
    def no_nbconvert(step_dir):
        raise ImportError("No module named 'nbconvert'")

    monkeypatch.setattr(report_module, "ensure_html", no_nbconvert)
    done, _, _ = run_step(tmp_path / "ok", IMPORTS, ("step:train", TRAIN + "\nnp.arange(3)"),
                          artifacts=False)
    assert done.returncode == 0, done.stderr
    page, rendered = report_module.report_page(tmp_path / "ok" / "train")
    assert rendered is False
    assert "Rendered without nbconvert" in page
    assert "fitted on 150 flowers" in page
    assert '<img alt="figure" src="data:image/png;base64,iVBOR' in page
    assert "array([0, 1, 2])" in page
    assert "iris = load_iris()" in page

    done, _, _ = run_step(tmp_path / "failing",
                          ("step:fail", "print('<b>x</b>')\nraise ValueError('boom')"),
                          step="fail", artifacts=False)
    assert done.returncode == 1
    page, _ = report_module.report_page(tmp_path / "failing" / "fail")
    assert "&lt;b&gt;x&lt;/b&gt;" in page  # printed text is escaped
    assert '<pre class="error">' in page and "ValueError: boom" in page
    assert "\x1b[" not in page


def test_classification_values_take_arrays_and_refuse_other_shapes():
    step = api.compile_spec(make_nb(
        ("step:s", "x = 1"), ("metrics", "cm = {'labels': 1, 'matrix': 2}\n"
                                         "roc = {'fpr': 1, 'tpr': 2, 'thresholds': 3}"))).step("s")
    found, warnings = classification_values(step, {
        "cm": {"labels": np.array(["a", "b"]), "matrix": np.array([[1, 0], [2, 3]])},
        "roc": {"fpr": [0.0, 1.0], "tpr": [0.0], "thresholds": [1.0, 0.0]}})
    assert found == {"cm": {"labels": ["a", "b"], "matrix": [[1, 0], [2, 3]]}}
    assert [w["variable"] for w in warnings] == ["roc"]
    assert "one and the same length" in warnings[0]["message"]
    found, warnings = classification_values(step, {"cm": {"labels": ["a"], "matrix": [["x"]]},
                                                   "roc": None})
    assert found == {}
    assert len(warnings) == 2 and "not a number" in warnings[0]["message"]
