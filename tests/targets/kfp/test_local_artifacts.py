"""What a KFP run shows in the KFP UI, run for real by ``kfp.local``: each step's report
(``HTML``), figures (``Markdown``), metrics (``Metrics``), charts (``ClassificationMetrics``)
and models (``Model``), for a small scikit-learn classifier.

The IR declares them (``outputDefinitions.artifacts`` with their ``schemaTitle``); the run
writes them: the HTML holds what the step printed, the Markdown embeds its figure, the
Model file loads back (joblib, as the store marshals estimators) into an estimator that
predicts what the local run's predicts, and the confusion matrix is the local run's.
"""

from __future__ import annotations

import base64
import json

import joblib
import numpy as np
import pytest
import yaml

from cellpipe import api
from cellpipe.targets.kfp.compile import compile_kfp
from tests.conftest import write_nb

pytestmark = pytest.mark.filterwarnings(
    "ignore:You may be attemping to run a task that uses custom:RuntimeWarning")

kfp_local = pytest.importorskip("kfp.local", reason="kfp is installed by `.[kfp]`")
kfp_components = pytest.importorskip("kfp.components")

CLASSIFIER = [
    ("", "import matplotlib.pyplot as plt\nimport numpy as np\n"
         "from sklearn.datasets import load_breast_cancer\n"
         "from sklearn.linear_model import LogisticRegression\n"
         "from sklearn.metrics import accuracy_score, confusion_matrix, roc_curve\n"
         "from sklearn.model_selection import train_test_split\n"
         "from sklearn.pipeline import make_pipeline\n"
         "from sklearn.preprocessing import StandardScaler"),
    ("parameters", "C = 0.5\nseed = 7"),
    ("step:prepare", "data = load_breast_cancer()\n"
                     "X_train, X_test, y_train, y_test = train_test_split(\n"
                     "    data.data, data.target, test_size=0.3, random_state=seed,"
                     " stratify=data.target)\n"
                     "labels = [str(name) for name in data.target_names]"),
    (["step:train", "model:clf"],
     "clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))\n"
     "clf.fit(X_train, y_train)\n"
     "print(f'trained on {len(X_train)} tumours')"),
    ("step:evaluate",
     "predicted = clf.predict(X_test)\n"
     "scores = clf.predict_proba(X_test)[:, 1]\n"
     "fpr, tpr, thresholds = roc_curve(y_test, scores)\n"
     "fig, ax = plt.subplots(figsize=(4, 3))\n"
     "ax.plot(fpr, tpr)\n"
     "ax.set_xlabel('false positive rate')\n"
     "ax.set_ylabel('true positive rate')\n"
     "plt.show()\n"
     "print(f'{(predicted == y_test).sum()} of {len(y_test)} test tumours right')"),
    ("metrics", "accuracy = accuracy_score(y_test, predicted)\n"
                "confusion = {'labels': labels, 'matrix': confusion_matrix(y_test, predicted)}\n"
                "roc = {'fpr': fpr, 'tpr': tpr, 'thresholds': thresholds}"),
]
IMAGES = {step: f"unused/{step}:1" for step in ("prepare", "train", "evaluate")}


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = write_nb(tmp_path_factory.mktemp("classifier"), *CLASSIFIER, name="classifier.ipynb")
    return path, compile_kfp(api.compile_spec(path), IMAGES)


def _outputs(ir, step):
    return {name: entry["artifactType"]["schemaTitle"]
            for name, entry in ir["components"][f"comp-{step}"]["outputDefinitions"]
            ["artifacts"].items()}


def test_the_ir_declares_each_steps_ui_artifacts_with_their_kfp_types(classifier):
    _, text = classifier
    ir = yaml.safe_load(text)
    assert _outputs(ir, "prepare") == {"data": "system.Dataset", "report": "system.HTML",
                                       "figures": "system.Markdown"}
    assert _outputs(ir, "train") == {"data": "system.Dataset", "report": "system.HTML",
                                     "figures": "system.Markdown", "clf": "system.Model"}
    assert _outputs(ir, "evaluate") == {
        "data": "system.Dataset", "report": "system.HTML", "figures": "system.Markdown",
        "metrics": "system.Metrics", "confusion": "system.ClassificationMetrics",
        "roc": "system.ClassificationMetrics"}


def test_a_model_named_like_another_output_gets_its_own_name():
    from tests.conftest import make_nb

    nb = make_nb(("parameters", "report = 1"),
                 (["step:fit", "model:report", "model:data"], "data = [report]\nreport = 2"),
                 ("step:use", "print(data)"))
    ir = yaml.safe_load(compile_kfp(api.compile_spec(nb), {"fit": "i:1", "use": "i:1"}))
    assert _outputs(ir, "fit") == {"data": "system.Dataset", "report_": "system.HTML",
                                   "figures": "system.Markdown", "report__": "system.Model",
                                   "data_": "system.Model"}


def test_kfp_local_run_leaves_the_report_figures_charts_and_a_model_that_predicts(
        classifier, tmp_path):
    path, text = classifier
    local = api.run(path, engine="local", root=tmp_path / ".cellpipe")
    assert local.status == "succeeded"
    package = tmp_path / "pipeline.yaml"
    package.write_text(text, encoding="utf-8")
    root = tmp_path / "kfp-root"
    kfp_local.init(runner=kfp_local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    kfp_components.load_component_from_file(str(package))()
    (run_dir,) = root.iterdir()

    # the report: the executed cells, with what they printed
    train_page = (run_dir / "train" / "report").read_text(encoding="utf-8")
    assert "<html" in train_page and "trained on 398 tumours" in train_page
    evaluate_page = (run_dir / "evaluate" / "report").read_text(encoding="utf-8")
    right = int((local.load("predicted") == local.load("y_test")).sum())
    assert f"{right} of 171 test tumours right" in evaluate_page
    # the figures: the ROC plot, embedded; a step that plots nothing says so
    figures = (run_dir / "evaluate" / "figures").read_text(encoding="utf-8")
    encoded = figures.split("(data:image/png;base64,", 1)[1].split(")", 1)[0]
    assert base64.b64decode(encoded).startswith(b"\x89PNG")
    assert "displayed no figures" in (run_dir / "prepare" / "figures").read_text()

    # the model: the file the store marshalled, loading back to the same estimator
    output = json.loads((run_dir / "train" / "executor_output.json").read_text())
    (model,) = output["artifacts"]["clf"]["artifacts"]
    assert model["metadata"]["type"] == "sklearn.pipeline.Pipeline"
    assert model["metadata"]["format"] == "joblib"
    assert model["metadata"]["variable"] == "clf"
    clf = joblib.load(run_dir / "train" / "clf")
    X_test = local.load("X_test")
    assert np.array_equal(clf.predict(X_test), local.load("predicted"))
    assert np.allclose(clf.predict_proba(X_test), local.load("clf").predict_proba(X_test))

    # the metrics and the charts
    output = json.loads((run_dir / "evaluate" / "executor_output.json").read_text())
    (metrics,) = output["artifacts"]["metrics"]["artifacts"]
    assert metrics["metadata"] == local.metrics == {"accuracy": pytest.approx(right / 171)}
    (confusion,) = output["artifacts"]["confusion"]["artifacts"]
    matrix = confusion["metadata"]["confusionMatrix"]
    assert [a["displayName"] for a in matrix["annotationSpecs"]] == ["malignant", "benign"]
    expected = (local.load("y_test"), local.load("predicted"))
    assert [row["row"] for row in matrix["rows"]] == [
        [int(((expected[0] == actual) & (expected[1] == guess)).sum()) for guess in (0, 1)]
        for actual in (0, 1)]
    (roc,) = output["artifacts"]["roc"]["artifacts"]
    points = roc["metadata"]["confidenceMetrics"]
    assert len(points) == len(local.load("fpr"))
    assert points[-1]["recall"] == points[-1]["falsePositiveRate"] == 1.0
    assert all(np.isfinite(p["confidenceThreshold"]) for p in points)
