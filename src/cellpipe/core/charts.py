"""Charts in a metrics cell: the convention that makes a value a classification metric.

A ``metrics`` cell's names are the step's metrics (numbers), except a name assigned a dict
display (or a ``dict(...)`` call with keywords) whose keys are exactly those of a chart:

=====================================  ====================  ==============================
keys                                   kind                  drawn by
=====================================  ====================  ==============================
``labels``, ``matrix``                 ``confusion_matrix``  KFP ``log_confusion_matrix``
``fpr``, ``tpr``, ``thresholds``       ``roc_curve``         KFP ``log_roc_curve``
=====================================  ====================  ==============================

Found statically (the spec's step lists them as ``classification``); their values are
checked and written as JSON by the step runtime (``cellpipe.runtime.artifacts``).
"""

from __future__ import annotations

import ast

from cellpipe.core.kinds import ClassificationKind

__all__ = ["CLASSIFICATION_KEYS", "classification_kind"]

# The keys of each chart (README: "What the UIs show").
CLASSIFICATION_KEYS: dict[frozenset[str], ClassificationKind] = {
    frozenset({"labels", "matrix"}): "confusion_matrix",
    frozenset({"fpr", "tpr", "thresholds"}): "roc_curve",
}


def classification_kind(value: ast.expr | None) -> ClassificationKind | None:
    """What a metrics cell's assigned value draws, if it is a chart rather than a metric.

    A dict display (or a ``dict(...)`` call with keywords) with exactly the keys of a
    confusion matrix (``labels``, ``matrix``) or of an ROC curve (``fpr``, ``tpr``,
    ``thresholds``); None for anything else.
    """
    keys: list[str | None] = []
    if isinstance(value, ast.Dict):
        keys = [k.value if isinstance(k, ast.Constant) and isinstance(k.value, str) else None
                for k in value.keys]
    elif (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
          and value.func.id == "dict" and not value.args):
        keys = [k.arg for k in value.keywords]
    if not keys or None in keys or len(set(keys)) != len(keys):
        return None
    return CLASSIFICATION_KEYS.get(frozenset(k for k in keys if k is not None))
