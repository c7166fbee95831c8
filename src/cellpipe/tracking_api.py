"""MLflow tracking for the front ends: where runs go, sweeps as nested runs, runs read back.

:mod:`cellpipe.tracking` does the logging; ``cellpipe.api`` re-exports what is public here.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.errors import CellpipeError

if TYPE_CHECKING:
    from cellpipe.core.notebook import NotebookLike
    from cellpipe.core.spec import PipelineSpec
    from cellpipe.engines.runs import RunRecord
    from cellpipe.tracking import ParentRun, Tracking


def tracking_for(notebook: NotebookLike, track: str | bool | None = None, *,
                 split: str | None = None) -> Tracking | None:
    """Where :func:`cellpipe.run` would track ``notebook``'s runs (None: nowhere)."""
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.tracking import resolve_tracking

    nb = load_notebook(notebook)
    return resolve_tracking(nb.metadata, compile_spec(nb, split=split).pipeline.name, track)


def tracked_runs(notebook: NotebookLike, track: str | bool | None = None, *,
                 split: str | None = None) -> tuple[Tracking, list[dict[str, Any]]]:
    """The MLflow runs of ``notebook``'s experiment, newest first, and where they were read.

    Raises:
        CellpipeError: no tracking URI is known (``track``, the metadata, the environment).
        TrackingError: MLflow is missing or the server cannot be reached.
    """
    from cellpipe.tracking.listing import tracked_runs as listed

    tracking = tracking_for(notebook, True if track is None else track, split=split)
    if tracking is None:
        raise CellpipeError("runs --mlflow reads an MLflow server; tracking is off",
                            hint="drop --no-track")
    return tracking, listed(tracking)


def run_tracking(metadata: Any, pipeline: str, track: str | bool | None) -> Tracking | None:
    """The run's tracking: the active parent's, or resolved; MLflow's client checked."""
    from cellpipe.errors import MissingDependencyError
    from cellpipe.tracking import TrackingWarning, active_parent, require_client, resolve_tracking

    parent = active_parent()
    if parent is not None and track is not False and (
            not isinstance(track, str) or track.strip().rstrip("/") == parent.tracking.uri):
        return parent.tracking
    tracking = resolve_tracking(metadata, pipeline, track)
    if tracking is None:
        return None
    try:
        require_client(tracking)
    except MissingDependencyError as exc:
        if tracking.source != "environment":
            raise
        warnings.warn(f"not tracked: {exc}", TrackingWarning, stacklevel=3)
        return None
    return tracking


def tracker(tracking: Tracking, notebook_dir: Path) -> Callable[[RunRecord], None]:
    """What logs an ended run to MLflow and notes where in its ``run.json``.

    MLflow's client starts importing now, in the background, while the run runs.
    """
    from cellpipe.tracking.client import preload

    preload()

    def log(record: RunRecord) -> None:
        from cellpipe.errors import CellpipeError
        from cellpipe.tracking import TrackingWarning, log_run

        try:
            logged = log_run(tracking, record.path, record.data, notebook_dir)
        except CellpipeError as exc:
            logged = {"uri": tracking.uri, "experiment": tracking.experiment,
                      "source": tracking.source, "error": str(exc)}
            warnings.warn(f"run {record.id} was not tracked: {exc}", TrackingWarning,
                          stacklevel=2)
        record.data["tracking"] = logged
        record.save()

    return log


def tracking_requirements(nb: Any, spec: PipelineSpec, tracked: bool | None) -> list[str]:
    """What step images add for tracking: MLflow's client when ``tracked``, else nothing.

    ``tracked`` None: when the notebook's ``cellpipe.tracking`` metadata names a server.
    """
    from cellpipe.tracking.config import client_requirement, resolve_cluster_tracking

    if tracked is None:
        tracked = resolve_cluster_tracking(nb.metadata, spec.pipeline.name) is not None
    return [client_requirement()] if tracked else []


@contextlib.contextmanager
def sweep_tracking(
    notebook: NotebookLike, grid: Mapping[str, list[Any]], *,
    track: str | bool | None = None, split: str | None = None,
) -> Iterator[ParentRun | None]:
    """Inside, tracked runs are children of one MLflow run of the sweep (None: untracked).

    The parent's params are the grid (each name's values, as JSON).
    """
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.tracking import parent_run

    nb = load_notebook(notebook)
    spec = compile_spec(nb, split=split)
    tracking = run_tracking(nb.metadata, spec.pipeline.name, track)
    if tracking is None:
        yield None
        return
    names = ", ".join(grid) or "nothing"
    with parent_run(tracking, f"sweep {names}", params={k: list(v) for k, v in grid.items()},
                    tags={"cellpipe.kind": "sweep", "cellpipe.notebook": spec.notebook.path,
                          "mlflow.source.name": spec.notebook.path}) as parent:
        yield parent


def sweep_child(parent: ParentRun | None,
                values: Mapping[str, Any]) -> contextlib.AbstractContextManager[None]:
    """Name the next run of a tracked sweep after its combination (``lr=0.1, depth=3``)."""
    if parent is None:
        return contextlib.nullcontext()
    return parent.child(name=", ".join(f"{k}={v!r}" for k, v in values.items()),
                        tags={"cellpipe.kind": "sweep-run"})
