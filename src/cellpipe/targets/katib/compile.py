"""Compile a PipelineSpec and a search into a Katib ``Experiment`` (``kubeflow.org/v1beta1``).

Compiling is pure: the same spec, images, settings and search give the same dict (and, with
:func:`cellpipe.targets.argo.compile.to_yaml`, the same bytes). The trial template is the
pipeline's Argo Workflow as :func:`cellpipe.targets.argo.compile.compile_argo` makes it,
changed only where Katib needs it:

- no ``metadata.name``, ``generateName`` or ``namespace``: Katib names each trial's
  Workflow after the trial (its validating webhook refuses a template that names one);
- the tuned parameters are the Workflow's arguments ``${trialParameters.NAME}``, which Katib
  replaces with each trial's values (parameters fixed with ``-p NAME=VALUE`` get their value);
- the step that reports the objective runs in a pod labelled
  ``katib.kubeflow.org/model-training: "true"`` (``primaryPodLabels``): only that pod gets
  Katib's metrics collector, in the container Argo calls ``main``
  (``primaryContainerName``); it writes its metrics to :data:`METRICS_FILE`
  (``python -m cellpipe.runtime --metrics-file``).

Metrics reach Katib through its **File** collector (format ``TEXT``), not StdOut: the
StdOut collector parses everything the container prints, so a notebook that prints
``accuracy=0.5`` per epoch (or a library's progress line) would feed the search values that
are not the metric; the file holds the metrics cell's values only, one ``TIME NAME=VALUE``
line each. The trial's success and failure are read off the Workflow's ``status.phase``
with GJSON: ``Succeeded``; ``Failed`` or ``Error`` (the range ``Error``..``Failed`` holds
no other Argo phase).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cellpipe.core.spec import PipelineSpec
from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.compile import PIPELINE_LABEL, compile_argo, ordered, parameter_text
from cellpipe.targets.checks import check_no_secret_values, dns1123_name
from cellpipe.targets.cluster import ClusterSettings
from cellpipe.targets.katib.search import Search

__all__ = ["API_VERSION", "FAILURE_CONDITION", "METRICS_FILE", "PRIMARY_LABEL",
           "SUCCESS_CONDITION", "compile_katib", "feasible_space"]

API_VERSION = "kubeflow.org/v1beta1"
PRIMARY_LABEL = "katib.kubeflow.org/model-training"
PRIMARY_CONTAINER = "main"  # Argo names the container of every template's pod "main"
METRICS_FILE = "/cellpipe/katib/metrics.log"
SUCCESS_CONDITION = 'status.[@this].#(phase=="Succeeded")#'
FAILURE_CONDITION = 'status.[@this].#(phase>="Error")#|#(phase<="Failed")#'
# Katib names a trial <experiment>-<8 characters> and the suggestion service
# <experiment>-<algorithm> (a Service: at most 63 characters): keep the experiment short.
_NAME_LENGTH = 35
# Katib wraps the primary container's command in `sh -c "<its words joined by spaces>"`
# (to mark the process done for its collector): a word with a space or a shell character
# would be split or run. Parameter values the primary step reads must be plain words.
_SHELL_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]*")
_PARAMETER_REF = re.compile(r"\{\{inputs\.parameters\.([A-Za-z_][A-Za-z0-9_]*)\}\}")


def compile_katib(spec: PipelineSpec, images: Mapping[str, str], settings: ClusterSettings,
                  search: Search, *, carry_code: bool = False) -> dict[str, Any]:
    """Compile a pipeline and a search into a Katib Experiment.

    Args:
        spec: The pipeline spec.
        images: Each step's image (as for :func:`~cellpipe.targets.argo.compile.compile_argo`).
        settings: The cluster settings.
        search: The checked search (:func:`cellpipe.targets.katib.search.search_settings`).
        carry_code: One shared image without the steps' code (as for Argo).

    Returns:
        The Experiment as a dict with a stable key order.

    Raises:
        CellpipeError: The Workflow cannot be compiled (see ``compile_argo``), or a value
            the reporting step's command gets is not a plain word.
    """
    metric = next(m for m in spec.metrics if m.name == search.objective)
    workflow = compile_argo(spec, images, settings, carry_code=carry_code)
    trial = _trial_workflow(workflow, spec, search, metric.step)
    others = [m.name for m in spec.metrics if m.step == metric.step and m.name != metric.name]
    pipeline = dns1123_name(spec.pipeline.name, max_length=_NAME_LENGTH)
    if not pipeline[0].isalpha():  # Katib: an experiment's name starts with a letter
        pipeline = f"nb-{pipeline}"[:_NAME_LENGTH].rstrip("-")
    metadata: dict[str, Any] = {"generateName": f"{pipeline}-",
                                "labels": {**dict(settings.labels), PIPELINE_LABEL: pipeline}}
    if settings.namespace:
        metadata["namespace"] = settings.namespace
    if settings.annotations or spec.pipeline.description:
        annotations = dict(settings.annotations)
        if spec.pipeline.description:
            annotations.setdefault("cellpipe.dev/description", spec.pipeline.description)
        metadata["annotations"] = annotations
    objective: dict[str, Any] = {"type": search.direction,
                                 "objectiveMetricName": search.objective}
    if others:
        objective["additionalMetricNames"] = others
    experiment = {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": metadata,
        "spec": {
            "objective": objective,
            "algorithm": {"algorithmName": search.algorithm},
            "parallelTrialCount": search.parallel,
            "maxTrialCount": search.trials,
            "maxFailedTrialCount": search.max_failed,
            "parameters": [{"name": d.name, **feasible_space(d)} for d in search.dimensions],
            "metricsCollectorSpec": {
                "collector": {"kind": "File"},
                "source": {"fileSystemPath": {"kind": "File", "path": METRICS_FILE,
                                              "format": "TEXT"}},
            },
            "trialTemplate": {
                "primaryContainerName": PRIMARY_CONTAINER,
                "primaryPodLabels": {PRIMARY_LABEL: "true"},
                "successCondition": SUCCESS_CONDITION,
                "failureCondition": FAILURE_CONDITION,
                "trialParameters": [
                    {"name": d.name, "reference": d.name,
                     "description": f"{d.name}={d.text}"} for d in search.dimensions],
                "trialSpec": trial,
            },
        },
    }
    found: dict[str, Any] = ordered(experiment)
    check_no_secret_values(found, f"Katib Experiment {pipeline!r}")
    return found


def feasible_space(dimension: Any) -> dict[str, Any]:
    """A dimension as Katib's ``parameterType`` and ``feasibleSpace`` (values are strings).

    ``uniform`` is a ``double`` in [min, max]; ``loguniform`` adds ``distribution:
    logUniform``; ``int(LOW, HIGH[, STEP])`` an ``int`` with its ``step``; ``logint`` an
    ``int`` with ``logUniform``; ``choice`` a ``categorical`` list of the values as the
    parameter's text (what the step reads back as the declared type).
    """
    if dimension.kind == "categorical":
        return {"parameterType": "categorical",
                "feasibleSpace": {"list": [parameter_text(v) for v in dimension.choices]}}
    space: dict[str, Any] = {"min": _number(dimension.low), "max": _number(dimension.high)}
    if dimension.kind == "int" and not dimension.log:
        space["step"] = str(dimension.step or 1)
    if dimension.log:
        space["distribution"] = "logUniform"
    return {"parameterType": "double" if dimension.kind == "float" else "int",
            "feasibleSpace": space}


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, int) else repr(float(value))


def _trial_workflow(workflow: dict[str, Any], spec: PipelineSpec, search: Search,
                    step: str) -> dict[str, Any]:
    """The Workflow as Katib's trial template (see the module's docstring)."""
    metadata = workflow["metadata"]
    for key in ("name", "generateName", "namespace"):
        metadata.pop(key, None)
    values = {d.name: f"${{trialParameters.{d.name}}}" for d in search.dimensions}
    values.update((name, parameter_text(value)) for name, value in search.fixed)
    arguments = workflow["spec"].get("arguments", {}).get("parameters", [])
    for parameter in arguments:
        if parameter["name"] in values:
            parameter["value"] = values[parameter["name"]]
    template = _step_template(workflow, step)
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    labels[PRIMARY_LABEL] = "true"
    command = template["container"]["command"]
    command += ["--metrics-file", METRICS_FILE]
    _check_shell_words(command, step, search,
                       {p["name"]: p.get("value", "") for p in arguments})
    return workflow


def _step_template(workflow: dict[str, Any], step: str) -> dict[str, Any]:
    for template in workflow["spec"]["templates"]:
        command = (template.get("container") or {}).get("command") or []
        if "--step" in command and command[command.index("--step") + 1] == step:
            found: dict[str, Any] = template
            return found
    raise CellpipeError(f"the Workflow has no template running step {step!r}", step=step)


def _check_shell_words(command: list[str], step: str, search: Search,
                       arguments: Mapping[str, str]) -> None:
    """Refuse a word of the reporting step's command that ``sh -c`` would not keep whole."""
    choices = {d.name: [parameter_text(v) for v in d.choices] for d in search.dimensions
               if d.kind == "categorical"}
    numbers = {d.name for d in search.dimensions if d.kind != "categorical"}
    for word in command:
        name = None
        match = _PARAMETER_REF.search(word)
        if match is not None:
            name = match.group(1)
            if name in numbers:
                continue
            candidates = choices.get(name) or [arguments.get(name, "")]
            words = [_PARAMETER_REF.sub(value, word) for value in candidates]
        else:
            words = [word.replace("{{workflow.name}}", "workflow")]
        for text in words:
            if not _SHELL_WORD.fullmatch(text):
                raise CellpipeError(
                    f"step {step!r} reports the objective, and Katib runs its command "
                    f"through sh -c, which would split or expand {text!r}",
                    step=step, variable=name,
                    hint=f"give {name!r} a value without spaces or shell characters "
                    f"(-p {name}=VALUE), or read it in an earlier step" if name
                    else "use an object store URL without spaces or shell characters")
