"""Submit a compiled pipeline (KFP v2 IR YAML) to a Kubeflow Pipelines API server.

Everything goes through ``kfp.Client``: the run is created from the package file (in an
experiment, made when missing), then optionally watched until it ends or the timeout passes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellpipe.errors import CellpipeError, MissingDependencyError, ServiceUnavailableError

__all__ = ["FINAL_STATES", "server_error", "submit_kfp"]

# KFP v2 run states (``V2beta1RuntimeState``) after which nothing changes any more.
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")
_POLL_SECONDS = 5.0


def submit_kfp(
    pipeline_yaml_path: str | Path,
    host: str,
    *,
    experiment: str | None = None,
    arguments: Mapping[str, Any] | None = None,
    watch: bool = False,
    timeout: float | None = None,
    run_name: str | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
) -> tuple[str, str]:
    """Create a run of the compiled pipeline on the KFP server at ``host``.

    Args:
        pipeline_yaml_path: The IR YAML written from :func:`~cellpipe.targets.kfp.compile.
            compile_kfp`.
        host: The KFP API endpoint, e.g. ``http://localhost:8080`` (a port-forward of
            ``ml-pipeline-ui``) or the Kubeflow dashboard's ``/pipeline`` URL.
        experiment: The experiment to file the run under (created when missing); ``None``
            uses the server's default experiment.
        arguments: Pipeline parameter values; absent ones take the notebook's defaults.
        watch: Wait until the run ends (or ``timeout`` passes).
        timeout: Longest wait in seconds when watching; ``None`` waits as long as it runs.
        run_name: The run's display name (default: the pipeline name and a timestamp).
        namespace: The user namespace of a multi-user Kubeflow (default: the client's).
        service_account: The Kubernetes service account the run's pods use.

    Returns:
        ``(run_id, state)``: the state is the last one seen (e.g. ``PENDING`` when not
        watching, ``SUCCEEDED`` or ``FAILED`` when the run ended while watched, and
        ``RUNNING`` when the timeout passed first).

    Raises:
        CellpipeError: The file is missing, or the server cannot be reached or refuses the
            run (the message says which host, the hint how to reach it).
        MissingDependencyError: ``kfp`` is not installed.
    """
    path = Path(pipeline_yaml_path)
    if not path.is_file():
        raise CellpipeError(f"no compiled pipeline at {path}", path=str(path),
                            hint="compile it first with `cellpipe compile --target kfp`")
    try:
        import kfp
    except ImportError:
        raise MissingDependencyError.for_extra("kfp", "kfp", "submitting to Kubeflow") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP >= 2.0.0b2"
            client = kfp.Client(host=host, **({"namespace": namespace} if namespace else {}))
        run = client.create_run_from_pipeline_package(
            str(path), arguments=dict(arguments or {}), run_name=run_name,
            experiment_name=experiment, namespace=namespace, service_account=service_account)
        run_id = str(run.run_id)
        state = _state(client, run_id)
        if watch:
            deadline = None if timeout is None else time.monotonic() + timeout
            while state not in FINAL_STATES and (deadline is None or time.monotonic() < deadline):
                pause = _POLL_SECONDS if deadline is None else max(
                    0.0, min(_POLL_SECONDS, deadline - time.monotonic()))
                time.sleep(pause)
                state = _state(client, run_id)
    except CellpipeError:
        raise
    except Exception as exc:  # urllib3, kfp_server_api.ApiException, socket errors, ...
        raise server_error(host, exc) from exc
    return run_id, state


def run_state(host: str, run_id: str) -> str:
    """The state of run ``run_id`` on the KFP server at ``host``."""
    try:
        import kfp
    except ImportError:
        raise MissingDependencyError.for_extra("kfp", "kfp", "asking Kubeflow") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return _state(kfp.Client(host=host), run_id)
    except Exception as exc:  # urllib3, kfp_server_api.ApiException, socket errors, ...
        raise server_error(host, exc) from exc


def _state(client: Any, run_id: str) -> str:
    run = client.get_run(run_id)
    return str(getattr(run, "state", None) or "RUNTIME_STATE_UNSPECIFIED")


def server_error(host: str, exc: Exception, what: str = "the run") -> CellpipeError:
    """A CellpipeError for what ``kfp.Client`` raised: refused (HTTP status) or unreachable."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):  # the server answered, and said no
        reason = getattr(exc, "reason", "") or ""
        body = str(getattr(exc, "body", "") or "").strip()
        return CellpipeError(
            f"the Kubeflow Pipelines API at {host} refused {what}: HTTP {status} {reason}"
            + (f": {body[:500]}" if body else ""),
            hint="check the pipeline's parameters and your access to the namespace"
            if status < 500 else "look at the ml-pipeline server's logs")
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ServiceUnavailableError(
        f"cannot reach the Kubeflow Pipelines API at {host}: {detail}",
        hint="check the host and port (e.g. `kubectl port-forward -n kubeflow "
             "svc/ml-pipeline-ui 8080:80` and --host http://localhost:8080)")
