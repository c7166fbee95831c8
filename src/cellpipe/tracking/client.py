"""MLflow's client, imported on first use; reaching the server; experiments by name."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from cellpipe.errors import CellpipeError, MissingDependencyError

# MLflow's own limits: a param value holds 6000 characters, a tag's 8000 (longer: refused).
PARAM_LIMIT = 6000
TAG_LIMIT = 8000
PROBE_SECONDS = 5.0


class TrackingError(CellpipeError):
    """Logging to MLflow failed (the server is down, refused a value, …)."""

    http_status = 503


def mlflow_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri``, after checking an HTTP server answers.

    Raises:
        MissingDependencyError: MLflow's client is not installed.
        TrackingError: the server at ``uri`` does not answer.
    """
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingDependencyError.for_extra(exc.name or "mlflow", "mlflow",
                                               f"tracking runs in {uri}") from None
    probe(uri)
    return MlflowClient(tracking_uri=uri)


def preload() -> None:
    """Import MLflow's client and nbconvert in a background thread while a tracked run runs.

    Importing them takes seconds (measured here: ~6 s for ``mlflow.tracking`` with the
    full ``mlflow`` installed); done meanwhile, logging at the run's end does not wait
    for it. Steps run in other processes; a failed import is left for logging to report.
    """
    import importlib
    import threading

    def load() -> None:
        for name in ("mlflow.tracking", "mlflow.entities", "nbconvert"):
            try:
                importlib.import_module(name)
            except Exception:  # reported (or worked around) when logging needs it
                continue

    threading.Thread(target=load, name="cellpipe-mlflow-import", daemon=True).start()


def probe(uri: str) -> None:
    """Ask an ``http(s)`` tracking server's ``/health`` once, quickly.

    MLflow's client would retry for minutes before saying it cannot connect.

    Raises:
        TrackingError: no answer, or not OK, within :data:`PROBE_SECONDS`.
    """
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=PROBE_SECONDS) as answer:
            if answer.status == 200:
                return
            problem = f"answered {answer.status}"
    except urllib.error.HTTPError as exc:
        problem = f"answered {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:
        problem = f"cannot be reached ({getattr(exc, 'reason', exc)})"
    raise TrackingError(f"the MLflow tracking server at {uri} {problem}",
                        hint="start it (mlflow server --host HOST --port PORT) or fix the "
                        "URI (--track, MLFLOW_TRACKING_URI, metadata cellpipe.tracking)")


def experiment_id(client: Any, name: str) -> str:
    """The id of experiment ``name``, created when missing (also when another creates it)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:
        found = client.get_experiment_by_name(name)  # created meanwhile by a parallel step
        if found is None:
            raise
        return str(found.experiment_id)


def param_text(value: Any) -> str:
    """A parameter value as MLflow keeps it: text (JSON for anything but a string)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:PARAM_LIMIT]


def numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The values that are finite numbers (MLflow's metrics), as floats; the rest left out."""
    found = {}
    for name, value in values.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            found[str(name)] = float(value)
    return found


def log_values(client: Any, run_id: str, *, params: Mapping[str, Any] | None = None,
               metrics: Mapping[str, float] | None = None,
               tags: Mapping[str, str] | None = None, at: int | None = None) -> None:
    """Log params, metrics and tags in batches (MLflow takes 100 params or 1000 items a call)."""
    from mlflow.entities import Metric, Param, RunTag

    param_list = [Param(k, param_text(v)) for k, v in sorted((params or {}).items())]
    metric_list = [Metric(k, v, at or 0, 0) for k, v in sorted((metrics or {}).items())]
    tag_list = [RunTag(k, str(v)[:TAG_LIMIT]) for k, v in sorted((tags or {}).items())]
    for start in range(0, len(param_list), 100):
        client.log_batch(run_id, params=param_list[start:start + 100])
    for start in range(0, len(metric_list), 1000):
        client.log_batch(run_id, metrics=metric_list[start:start + 1000])
    for start in range(0, len(tag_list), 1000):
        client.log_batch(run_id, tags=tag_list[start:start + 1000])


def terminate(client: Any, run_id: str, status: str, end_time: int | None = None) -> None:
    """End an MLflow run with ``status``, without the links MLflow prints on stdout.

    A step's or a command's output is not MLflow's to write to.
    """
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        client.set_terminated(run_id, status, end_time=end_time)


def unavailable(uri: str, exc: BaseException) -> TrackingError:
    """A tracking failure as one message, whatever MLflow or the network raised."""
    if isinstance(exc, TrackingError):
        return exc
    if isinstance(exc, CellpipeError):
        return TrackingError(exc.message, hint=exc.hint)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TrackingError(f"logging to MLflow at {uri} failed: {text[:300]}",
                         hint="the run itself is kept; see `cellpipe show RUN`")


__all__ = ["PARAM_LIMIT", "TrackingError", "experiment_id", "log_values", "mlflow_client",
           "numbers", "param_text", "preload", "probe", "terminate", "unavailable"]
