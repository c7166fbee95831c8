"""A local run as an MLflow run, logged from cellpipe's own record when the run has ended.

Logging after the end (not while the steps run) keeps MLflow off the run's path: a
tracking server that is slow or down costs the run nothing, and the MLflow run says exactly
what ``run.json`` says. Also a failed or cancelled run is logged (``FAILED``, ``KILLED``).

Nested runs: inside ``with parent_run(tracking, name):`` every run logged becomes a child
of one parent run (``mlflow.parentRunId``); sweeps do this, and so can tuning code::

    from cellpipe.tracking import parent_run

    with parent_run(tracking, "tune lr") as parent:
        for number, values in enumerate(trials):
            with parent.child(name=f"trial-{number}", tags={"trial": str(number)}):
                cellpipe.run(notebook, values)        # a nested MLflow run
        parent.log_metrics({"best_accuracy": best})
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpipe.core.layout import RunLayout
from cellpipe.tracking.client import (
    TrackingError,
    experiment_id,
    log_values,
    mlflow_client,
    numbers,
    terminate,
    unavailable,
)
from cellpipe.tracking.config import Tracking, TrackingWarning
from cellpipe.tracking.files import STEPS_PREFIX, git_tags, stage_step

__all__ = ["MLFLOW_STATUS", "ParentRun", "active_parent", "log_run", "parent_run"]

# cellpipe's run status → MLflow's
MLFLOW_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED",
                 "running": "RUNNING"}
RUN_ID_TAG = "cellpipe.run_id"
PARENT_TAG = "mlflow.parentRunId"


@dataclass
class ParentRun:
    """One MLflow run the runs logged inside :func:`parent_run` become children of.

    ``error`` is set when the parent could not be created (its children are then logged
    without it, each on its own).
    """

    tracking: Tracking
    run_id: str | None = None
    error: str | None = None
    children: list[str] = field(default_factory=list)
    client: Any = field(default=None, repr=False)

    @property
    def _child(self) -> tuple[str | None, dict[str, str]]:
        return _CHILD.get()

    @contextlib.contextmanager
    def child(self, name: str | None = None,
              tags: Mapping[str, str] | None = None) -> Iterator[None]:
        """Name (and tag) the run logged inside this block.

        Kept per context (a :mod:`contextvars` variable), so runs of parallel threads that
        each copied the context (``contextvars.copy_context().run``) keep their own names.
        """
        token = _CHILD.set((name, dict(tags or {})))
        try:
            yield
        finally:
            _CHILD.reset(token)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters on the parent (a warning when the server refuses)."""
        self._log(params=params)

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Log the numbers among ``metrics`` on the parent."""
        self._log(metrics=numbers(metrics))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Set tags on the parent."""
        self._log(tags=tags)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file (or a directory's files) to the parent's artifacts."""
        if self.run_id is None:
            return
        try:
            if Path(path).is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path)
            else:
                self.client.log_artifact(self.run_id, str(path), artifact_path)
        except Exception as exc:
            _warn(unavailable(self.tracking.uri, exc))

    def _log(self, **values: Any) -> None:
        if self.run_id is None:
            return
        try:
            log_values(self.client, self.run_id, **values)
        except Exception as exc:
            _warn(unavailable(self.tracking.uri, exc))


_PARENT: contextvars.ContextVar[ParentRun | None] = contextvars.ContextVar(
    "cellpipe_tracking_parent", default=None)
_CHILD: contextvars.ContextVar[tuple[str | None, dict[str, str]]] = contextvars.ContextVar(
    "cellpipe_tracking_child", default=(None, {}))


def active_parent() -> ParentRun | None:
    """The parent run the runs logged now become children of (None outside one)."""
    return _PARENT.get()


@contextlib.contextmanager
def parent_run(tracking: Tracking, name: str, *, params: Mapping[str, Any] | None = None,
               tags: Mapping[str, str] | None = None) -> Iterator[ParentRun]:
    """Make the runs logged inside the block children of one new MLflow run ``name``.

    The parent ends ``FINISHED`` when the block does, ``KILLED`` on Ctrl-C and ``FAILED``
    when the block raises. A server that cannot be reached is a :class:`TrackingWarning`
    (``ParentRun.error``), never an exception: the runs inside still run.
    """
    parent = ParentRun(tracking)
    try:
        parent.client = mlflow_client(tracking.uri)
        experiment = experiment_id(parent.client, tracking.experiment)
        created = parent.client.create_run(experiment, run_name=name,
                                           tags={"cellpipe.kind": "parent", **(tags or {})})
        parent.run_id = str(created.info.run_id)
        log_values(parent.client, parent.run_id, params=params or {})
    except Exception as exc:
        error = unavailable(tracking.uri, exc)
        parent.error = str(error)
        _warn(error)
    token = _PARENT.set(parent)
    status = "FINISHED"
    try:
        yield parent
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        _PARENT.reset(token)
        if parent.run_id is not None:
            try:
                terminate(parent.client, parent.run_id, status)
            except Exception as exc:
                _warn(unavailable(tracking.uri, exc))


def log_run(tracking: Tracking, run_dir: Path, data: Mapping[str, Any],
            notebook_dir: Path | None = None) -> dict[str, Any]:
    """Log one ended local run (its ``run.json`` data) to MLflow; what was logged where.

    Returns ``{"uri", "experiment", "run_id", "source", "parent_run_id"?}``. Logs params
    (the parameter values), metrics (the run's, ``cellpipe.duration`` and per step
    ``cellpipe.step.NAME.duration``), tags (``cellpipe.run_id``, the notebook, per step
    ``cellpipe.step.NAME.status``, the git commit) and artifacts (``spec.json``,
    ``cellpipe/run.json``, per step ``steps/NAME/``: ``report.ipynb``, ``report.html``,
    ``figures/figure-N.png``, ``log.txt``). A resumed run logs into the MLflow run it
    had.

    Raises:
        TrackingError: MLflow is missing, the server cannot be reached or refused a value.
    """
    parent = active_parent()
    if parent is not None and parent.tracking.uri != tracking.uri:
        parent = None  # a run sent elsewhere is no child of this one
    uri = tracking.uri
    try:
        client = mlflow_client(uri)
        run_id = _mlflow_run(client, tracking, data, parent)
        log_values(client, run_id, params=data.get("parameters") or {},
                   metrics=_metrics(data), tags=_tags(data, notebook_dir),
                   at=int(float(data.get("finished") or data.get("started") or 0) * 1000))
        with tempfile.TemporaryDirectory(prefix="cellpipe-mlflow-") as directory:
            _stage(run_dir, data, Path(directory))
            client.log_artifacts(run_id, directory)
        end = data.get("finished")
        terminate(client, run_id, MLFLOW_STATUS.get(str(data.get("status")), "FAILED"),
                  end_time=int(float(end) * 1000) if end else None)
    except Exception as exc:
        raise unavailable(uri, exc) from exc
    logged: dict[str, Any] = {"uri": uri, "experiment": tracking.experiment,
                              "run_id": run_id, "source": tracking.source}
    if parent is not None and parent.run_id is not None:
        parent.children.append(run_id)
        logged["parent_run_id"] = parent.run_id
    return logged


def _mlflow_run(client: Any, tracking: Tracking, data: Mapping[str, Any],
                parent: ParentRun | None) -> str:
    """The MLflow run to log into: the one a resumed run had, else a new one."""
    earlier = data.get("tracking") or {}
    if earlier.get("run_id") and earlier.get("uri") == tracking.uri:
        try:
            client.update_run(earlier["run_id"], status="RUNNING")
            return str(earlier["run_id"])
        except Exception:
            pass  # deleted there, or another server's: a new one
    tags = {RUN_ID_TAG: str(data["id"])}
    name: str | None = None
    extra: dict[str, str] = {}
    if parent is not None and parent.run_id is not None:
        tags[PARENT_TAG] = parent.run_id
        name, extra = parent._child
    started = data.get("started") or data.get("created")
    created = client.create_run(experiment_id(client, tracking.experiment),
                                start_time=int(float(started) * 1000) if started else None,
                                run_name=name or str(data["id"]), tags={**tags, **extra})
    return str(created.info.run_id)


def _metrics(data: Mapping[str, Any]) -> dict[str, float]:
    found = numbers(data.get("metrics") or {})
    if isinstance(data.get("duration"), (int, float)):
        found["cellpipe.duration"] = float(data["duration"])
    for step, state in (data.get("steps") or {}).items():
        if isinstance(state.get("duration"), (int, float)):
            found[f"cellpipe.step.{step}.duration"] = float(state["duration"])
    return found


def _tags(data: Mapping[str, Any], notebook_dir: Path | None) -> dict[str, str]:
    notebook = str(data.get("notebook") or "")
    tags = {"cellpipe.status": str(data.get("status")), "cellpipe.engine":
            str(data.get("engine", "local")), "cellpipe.notebook": notebook,
            "mlflow.source.name": notebook, "mlflow.source.type": "NOTEBOOK"}
    if data.get("error"):
        tags["cellpipe.error"] = str(data["error"])
    for step, state in (data.get("steps") or {}).items():
        tags[f"cellpipe.step.{step}.status"] = str(state.get("status"))
        why = state.get("reason") or state.get("message")
        if why:
            tags[f"cellpipe.step.{step}.reason"] = str(why)
    if notebook_dir is not None:
        tags.update(git_tags(notebook_dir, notebook_dir / Path(notebook).name
                             if notebook else None))
    return tags


def _stage(run_dir: Path, data: Mapping[str, Any], stage: Path) -> None:
    layout = RunLayout(run_dir)
    if layout.spec.is_file():
        (stage / "spec.json").write_bytes(layout.spec.read_bytes())
    (stage / "cellpipe").mkdir()
    record = {k: v for k, v in data.items() if k != "tracking"}
    (stage / "cellpipe" / "run.json").write_text(json.dumps(record, indent=2, default=str),
                                                 encoding="utf-8")
    for step in data.get("steps") or {}:
        stage_step(layout.step(step).path, stage / STEPS_PREFIX / step, step)


def _warn(error: TrackingError) -> None:
    warnings.warn(f"tracking failed: {error}", TrackingWarning, stacklevel=3)
