"""What a step leaves for a cluster's UI: its report, figures, classification metrics, models.

With ``--artifacts`` the runtime writes them into the step's outputs directory (the names
are :class:`cellpipe.core.layout.StepOutputs`'), where the cluster target picks them up:
Kubeflow Pipelines as ``HTML``, ``Markdown``, ``ClassificationMetrics`` and ``Model``
artifacts, Argo as output artifacts. The classification metrics are computed on every
run (``result.json`` keeps them); the rest only when asked. Nothing here fails a step: a
file that cannot be written is a warning on the step's result.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.core.layout import StepLayout, StepOutputs
from cellpipe.core.spec import StepSpec

__all__ = ["classification_values", "save_models", "write_artifacts"]


def classification_values(
    step: StepSpec, namespace: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Each chart of the step's metrics cells as JSON data, and warnings for the bad ones.

    A confusion matrix is ``{"labels": [str], "matrix": [[number]]}`` (square, one row
    and column per label); an ROC curve ``{"fpr", "tpr", "thresholds"}``, three lists of
    numbers of one length (a threshold that is not finite, as scikit-learn's first one,
    becomes the nearest finite one: JSON has no infinity).
    """
    found: dict[str, dict[str, Any]] = {}
    warnings: list[dict[str, Any]] = []
    for name, kind in step.charts.items():
        value = namespace.get(name)
        try:
            found[name] = (_confusion_matrix(value) if kind == "confusion_matrix"
                           else _roc_curve(value))
        except (TypeError, ValueError, KeyError) as exc:
            message = (f"classification metric {name!r} of step {step.name!r} is not a "
                       f"{kind.replace('_', ' ')}: {exc}; it is not reported")
            print(f"cellpipe: warning: {message}", file=sys.stderr)
            warnings.append({"kind": "classification", "variable": name, "message": message,
                             "hint": _SHAPES[kind]})
    return found, warnings


_SHAPES = {
    "confusion_matrix": "assign {'labels': [names…], 'matrix': confusion_matrix(y, "
                        "predicted)} (one row and column per label)",
    "roc_curve": "assign dict(zip(['fpr', 'tpr', 'thresholds'], roc_curve(y, scores)))",
}


def _numbers(value: Any, what: str) -> list[float | int]:
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ValueError(f"{what} holds {item!r}, not a number")
    return items


def _confusion_matrix(value: Any) -> dict[str, Any]:
    labels = [str(label) for label in (value["labels"].tolist()
                                       if hasattr(value["labels"], "tolist")
                                       else value["labels"])]
    rows = value["matrix"].tolist() if hasattr(value["matrix"], "tolist") else value["matrix"]
    matrix = [_numbers(row, "the matrix") for row in rows]
    if not labels or len(matrix) != len(labels) or any(len(r) != len(labels) for r in matrix):
        raise ValueError(f"{len(labels)} labels need a {len(labels)}×{len(labels)} matrix")
    return {"labels": labels, "matrix": matrix}


def _roc_curve(value: Any) -> dict[str, Any]:
    curve = {key: [float(v) for v in _numbers(value[key], key)]
             for key in ("fpr", "tpr", "thresholds")}
    if len({len(points) for points in curve.values()}) != 1 or not curve["fpr"]:
        raise ValueError("fpr, tpr and thresholds need one and the same length")
    finite = [t for t in curve["thresholds"] if math.isfinite(t)] or [0.0]
    curve["thresholds"] = [t if math.isfinite(t) else (max(finite) if t > 0 else min(finite))
                           for t in curve["thresholds"]]
    return curve


def save_models(
    step: StepSpec, namespace: Mapping[str, Any], outputs: StepOutputs
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Save each ``model:NAME`` value into a store of its own; its sidecar per name."""
    from cellpipe.marshal import MarshalError, open_store

    saved: dict[str, dict[str, Any]] = {}
    warnings: list[dict[str, Any]] = []
    for name in step.settings.models:
        if name not in namespace:
            problem = f"model {name!r} of step {step.name!r} was not assigned"
        else:
            try:
                meta = open_store(str(outputs.model(name))).save(step.name, name,
                                                                 namespace[name])
            except (MarshalError, OSError) as exc:
                problem = f"model {name!r} of step {step.name!r} cannot be saved: {exc}"
            else:
                saved[name] = meta.to_dict()
                continue
        print(f"cellpipe: warning: {problem}; no model artifact", file=sys.stderr)
        warnings.append({"kind": "model", "variable": name, "message": problem})
    return saved, warnings


def write_artifacts(step_dir: Path, outputs: StepOutputs, step: str,
                    result: Mapping[str, Any]) -> dict[str, Any]:
    """Write the report as HTML, the figures and the classification metrics; what was written.

    Raises:
        OSError: the outputs directory cannot be written.
    """
    from cellpipe.runtime.report import report_page

    outputs.path.mkdir(parents=True, exist_ok=True)
    report = StepLayout(step_dir).report
    written: dict[str, Any] = {}
    if report.is_file():
        page, rendered = report_page(step_dir)
        write_text_atomic(outputs.report, page, durable=False)
        written["report"] = "nbconvert" if rendered else "plain"
        cells = json.loads(report.read_text(encoding="utf-8")).get("cells", [])
    else:
        cells = []
    figures = _figures(cells)
    lines = [f"# Figures of step `{step}`", ""]
    if figures:
        outputs.figures.mkdir(exist_ok=True)
    for number, (cell, data) in enumerate(figures, start=1):
        outputs.figure(number).write_bytes(base64.b64decode(data))
        where = f" (cell {cell + 1})" if cell >= 0 else ""  # papermill's report: no index
        lines += [f"**Figure {number}**{where}", "",
                  f"![Figure {number}](data:image/png;base64,{data})", ""]
    if not figures:
        lines.append(f"Step `{step}` displayed no figures.")
    write_text_atomic(outputs.figures_page, "\n".join(lines).rstrip("\n") + "\n",
                      durable=False)
    written["figures"] = len(figures)
    charts = result.get("classification") or {}
    write_text_atomic(outputs.classification, json.dumps(charts, sort_keys=True) + "\n",
                      durable=False)
    written["classification"] = sorted(charts)
    return written


def _figures(cells: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(cell index, base64 PNG) of every image the report's cells displayed, in order."""
    found: list[tuple[int, str]] = []
    for cell in cells:
        index = (cell.get("metadata", {}).get("cellpipe") or {}).get("cell", -1)
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if data:
                text = "".join(data) if isinstance(data, list) else str(data)
                found.append((index, text.replace("\n", "")))
    return found
