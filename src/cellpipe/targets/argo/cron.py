"""An Argo CronWorkflow around a compiled Workflow, built through Hera's models; read back.

Pure, like :mod:`cellpipe.targets.argo.compile`: the CronWorkflow's ``workflowSpec`` *is*
the compiled Workflow's ``spec`` (with the parameter values given), and its labels and
annotations are the Workflow's, on the CronWorkflow and on every Workflow it starts
(``workflowMetadata``). ``spec.schedules`` is Argo 3.6's field (Hera's models follow it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.compile import PIPELINE_LABEL, parameter_text
from cellpipe.targets.base import Schedule, ScheduleOptions
from cellpipe.targets.checks import dns1123_name
from cellpipe.targets.cron import check_cron

try:
    from hera.workflows import models as m
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    from cellpipe.errors import MissingDependencyError

    raise MissingDependencyError.for_extra("hera", "argo", "Scheduling an Argo Workflow") from exc

__all__ = ["MAX_NAME", "cron_workflow", "schedule_of", "with_arguments"]

# Argo names each Workflow it starts "<cron workflow>-<10-digit time>", a 63-character label.
MAX_NAME = 52


def cron_workflow(workflow: Mapping[str, Any], cron: str, *,
                  parameters: Mapping[str, Any] | None = None,
                  options: ScheduleOptions | None = None) -> dict[str, Any]:
    """The ``argoproj.io/v1alpha1`` CronWorkflow that runs ``workflow`` at the times of ``cron``.

    Args:
        workflow: A Workflow as :func:`~cellpipe.targets.argo.compile.compile_argo` makes it.
        cron: A five-field cron expression (checked by :func:`cellpipe.targets.cron.check_cron`).
        parameters: Values for the Workflow's parameters (typed; rendered as ``submit``
            renders them); the others keep the notebook's defaults.
        options: Name, time zone, concurrency policy, suspension.

    Raises:
        CellpipeError: The cron expression or the name is not valid, or a parameter is not
            one of the Workflow's.
    """
    chosen = options or ScheduleOptions()
    expression = check_cron(cron)
    meta = workflow.get("metadata") or {}
    labels = dict(meta.get("labels") or {}) or None
    annotations = dict(meta.get("annotations") or {}) or None
    spec = with_arguments(workflow, parameters or {})["spec"]
    model = m.CronWorkflow(
        api_version="argoproj.io/v1alpha1",
        kind="CronWorkflow",
        metadata=m.ObjectMeta(name=_name(workflow, chosen.name), namespace=meta.get("namespace"),
                              labels=labels, annotations=annotations),
        spec=m.CronWorkflowSpec(
            schedules=[expression],
            timezone=chosen.timezone or None,
            concurrency_policy=chosen.concurrency_policy,
            suspend=True if chosen.suspend else None,
            workflow_metadata=m.ObjectMeta(labels=labels, annotations=annotations)
            if labels or annotations else None,
            workflow_spec=m.WorkflowSpec.model_validate(spec),
        ),
    )
    manifest: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True)
    return manifest


def with_arguments(workflow: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``workflow`` whose argument parameters take these values (as Argo text).

    Raises:
        CellpipeError: A name is not one of the Workflow's parameters.
    """
    copied: dict[str, Any] = copy.deepcopy(dict(workflow))
    declared = (copied.get("spec") or {}).get("arguments", {}).get("parameters") or []
    by_name = {str(parameter["name"]): parameter for parameter in declared}
    for name, value in parameters.items():
        if name not in by_name:
            from cellpipe.core.diagnostics import did_you_mean

            known = ", ".join(by_name) or "none"
            raise CellpipeError(f"the pipeline has no parameter {name!r}", variable=name,
                                hint=did_you_mean(name, set(by_name))
                                or f"its parameters are: {known}")
        by_name[name]["value"] = parameter_text(value)
    return copied


def schedule_of(cron_workflow: Mapping[str, Any]) -> Schedule:
    """What a CronWorkflow object (as the API server has it) says about its schedule."""
    meta = cron_workflow.get("metadata") or {}
    spec = cron_workflow.get("spec") or {}
    schedules = spec.get("schedules") or ([spec["schedule"]] if spec.get("schedule") else [])
    arguments = (spec.get("workflowSpec") or {}).get("arguments") or {}
    name = str(meta.get("name", ""))
    return Schedule(
        name=name,
        cron=", ".join(str(s) for s in schedules),
        timezone=str(spec.get("timezone") or ""),
        concurrency_policy=str(spec.get("concurrencyPolicy") or "Allow"),  # Argo's default
        suspended=bool(spec.get("suspend")),
        parameters={str(p["name"]): p.get("value") for p in arguments.get("parameters") or []
                    if "name" in p},
        title=f"CronWorkflow {name}",
        last_run=str((cron_workflow.get("status") or {}).get("lastScheduledTime") or ""),
    )


def _name(workflow: Mapping[str, Any], wanted: str | None) -> str:
    """The CronWorkflow's name: ``wanted`` as given, else the pipeline's, shortened to fit."""
    if wanted:
        if len(wanted) > MAX_NAME or dns1123_name(wanted) != wanted:
            raise CellpipeError(
                f"{wanted!r} cannot name a CronWorkflow: it must be a DNS-1123 label of at "
                f"most {MAX_NAME} characters",
                hint="use lowercase letters, digits and '-', e.g. --name nightly-train")
        return wanted
    meta = workflow.get("metadata") or {}
    pipeline = ((meta.get("labels") or {}).get(PIPELINE_LABEL)
                or str(meta.get("generateName") or "").rstrip("-") or "cellpipe")
    return dns1123_name(str(pipeline), max_length=MAX_NAME)
