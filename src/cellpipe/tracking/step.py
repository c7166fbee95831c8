"""A cluster step logs itself to MLflow from its pod (``python -m cellpipe.runtime``).

Steps run in separate pods, with no process that sees the whole run; so each step logs
on its own, and the steps of one workflow run meet under one parent MLflow run:

- The manifest (Argo Workflow, KFP IR) gives every step's container ``MLFLOW_TRACKING_URI``,
  ``MLFLOW_EXPERIMENT_NAME``, ``CELLPIPE_TRACKING_RUN`` (the workflow's name: Argo's
  ``{{workflow.name}}``, KFP's pipeline job id), ``CELLPIPE_TRACKING_STEPS`` (the
  pipeline's step names) and the credentials by Secret reference. Without both of the
  first and third, nothing is logged (a local run's steps never log themselves: the
  local engine logs the whole run when it ends, see :mod:`cellpipe.tracking.local`).
- The parent is the run tagged ``cellpipe.workflow=NAME`` in the experiment. The first
  step to find none creates it; two steps that start at once may both create one, then
  both search again and keep the earliest created (the other is deleted), so every
  step logs under the same parent.
- Each step is a nested run (name: the step) with its parameters, metrics, report,
  figures and log; its parameters and metrics go on the parent too (parameters are the
  same wherever a step reads them).
- The parent's status follows its steps: ``FAILED`` as soon as a step's latest attempt
  failed, ``FINISHED`` once every step in ``CELLPIPE_TRACKING_STEPS`` has finished,
  ``RUNNING`` before.

Tracking never fails a step: a server that is down or refuses a value is a warning on
the step's log.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellpipe.core.layout import StepLayout
from cellpipe.tracking.config import ENV_EXPERIMENT, ENV_RUN, ENV_URI

__all__ = ["ENV_STEPS", "track_step"]

ENV_STEPS = "CELLPIPE_TRACKING_STEPS"
WORKFLOW_TAG = "cellpipe.workflow"


def track_step(spec: Any, step: str, step_dir: Path, parameters: Mapping[str, Any], code: int,
               environ: Mapping[str, str] | None = None) -> str | None:
    """Log one ended cluster step as a nested MLflow run; its run id (None: not logged).

    Does nothing unless ``MLFLOW_TRACKING_URI`` and ``CELLPIPE_TRACKING_RUN`` are set.
    """
    environ = os.environ if environ is None else environ
    uri, group = environ.get(ENV_URI, "").strip(), environ.get(ENV_RUN, "").strip()
    if not uri or not group:
        return None
    experiment = environ.get(ENV_EXPERIMENT) or spec.pipeline.name
    steps = [s for s in environ.get(ENV_STEPS, "").split(",") if s]
    try:
        return _log(uri, experiment, group, steps, spec, step, step_dir, parameters, code)
    except Exception as exc:
        from cellpipe.tracking.client import unavailable

        print(f"cellpipe: warning: step {step!r} was not tracked: {unavailable(uri, exc)}",
              file=sys.stderr)
        return None


def _log(uri: str, experiment: str, group: str, steps: list[str], spec: Any, step: str,
         step_dir: Path, parameters: Mapping[str, Any], code: int) -> str:
    from cellpipe.tracking.client import (
        experiment_id,
        log_values,
        mlflow_client,
        numbers,
        terminate,
    )
    from cellpipe.tracking.files import stage_step

    client = mlflow_client(uri)
    experiment_key = experiment_id(client, experiment)
    parent = _parent(client, experiment_key, group, spec)
    result = _result(step_dir)
    reads = set(spec.step(step).parameters)  # with their defaults: what the step ran with
    values = {p.name: parameters.get(p.name, p.default_copy) for p in spec.parameters
              if p.name in reads}
    metrics = numbers(result.get("metrics") or {})
    status = "FINISHED" if code == 0 and result.get("status") == "succeeded" else "FAILED"
    child = client.create_run(experiment_key, run_name=step, tags={
        "mlflow.parentRunId": parent, "cellpipe.kind": "step", "cellpipe.step": step,
        WORKFLOW_TAG: group, "cellpipe.notebook": spec.notebook.path,
        "mlflow.source.name": spec.notebook.path})
    run_id = str(child.info.run_id)
    error = result.get("error") or {}
    tags = {"cellpipe.status": str(result.get("status", "failed")), "cellpipe.exit_code":
            str(code)}
    if error.get("message"):
        tags["cellpipe.error"] = str(error["message"])
    log_values(client, run_id, params=values, metrics=metrics, tags=tags)
    with tempfile.TemporaryDirectory(prefix="cellpipe-mlflow-") as directory:
        if stage_step(step_dir, Path(directory), step):
            client.log_artifacts(run_id, directory)
    terminate(client, run_id, status)
    log_values(client, parent, params=values, metrics=metrics,
               tags={f"cellpipe.step.{step}.status": "succeeded" if status == "FINISHED"
                     else "failed"})
    _settle(client, parent, steps)
    return run_id


def _result(step_dir: Path) -> dict[str, Any]:
    path = StepLayout(step_dir).result
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _parent(client: Any, experiment: str, group: str, spec: Any) -> str:
    """The workflow's parent run: found, or created (the earliest one wins a race)."""
    found = _parents(client, experiment, group)
    if found:
        return found[0]
    created = client.create_run(experiment, run_name=group, tags={
        WORKFLOW_TAG: group, "cellpipe.kind": "workflow",
        "cellpipe.notebook": spec.notebook.path, "mlflow.source.name": spec.notebook.path})
    mine = str(created.info.run_id)
    winner = _parents(client, experiment, group)[0]
    if winner != mine:
        client.delete_run(mine)
    return winner


def _parents(client: Any, experiment: str, group: str) -> list[str]:
    runs = client.search_runs(
        [experiment], max_results=50,
        filter_string=f"tags.`{WORKFLOW_TAG}` = '{_quoted(group)}' "
                      "and tags.`cellpipe.kind` = 'workflow'")
    ordered = sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))
    return [str(r.info.run_id) for r in ordered]


def _settle(client: Any, parent: str, steps: list[str]) -> None:
    """Set the parent's status from its steps' latest attempts (see the module)."""
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id], max_results=1000,
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    latest: dict[str, Any] = {}
    for run in sorted(children, key=lambda r: r.info.start_time):
        latest[run.data.tags.get("cellpipe.step", run.info.run_name)] = run
    statuses = {name: run.info.status for name, run in latest.items()}
    if "FAILED" in statuses.values():
        status = "FAILED"
    elif steps and all(statuses.get(name) == "FINISHED" for name in steps):
        status = "FINISHED"
    else:
        return
    from cellpipe.tracking.client import terminate

    terminate(client, parent, status)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
