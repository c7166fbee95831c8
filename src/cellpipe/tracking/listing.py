"""``cellpipe runs --mlflow``: the tracked runs of an experiment, read back from MLflow."""

from __future__ import annotations

from typing import Any

from cellpipe.tracking.client import mlflow_client, unavailable
from cellpipe.tracking.config import Tracking

__all__ = ["tracked_runs"]

_OWN = "cellpipe."


def tracked_runs(tracking: Tracking, *, limit: int = 1000) -> list[dict[str, Any]]:
    """The runs of ``tracking.experiment``, newest first (none when it does not exist yet).

    Each: ``run_id`` (MLflow's), ``name``, ``cellpipe_run_id`` (None for a parent or a
    cluster step), ``status``, ``start`` (epoch ms), ``parent_run_id``, ``kind`` (``run``,
    ``parent``, ``sweep-run``, ``step``), ``params`` and ``metrics`` (cellpipe's own
    ``cellpipe.*`` durations left out).

    Raises:
        TrackingError: MLflow is missing or the server cannot be reached.
    """
    try:
        client = mlflow_client(tracking.uri)
        experiment = client.get_experiment_by_name(tracking.experiment)
        if experiment is None:
            return []
        found = client.search_runs([experiment.experiment_id], max_results=limit,
                                   order_by=["attributes.start_time DESC"])
    except Exception as exc:
        raise unavailable(tracking.uri, exc) from exc
    rows = []
    for run in found:
        tags = run.data.tags
        rows.append({
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "cellpipe_run_id": tags.get("cellpipe.run_id"),
            "status": run.info.status,
            "start": run.info.start_time,
            "parent_run_id": tags.get("mlflow.parentRunId"),
            "kind": tags.get("cellpipe.kind", "run"),
            "params": dict(run.data.params),
            "metrics": {k: v for k, v in run.data.metrics.items() if not k.startswith(_OWN)},
        })
    return rows
