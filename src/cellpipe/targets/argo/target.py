"""The Argo Workflows target (``--target argo``): a Workflow, sent to the Kubernetes API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from cellpipe.core.spec import PipelineSpec
from cellpipe.targets.base import Document, RunStatus, Schedule, ScheduleOptions, Submission
from cellpipe.targets.cluster import ClusterSettings
from cellpipe.targets.connection import ConnectionField

__all__ = ["ArgoTarget"]


class ArgoTarget:
    """A Workflow: compiled, submitted, watched, its status and logs; or a CronWorkflow."""

    name: ClassVar[str] = "argo"
    description: ClassVar[str] = "an Argo Workflow (YAML), submitted through the Kubernetes API"
    connection: ClassVar[tuple[ConnectionField, ...]] = (
        ConnectionField("namespace", description="the Kubernetes namespace of the Workflow "
                        "(default: the kubeconfig context's)", example="pipelines"),
    )

    def compile(self, spec: PipelineSpec, images: Mapping[str, str],
                settings: ClusterSettings, options: Mapping[str, Any]) -> Document:
        """The Workflow as data and as YAML (stable key order).

        Its notes say when the steps' artifacts are not kept (no artifact repository and no
        object store).
        """
        from cellpipe.targets.argo.artifacts import artifacts_note
        from cellpipe.targets.argo.compile import compile_argo, to_yaml

        workflow = compile_argo(spec, images, settings,
                                carry_code=bool(options.get("carry_code")))
        # with an object store, each run's values are under STORAGE/<workflow name>
        store = f"{settings.storage}/{{name}}" if settings.storage else None
        note = artifacts_note(settings)
        return Document(text=to_yaml(workflow), data=workflow, store=store,
                        notes=(f"argo: {note}",) if note else ())

    def submit(self, document: Document, *, parameters: Mapping[str, Any],
               watch: bool, timeout: float | None,
               on_event: Callable[[Any], None] | None,
               connection: Mapping[str, Any]) -> Submission:
        """Create the Workflow with ``parameters`` as its arguments; watch it if asked."""
        from cellpipe.targets.argo.compile import parameter_text
        from cellpipe.targets.argo.submit import ArgoClient

        manifest = document.data
        if parameters:
            values = {k: parameter_text(v) for k, v in parameters.items()}
            for parameter in manifest["spec"].get("arguments", {}).get("parameters", []):
                if parameter["name"] in values:
                    parameter["value"] = values[parameter["name"]]
        client = ArgoClient(namespace=connection.get("namespace"))
        name = client.submit(manifest)
        title = f"workflow {name}"
        if not watch:
            return Submission(name, "Submitted", title)
        return Submission(name, client.watch(name, on_event=on_event, timeout=timeout), title)

    def status(self, name: str, connection: Mapping[str, Any]) -> RunStatus:
        """The Workflow's phase, each step's node phase and the metrics they output."""
        from cellpipe.targets.argo.submit import ArgoClient

        found = ArgoClient(namespace=connection.get("namespace")).status(name)
        return RunStatus(found.name, found.phase, found.phase not in ("Pending", "Running", ""),
                         f"workflow {found.name}", found.message, found.steps, found.outputs,
                         found.store)

    def logs(self, name: str, step: str, connection: Mapping[str, Any]) -> str:
        """What the step's pod printed."""
        from cellpipe.targets.argo.submit import ArgoClient

        return ArgoClient(namespace=connection.get("namespace")).logs(name, step)

    def exit_code(self, status: str) -> int:
        """0 for ``Succeeded``, 124 for ``Timeout`` (as timeout(1)), 1 otherwise."""
        from cellpipe.targets.argo.submit import exit_code

        return exit_code(status)

    def schedule(self, document: Document, *, cron: str, parameters: Mapping[str, Any],
                 connection: Mapping[str, Any], options: ScheduleOptions) -> Schedule:
        """Create a CronWorkflow whose ``workflowSpec`` is the compiled Workflow's spec."""
        from cellpipe.targets.argo.cron import cron_workflow, schedule_of
        from cellpipe.targets.argo.cron_client import CronWorkflowClient

        manifest = cron_workflow(document.data, cron, parameters=parameters, options=options)
        client = CronWorkflowClient(namespace=connection.get("namespace"))
        return schedule_of(client.create(manifest))

    def schedules(self, connection: Mapping[str, Any]) -> list[Schedule]:
        """The CronWorkflows cellpipe made in the namespace, by name."""
        from cellpipe.targets.argo.cron import schedule_of
        from cellpipe.targets.argo.cron_client import CronWorkflowClient

        client = CronWorkflowClient(namespace=connection.get("namespace"))
        return [schedule_of(found) for found in client.list_crons()]

    def unschedule(self, name: str, connection: Mapping[str, Any]) -> Schedule:
        """Delete the CronWorkflow ``name`` (the Workflows it started stay)."""
        from cellpipe.targets.argo.cron import schedule_of
        from cellpipe.targets.argo.cron_client import CronWorkflowClient

        client = CronWorkflowClient(namespace=connection.get("namespace"))
        return schedule_of(client.delete_cron(name))
