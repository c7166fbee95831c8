"""The notebook the tuning tests tune: load, clean, then a model step with two parameters.

A small real model: scikit-learn's bundled breast-cancer data (nothing downloaded), a
cleaned and scaled split, and a blend of a logistic regression (``C``) and a decision tree
(``max_depth``) whose test accuracy is the metric. ``C <= 0`` makes scikit-learn raise in
the train step: the failing trial of the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

from tests.conftest import make_nb

IMPORTS = """\
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier"""

PARAMETERS = "seed = 0\nC = 1.0\nmax_depth = 3"

LOAD = """\
data = load_breast_cancer()
X, y = data.data, data.target
print(f"loaded {X.shape[0]} rows, {X.shape[1]} features")"""

CLEAN = """\
X_train, X_test, y_train, y_test = train_test_split(
    np.nan_to_num(X), y, test_size=0.3, random_state=seed, stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)"""

TRAIN = """\
logreg = LogisticRegression(C=C, max_iter=500).fit(X_train, y_train)
tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed).fit(X_train, y_train)
blend = (logreg.predict_proba(X_test) + tree.predict_proba(X_test)) / 2
predicted = blend.argmax(axis=1)"""

METRICS = """\
accuracy = float((predicted == y_test).mean())
tree_depth = int(tree.get_depth())"""


def tune_notebook(metadata: dict[str, Any] | None = None) -> nbformat.NotebookNode:
    return make_nb(IMPORTS, ("parameters", PARAMETERS), ("step:load", LOAD),
                   ("step:clean", CLEAN), ("step:train", TRAIN), ("metrics", METRICS),
                   metadata=metadata)


def write_tune_notebook(directory: Path, name: str = "model.ipynb",
                        metadata: dict[str, Any] | None = None) -> Path:
    path = directory / name
    nbformat.write(tune_notebook(metadata), path)
    return path
