"""The Kubeflow Pipelines target (``--target kfp``): KFP v2 IR YAML, run by ``kfp.Client``."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from cellpipe.core.spec import PipelineSpec
from cellpipe.errors import CellpipeError
from cellpipe.targets.base import Document, RunStatus, Schedule, ScheduleOptions, Submission
from cellpipe.targets.cluster import ClusterSettings
from cellpipe.targets.connection import ConnectionField

__all__ = ["KfpTarget"]

# The run states of KFP v2 that are not final (the rest: SUCCEEDED, FAILED, SKIPPED, CANCELED)
_RUNNING_STATES = frozenset({"PENDING", "RUNNING", "CANCELING", "PAUSED",
                             "RUNTIME_STATE_UNSPECIFIED"})


class KfpTarget:
    """KFP v2 IR by the kfp SDK; runs and recurring runs, and their status, by its API."""

    name: ClassVar[str] = "kfp"
    description: ClassVar[str] = "a Kubeflow Pipelines v2 pipeline (IR YAML), run through kfp"
    connection: ClassVar[tuple[ConnectionField, ...]] = (
        ConnectionField("host", required=True, description="the Kubeflow Pipelines API "
                        "endpoint", example="http://kfp.local:8888"),
        ConnectionField("experiment", description="the experiment the run is filed under "
                        "(default: the server's)", example="Default"),
        ConnectionField("namespace", description="the user namespace of a multi-user "
                        "Kubeflow (default: the client's)", example="kubeflow-user"),
    )

    def compile(self, spec: PipelineSpec, images: Mapping[str, str],
                settings: ClusterSettings, options: Mapping[str, Any]) -> Document:
        """The IR YAML (``options``: ``caching``).

        With an object store (``--storage``), every step also leaves its values, result and
        report under ``STORAGE/<run id>``, which :class:`cellpipe.ClusterRun` reads; without
        one, they stay in the KFP server's own artifact store.
        """
        from cellpipe.targets.kfp.compile import compile_kfp

        text = compile_kfp(spec, images, caching=options.get("caching"), settings=settings)
        if settings.storage:
            return Document(text=text, store=f"{settings.storage.rstrip('/')}/{{name}}",
                            notes=("kfp: each run also keeps its values, results and reports "
                                   f"in {settings.storage}/<run id>; as every run's id "
                                   "differs, KFP's cache does not reuse steps across runs",))
        return Document(text=text)

    def submit(self, document: Document, *, parameters: Mapping[str, Any],
               watch: bool, timeout: float | None,
               on_event: Callable[[Any], None] | None,
               connection: Mapping[str, Any]) -> Submission:
        """Start a run on the KFP server at ``connection["host"]``.

        Per-step events are not followed: ``on_event`` is not called.
        """
        from cellpipe.targets.kfp.submit import submit_kfp

        host = _host(connection)
        with tempfile.TemporaryDirectory(prefix="cellpipe-kfp-") as directory:
            path = Path(directory) / "pipeline.yaml"
            path.write_text(document.text, encoding="utf-8")
            run_id, state = submit_kfp(path, host, experiment=connection.get("experiment"),
                                       arguments=dict(parameters), watch=watch,
                                       timeout=timeout, namespace=connection.get("namespace"))
        return Submission(str(run_id), str(state), f"KFP run {run_id}")

    def status(self, name: str, connection: Mapping[str, Any]) -> RunStatus:
        """The run's state (``RUNNING``, ``SUCCEEDED``, …); KFP's API gives no step phases here."""
        from cellpipe.targets.kfp.submit import run_state

        state = run_state(_host(connection), name)
        return RunStatus(name, state, state not in _RUNNING_STATES, f"KFP run {name}")

    def logs(self, name: str, step: str, connection: Mapping[str, Any]) -> str:
        """KFP's API serves no pod logs: the error says where to read them."""
        raise CellpipeError(
            f"the Kubeflow Pipelines API does not serve the logs of step {step!r}",
            step=step, hint=f"read them in the KFP UI (run {name}) or with `kubectl logs -n "
            f"NAMESPACE -l pipeline/runid={name}`")

    def exit_code(self, status: str) -> int:
        """0 for ``SUCCEEDED``, 124 for a timeout (as timeout(1)), 1 otherwise."""
        upper = status.upper()
        if upper == "SUCCEEDED":
            return 0
        return 124 if upper in ("TIMEOUT", "TIMED_OUT") else 1

    def schedule(self, document: Document, *, cron: str, parameters: Mapping[str, Any],
                 connection: Mapping[str, Any], options: ScheduleOptions) -> Schedule:
        """Create a recurring run of the IR with a cron trigger (in ``experiment``)."""
        from cellpipe.targets.kfp import schedule as recurring

        host = _host(connection)
        namespace = connection.get("namespace")
        recurring.check_options(options)  # before the server is asked anything
        return recurring.create_recurring_run(
            recurring.connect(host, namespace), host, document.text, cron=cron,
            parameters=parameters, experiment=connection.get("experiment"),
            namespace=namespace, options=options)

    def schedules(self, connection: Mapping[str, Any]) -> list[Schedule]:
        """The recurring runs the server lists (in ``namespace``)."""
        from cellpipe.targets.kfp import schedule as recurring

        host = _host(connection)
        namespace = connection.get("namespace")
        return recurring.recurring_runs(recurring.connect(host, namespace), host, namespace)

    def unschedule(self, name: str, connection: Mapping[str, Any]) -> Schedule:
        """Delete the recurring run with id (or else name) ``name``."""
        from cellpipe.targets.kfp import schedule as recurring

        host = _host(connection)
        namespace = connection.get("namespace")
        return recurring.delete_recurring_run(recurring.connect(host, namespace), host, name,
                                              namespace)


def _host(connection: Mapping[str, Any]) -> str:
    host = connection.get("host")
    if not host:
        raise CellpipeError("Kubeflow Pipelines needs the API endpoint",
                            hint="pass --host URL (e.g. http://localhost:8080 through "
                            "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`)")
    return str(host)
