"""MLflow tracking: every run an MLflow run, in an experiment named after the pipeline.

Where: :mod:`cellpipe.tracking.config` (``--track URI``, ``track=``, the notebook's
``metadata.cellpipe.tracking``, ``$MLFLOW_TRACKING_URI``). Local runs are logged from their
record when they end (:mod:`cellpipe.tracking.local`); sweeps and tuning nest their runs
under one parent (:func:`parent_run`). On a cluster the steps log from their pods
(:mod:`cellpipe.tracking.step`). ``cellpipe runs --mlflow`` reads them back
(:mod:`cellpipe.tracking.listing`). Only MLflow's client is needed (``cellpipe[mlflow]``:
``mlflow-skinny``), and it is imported only when a run is tracked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cellpipe.tracking.config import (
    Tracking,
    TrackingSecret,
    TrackingWarning,
    require_client,
    resolve_cluster_tracking,
    resolve_tracking,
)

if TYPE_CHECKING:
    from cellpipe.tracking.local import ParentRun, active_parent, log_run, parent_run

_LOCAL = ("ParentRun", "active_parent", "log_run", "parent_run")


def __getattr__(name: str) -> Any:
    # what logs runs is imported when first used: ``import cellpipe.api`` stays cheap
    if name in _LOCAL:
        from cellpipe.tracking import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ParentRun", "Tracking", "TrackingSecret", "TrackingWarning", "active_parent",
           "log_run", "parent_run", "require_client", "resolve_cluster_tracking",
           "resolve_tracking"]
