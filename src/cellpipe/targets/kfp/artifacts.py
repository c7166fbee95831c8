"""What a KFP step publishes for the KFP UI, besides its data and its metrics.

Every step's component runs the step runtime with ``--artifacts`` and then turns what the
runtime left in its outputs directory (:class:`cellpipe.core.layout.StepOutputs`) into
output artifacts of the task:

- ``report`` (``HTML``): the executed report, rendered by nbconvert (or plainly, without it);
- ``figures`` (``Markdown``): every PNG image its cells displayed, embedded in the page;
- one ``ClassificationMetrics`` per chart of its metrics cells (named after the variable):
  ``log_confusion_matrix`` or ``log_roc_curve``;
- one ``Model`` per ``model:NAME`` (named after the variable): the value's file as the
  store marshalled it (joblib for scikit-learn, …), its type, format and digest in the
  artifact's metadata.

The code that does it (:func:`publish_code`) is part of each component's source, which must be
self-contained: KFP runs it as a file of its own in the step's image.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

from cellpipe.core.layout import (
    OUTPUT_CLASSIFICATION,
    OUTPUT_FIGURES_PAGE,
    OUTPUT_MODELS,
    OUTPUT_REPORT,
)
from cellpipe.core.spec import StepSpec
from cellpipe.marshal.store import SIDECAR_SUFFIX

__all__ = ["ARTIFACT_TYPES", "UiOutput", "publish_code", "ui_outputs"]

# The kfp.dsl artifact classes the components' signatures name.
ARTIFACT_TYPES = ("ClassificationMetrics", "HTML", "Markdown", "Model")


@dataclass(frozen=True)
class UiOutput:
    """One output artifact of a step's component for the UI.

    Attributes:
        key: Its key among the component's inputs and outputs (``:report``, ``:figures``,
            ``:chart:NAME``, ``:model:NAME``).
        name: The name it would like (the parameter's; made unique among the others).
        kind: The ``kfp.dsl`` artifact class.
        variable: The chart's or model's variable, or "".
    """

    key: str
    name: str
    kind: str
    variable: str = ""


def ui_outputs(step: StepSpec) -> list[UiOutput]:
    """The step's UI artifacts: its report, its figures, its charts, its models."""
    found = [UiOutput(":report", "report", "HTML"), UiOutput(":figures", "figures", "Markdown")]
    found += [UiOutput(f":chart:{name}", name, "ClassificationMetrics", name)
              for name in step.charts]
    found += [UiOutput(f":model:{name}", name, "Model", name) for name in step.settings.models]
    return found


def publish_code(step: StepSpec, io: Mapping[str, str]) -> str:
    """The component's code that publishes the step's UI artifacts (``io``: key → name)."""
    outputs = ui_outputs(step)

    def table(entries: list[tuple[str, str]]) -> str:
        return "{" + ", ".join(f"{key!r}: {value}" for key, value in entries) + "}"

    return _PUBLISH.substitute({
        "pages": table([(OUTPUT_REPORT, io[":report"]), (OUTPUT_FIGURES_PAGE, io[":figures"])]),
        "charts": table([(o.variable, io[o.key]) for o in outputs if o.kind ==
                         "ClassificationMetrics"]),
        "models": table([(o.variable, io[o.key]) for o in outputs if o.kind == "Model"]),
        "classification_file": repr(OUTPUT_CLASSIFICATION),
        "models_dir": repr(OUTPUT_MODELS),
        "sidecar_suffix": repr(SIDECAR_SUFFIX),
    })


# Runs in the component after the step runtime returned, inside its work directory's
# try block (the runtime's --outputs-dir is _work/outputs). Every declared file artifact
# gets a file (KFP uploads each one): a missing one an empty file, said in its metadata.
_PUBLISH = string.Template('''\
        _outputs = _os.path.join(_work, "outputs")
        _pages = $pages
        _charts = $charts
        _models = $models
        for _source, _artifact in _pages.items():
            _os.makedirs(_os.path.dirname(_artifact.path) or ".", exist_ok=True)
            _from = _os.path.join(_outputs, _source)
            if _os.path.isfile(_from):
                _shutil.copyfile(_from, _artifact.path)
            else:
                open(_artifact.path, "w").close()
                _artifact.metadata["missing"] = "the step left no " + _source
        _drawn = {}
        _charts_file = _os.path.join(_outputs, $classification_file)
        if _charts and _os.path.isfile(_charts_file):
            with open(_charts_file, encoding="utf-8") as _file:
                _drawn = _json.load(_file)
        for _name, _artifact in _charts.items():
            _chart = _drawn.get(_name)
            if _chart is None:
                print("cellpipe: classification metric " + _name + " was not reported")
            elif "matrix" in _chart:
                _artifact.log_confusion_matrix(_chart["labels"], _chart["matrix"])
            else:
                _artifact.log_roc_curve(_chart["fpr"], _chart["tpr"], _chart["thresholds"])
        for _name, _artifact in _models.items():
            _os.makedirs(_os.path.dirname(_artifact.path) or ".", exist_ok=True)
            _store = _os.path.join(_outputs, $models_dir, _name, _step)
            _sidecar = _os.path.join(_store, _name + $sidecar_suffix)
            _artifact.metadata["variable"] = _name
            if not _os.path.isfile(_sidecar):
                print("cellpipe: model " + _name + " was not saved; its artifact is empty")
                open(_artifact.path, "wb").close()
                _artifact.metadata["missing"] = "the step did not save " + _name
                continue
            with open(_sidecar, encoding="utf-8") as _file:
                _meta = _json.load(_file)
            _shutil.copyfile(_os.path.join(_store, _meta["file"]), _artifact.path)
            for _key in ("type", "format", "size", "algorithm", "digest"):
                _artifact.metadata[_key] = _meta[_key]
''')
