"""cloudpickle for functions and notebook classes (checked in fresh processes); joblib."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.marshal.conftest import roundtrip, sidecar


def run_python(code: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


PRODUCER = """
import sys
from cellpipe.marshal import open_store

class Point:                      # a class defined in a notebook cell lives in __main__
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2

OFFSET = 10

def shifted(p):                   # a notebook function using a notebook global
    return Point(p.x + OFFSET, p.y)

store = open_store(sys.argv[1])
for name, value in {"p": Point(3, 4), "shifted": shifted, "Point": Point,
                    "square": lambda v: v * v}.items():
    print(store.save("make", name, value, consumers=["use"]).format)
"""

CONSUMER = """
import sys, __main__
from cellpipe.marshal import open_store

assert not hasattr(__main__, "Point")   # this process never ran the cell
store = open_store(sys.argv[1])
p = store.load("make", "p")
moved = store.load("make", "shifted")(p)
Point = store.load("make", "Point")
print(type(p).__name__, p.norm2(), moved.x, isinstance(moved, Point),
      store.load("make", "square")(7))
"""


def test_notebook_classes_and_functions_load_in_a_fresh_process(tmp_path):
    formats = run_python(PRODUCER, str(tmp_path)).split()
    assert formats == ["cloudpickle"] * 4
    assert run_python(CONSUMER, str(tmp_path)).split() == ["Point", "25", "13", "True", "49"]


def test_functions_and_closures_round_trip(local_store):
    factor = 3

    def triple(v):
        return v * factor

    back, fmt = roundtrip(local_store, triple)
    assert fmt == "cloudpickle" and back(2) == 6


def test_importable_objects_round_trip_by_reference(local_store):
    import datetime
    import decimal
    import fractions

    value = [datetime.datetime(2020, 1, 2, 3), decimal.Decimal("1.10"), fractions.Fraction(1, 3)]
    back, fmt = roundtrip(local_store, value)
    assert fmt == "cloudpickle" and back == value
    assert str(back[1]) == "1.10"


# -- scikit-learn ------------------------------------------------------------------------


sklearn = pytest.importorskip("sklearn")


def _data():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    return features, (features[:, 0] > 0).astype(int)


def test_fitted_estimators_go_to_joblib_and_predict_the_same(local_store):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = _data()
    for name, model in {
        "logreg": LogisticRegression(),
        "forest": RandomForestClassifier(n_estimators=5, random_state=0),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()),
    }.items():
        model.fit(features, labels)
        back, fmt = roundtrip(local_store, model, name)
        assert fmt == "joblib"
        assert sidecar(local_store, "s", name)["file"] == f"{name}.joblib"
        assert type(back) is type(model)
        np.testing.assert_array_equal(back.predict_proba(features), model.predict_proba(features))


def test_unfitted_estimators_keep_their_parameters(local_store):
    from sklearn.svm import SVC

    back, fmt = roundtrip(local_store, SVC(C=3.5, kernel="poly"))
    assert fmt == "joblib" and back.get_params()["C"] == 3.5


ESTIMATOR_PRODUCER = """
import sys
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.linear_model import LinearRegression
from cellpipe.marshal import open_store

class AddBias(BaseEstimator, TransformerMixin):   # a notebook-defined transformer
    def __init__(self, bias=1.0):
        self.bias = bias
    def fit(self, X, y=None):
        return self
    def transform(self, X):
        return X + self.bias

def double(X):
    return X * 2

X = np.arange(10.0).reshape(5, 2)
y = X.sum(axis=1)
model = make_pipeline(AddBias(0.5), FunctionTransformer(double), LinearRegression()).fit(X, y)
store = open_store(sys.argv[1])
meta = store.save("train", "model", model)
print(meta.format)
print(meta.note)
print(model.predict(X).round(6).tolist())
"""

ESTIMATOR_CONSUMER = """
import sys
import numpy as np
from cellpipe.marshal import open_store
model = open_store(sys.argv[1]).load("train", "model")
print(model.predict(np.arange(10.0).reshape(5, 2)).round(6).tolist())
"""


def test_estimators_with_notebook_code_go_to_cloudpickle_and_load_elsewhere(tmp_path):
    fmt, note, predictions = run_python(ESTIMATOR_PRODUCER, str(tmp_path)).splitlines()
    assert fmt == "cloudpickle"
    assert "__main__.AddBias" in note and "joblib" in note
    assert run_python(ESTIMATOR_CONSUMER, str(tmp_path)).strip() == predictions


def test_estimators_with_a_lambda_go_to_cloudpickle(local_store):
    from sklearn.preprocessing import FunctionTransformer

    model = FunctionTransformer(lambda x: x + 1)
    back, fmt = roundtrip(local_store, model)
    assert fmt == "cloudpickle"
    assert "<lambda>" in sidecar(local_store, "s", "x")["note"]
    np.testing.assert_array_equal(back.transform(np.zeros((1, 2))), np.ones((1, 2)))
