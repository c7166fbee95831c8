"""Submit an Argo Workflow to a cluster, watch its steps, read their logs.

Everything goes through the Kubernetes API with the ``kubernetes`` client (the
``argoproj.io/v1alpha1`` ``workflows`` custom resource and the step pods); the Argo server
and the ``argo`` CLI are not needed. A step is a task of the Workflow's DAG template; its
state is the Argo node whose ``displayName`` is the task's name.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cellpipe.errors import CellpipeError, MissingDependencyError, ServiceUnavailableError
from cellpipe.events import StepEvent

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
SUBMISSION_LABEL = "cellpipe.dev/submission"
FINAL_PHASES = ("Succeeded", "Failed", "Error")
EXIT_CODES = {"Succeeded": 0, "Failed": 1, "Error": 1, "Timeout": 124}
# Argo node phase -> the status cellpipe's progress displays know.
NODE_STATUS = {"Pending": "running", "Running": "running", "Succeeded": "succeeded",
               "Failed": "failed", "Error": "failed", "Skipped": "skipped", "Omitted": "skipped"}
_INCLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_TIMEOUT = 30  # seconds for one API request


def exit_code(phase: str) -> int:
    """The process exit code for a workflow's final phase (``Timeout`` is 124, like timeout(1))."""
    return EXIT_CODES.get(phase, 1)


@dataclass
class WorkflowStatus:
    """A workflow's state as its controller reported it.

    Attributes:
        name: The workflow's name.
        phase: ``Pending`` (not picked up yet), ``Running``, ``Succeeded``, ``Failed``, ``Error``.
        started: When it started (RFC 3339), if it has.
        finished: When it finished (RFC 3339), if it has.
        message: The controller's message (why it failed), or "".
        steps: Step name -> (Argo node phase, node message), for the steps that have a node.
        outputs: The steps' output parameters (the metrics), values decoded from JSON text.
        store: Where the steps keep their values when that is an object store (an fsspec
            URL), else None (a workflow volume, inside the cluster).
    """

    name: str
    phase: str
    started: str | None = None
    finished: str | None = None
    message: str = ""
    steps: dict[str, tuple[str, str]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    store: str | None = None


def _object_store(workflow: Mapping[str, Any]) -> str | None:
    """The ``--store`` the steps were given, when it is an object store URL."""
    from cellpipe.marshal.store import is_remote

    name = str(workflow.get("metadata", {}).get("name", ""))
    for template in workflow.get("spec", {}).get("templates", []):
        command = (template.get("container") or {}).get("command") or []
        if "--store" in command[:-1]:
            store = str(command[command.index("--store") + 1])
            return store.replace("{{workflow.name}}", name) if is_remote(store) else None
    return None


def kubernetes_module() -> Any:
    """The ``kubernetes`` package; without it, the error naming the extra that installs it."""
    try:
        import kubernetes
    except ImportError as exc:
        raise MissingDependencyError.for_extra("kubernetes", "argo", "submitting to Argo") from exc
    return kubernetes


def default_client() -> tuple[Any, str]:
    """An API client from the kubeconfig (else the in-cluster account) and its namespace."""
    kube = kubernetes_module()
    configuration = kube.client.Configuration()
    # The client reads KUBECONFIG when it is imported; read it now (None: ~/.kube/config).
    config_file = os.environ.get("KUBECONFIG") or None
    try:
        kube.config.load_kube_config(config_file, client_configuration=configuration)
        _, context = kube.config.list_kube_config_contexts(config_file)
        namespace = (context or {}).get("context", {}).get("namespace") or "default"
    except Exception as kubeconfig_error:  # ConfigException, OSError, YAML errors
        try:
            kube.config.load_incluster_config(client_configuration=configuration)
        except Exception as exc:
            where = os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise CellpipeError(
                f"no Kubernetes cluster configured: the kubeconfig ({where}) gave "
                f"{kubeconfig_error}, and this is not a pod in a cluster",
                hint="set KUBECONFIG to your cluster's kubeconfig and check that "
                "'kubectl config current-context' names the cluster",
            ) from exc
        try:
            namespace = Path(_INCLUSTER_NAMESPACE).read_text(encoding="utf-8").strip() or "default"
        except OSError:
            namespace = "default"
    return kube.client.ApiClient(configuration), namespace


class TransientError(ServiceUnavailableError):
    """The API server was out of reach or answered 5xx: worth asking again while watching."""


class ArgoClient:
    """Submits Workflows to one namespace of a cluster and follows them.

    Args:
        namespace: Where workflows go. Default: the kubeconfig context's namespace, else
            "default". When not given, a manifest's own ``metadata.namespace`` wins.
        api_client: A ``kubernetes.client.ApiClient``. Default: one from the kubeconfig,
            else the in-cluster service account (and then the namespace defaults to "default"
            unless given).
    """

    def __init__(self, namespace: str | None = None, api_client: Any = None) -> None:
        kube = kubernetes_module()
        import urllib3

        self._explicit_namespace = namespace is not None
        default_namespace = "default"
        if api_client is None:
            api_client, default_namespace = default_client()
        self.namespace: str = namespace or default_namespace
        self.api_client = api_client
        self._custom = kube.client.CustomObjectsApi(api_client)
        self._core = kube.client.CoreV1Api(api_client)
        self._api_exception: type[Exception] = kube.client.exceptions.ApiException
        self._transport_errors = (OSError, urllib3.exceptions.HTTPError)

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self.api_client.configuration.host)

    def submit(self, manifest: dict[str, Any]) -> str:
        """Create the Workflow and return its name (generated from ``metadata.generateName``)."""
        api_version = str(manifest.get("apiVersion", ""))
        if manifest.get("kind") != "Workflow" or not api_version.startswith(f"{GROUP}/"):
            raise CellpipeError(
                "only an Argo Workflow can be submitted (kind Workflow, apiVersion argoproj.io/*), "
                f"not kind {manifest.get('kind')!r}, apiVersion {manifest.get('apiVersion')!r}"
            )
        body = copy.deepcopy(manifest)
        metadata = body.setdefault("metadata", {})
        self._place(metadata, "workflow")
        submission = uuid.uuid4().hex
        metadata.setdefault("labels", {})[SUBMISSION_LABEL] = submission
        self._check_crd()
        created = self._workflows("create a workflow", "create", body)
        if isinstance(created, dict) and created.get("metadata", {}).get("name"):
            return str(created["metadata"]["name"])
        # Some servers (kmock) answer with an empty body: find the object by its label.
        selector = f"{SUBMISSION_LABEL}={submission}"
        listed = self._workflows("list workflows", "list", label_selector=selector)
        for item in listed.get("items", []):
            meta = item.get("metadata", {})
            if meta.get("labels", {}).get(SUBMISSION_LABEL) == submission and meta.get("name"):
                return str(meta["name"])
        raise CellpipeError(
            f"the workflow was created in namespace {self.namespace!r} at {self.host}, "
            "but the server did not say its name",
            hint=f"look for it: kubectl get workflows -n {self.namespace} -l {selector}",
        )

    def _place(self, metadata: dict[str, Any], kind: str) -> None:
        """Set the object's namespace: this client's, or (when not given one) the object's."""
        wanted = metadata.get("namespace")
        if wanted and wanted != self.namespace:
            if self._explicit_namespace:
                raise CellpipeError(
                    f"the {kind} is for namespace {wanted!r} but this client submits to "
                    f"{self.namespace!r}",
                    hint="pass the same namespace to both, or drop metadata.namespace",
                )
            self.namespace = wanted
        metadata["namespace"] = self.namespace

    def get(self, name: str) -> dict[str, Any]:
        """The Workflow object as the API server has it."""
        workflow: dict[str, Any] = self._workflows(f"get workflow {name!r}", "get", name)
        return workflow

    def status(self, name: str) -> WorkflowStatus:
        """The workflow's phase, times, message, step phases and metric outputs."""
        workflow = self.get(name)
        status = workflow.get("status") or {}
        steps: dict[str, tuple[str, str]] = {}
        outputs: dict[str, Any] = {}
        for step, node in _step_nodes(workflow).items():
            steps[step] = (str(node.get("phase", "")), str(node.get("message", "")))
            for parameter in _node_outputs(workflow, node):
                outputs[str(parameter["name"])] = _decode(parameter.get("value"))
        return WorkflowStatus(name, status.get("phase") or "Pending", status.get("startedAt"),
                              status.get("finishedAt"), status.get("message") or "", steps, outputs,
                              _object_store(workflow))

    def watch(self, name: str, on_event: Callable[[StepEvent], None] | None = None,
              timeout: float | None = None, poll: float = 1.0) -> str:
        """Follow the workflow until it ends; report each change of a step's state.

        Up to 3 reads in a row may fail for want of the server (unreachable, 5xx).

        Returns:
            The final phase (``Succeeded``, ``Failed``, ``Error``), or ``Timeout`` when
            ``timeout`` seconds passed first (the workflow is left running).
        """
        emit = on_event or (lambda event: None)
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: dict[str, tuple[str, int]] = {}
        failures = 0
        while True:
            try:
                workflow, failures = self.get(name), 0
            except TransientError:
                failures += 1
                if failures > 3:
                    raise
                workflow = {}
            phase = (workflow.get("status") or {}).get("phase") or "Pending"
            nodes = _step_nodes(workflow)
            for step, node in nodes.items():
                event = _event(workflow, name, step, node)
                if seen.get(step) != (event.status, event.attempt):
                    seen[step] = (event.status, event.attempt)
                    emit(event)
            if workflow and phase in FINAL_PHASES:
                for step in _task_names(workflow):
                    if step not in nodes:
                        emit(StepEvent(name, step, "skipped", message=f"not run: {phase}"))
                return str(phase)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return "Timeout"
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - now)))

    def logs(self, name: str, step: str) -> str:
        """The log of the step's container ``main`` (its last attempt's pod)."""
        workflow = self.get(name)
        node = _step_nodes(workflow).get(step)
        if node is None:
            tasks = _task_names(workflow)
            if step not in tasks:
                known = ", ".join(tasks) or "none"
                raise CellpipeError(
                    f"workflow {name!r} has no step {step!r} (its steps: {known})", step=step
                )
            raise CellpipeError(
                f"step {step!r} of workflow {name!r} has no pod yet: it has not started",
                step=step,
                hint="wait until it runs (cellpipe watches it), then ask again",
            )
        pod_node = _last_attempt(workflow, node)

        def pods() -> Iterator[str | None]:
            node_id = str(pod_node.get("id", ""))
            template, suffix = pod_node.get("templateName"), node_id.rpartition("-")[2]
            if template and suffix.isdigit():  # Argo >= 3.4: <workflow>-<template>-<hash>
                yield f"{name}-{template}-{suffix}"
            yield node_id  # older Argo: the node id
            yield self._pod_of_node(name, str(pod_node.get("name")))

        for pod in pods():
            # Unparsed: the client would turn a log that happens to be JSON into a Python repr.
            response = pod and self._call(
                f"read the log of pod {pod!r}", self._core.read_namespaced_pod_log, pod,
                self.namespace, container="main", missing_ok=True, _preload_content=False)
            if response:
                return bytes(response.data).decode("utf-8", errors="replace")
        raise CellpipeError(
            f"step {step!r} of workflow {name!r} has no pod yet "
            f"(node phase {pod_node.get('phase', '?')})",
            step=step,
            hint=f"kubectl get pods -n {self.namespace} -l workflows.argoproj.io/workflow={name}",
        )

    def _pod_of_node(self, workflow: str, node_name: str) -> str | None:
        """The pod Argo labelled with the workflow and annotated with the node's name."""
        label = "workflows.argoproj.io/workflow"
        listed = self._call("list the workflow's pods", self._core.list_namespaced_pod,
                            self.namespace, label_selector=f"{label}={workflow}")
        for pod in listed.items:
            meta = pod.metadata
            annotations = meta.annotations or {}
            if (meta.labels or {}).get(label) == workflow and (
                annotations.get("workflows.argoproj.io/node-name") == node_name
            ):
                return str(meta.name)
        return None

    def _check_crd(self, plural: str = PLURAL) -> None:
        """Fail clearly when the cluster does not serve Argo's ``plural`` resource."""
        try:
            found = self._call("discover the Argo API", self._custom.get_api_resources,
                               GROUP, VERSION, missing_ok=True)
        except TransientError:
            raise
        except CellpipeError:
            return  # no discovery rights, say: the create call tells what is wrong
        if found is not None and any(r.name == plural for r in found.resources or []):
            return
        raise CellpipeError(
            f"the Kubernetes API at {self.host} does not serve {plural}.{GROUP}/{VERSION}: "
            f"is Argo Workflows installed (for namespace {self.namespace!r})?",
            hint="install Argo Workflows or switch to its cluster; "
            f"check with 'kubectl get crd {plural}.{GROUP}' and "
            "'kubectl config current-context'",
        )

    def _workflows(self, what: str, verb: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self._custom, f"{verb}_namespaced_custom_object")
        return self._call(what, method, GROUP, VERSION, self.namespace, PLURAL, *args, **kwargs)

    def _call(self, what: str, method: Callable[..., Any], *args: Any,
              missing_ok: bool = False, **kwargs: Any) -> Any:
        """Call the API; None for a 404 when ``missing_ok``; CellpipeErrors for the rest."""
        try:
            return method(*args, _request_timeout=_TIMEOUT, **kwargs)
        except self._api_exception as exc:
            if missing_ok and getattr(exc, "status", None) == 404:
                return None
            raise self._error(exc, what) from exc
        except self._transport_errors as exc:
            raise TransientError(
                f"cannot reach the Kubernetes API server at {self.host}: {exc}",
                hint="check 'kubectl config current-context' and 'kubectl cluster-info', "
                "or set KUBECONFIG",
            ) from exc

    def _error(self, exc: Any, what: str) -> CellpipeError:
        """A CellpipeError carrying the server's message and a hint for its status code."""
        status = getattr(exc, "status", None) or 0
        try:
            message = json.loads(exc.body).get("message") or exc.reason
        except (TypeError, ValueError, AttributeError):
            message = getattr(exc, "reason", None) or str(exc)
        ns = self.namespace
        hints = {
            401: "your credentials were refused: log in to the cluster again "
            "and check 'kubectl config current-context'",
            403: f"your account may not do this in namespace {ns!r}: check "
            f"'kubectl auth can-i create workflows.argoproj.io -n {ns}' and ask for a Role",
            404: f"is Argo installed in namespace {ns!r}? check 'kubectl get crd "
            f"workflows.argoproj.io' and 'kubectl get workflows -n {ns}'",
            409: "a workflow of that name exists: use metadata.generateName, or delete it with "
            f"'kubectl delete workflow NAME -n {ns}'",
            422: "the server rejected the manifest: fix what its message names",
        }
        error = TransientError if status >= 500 else CellpipeError
        return error(
            f"cannot {what} in namespace {ns!r} at {self.host}: {status} {message}",
            hint=hints.get(status, "see the server's message"),
        )


def _task_names(workflow: dict[str, Any]) -> list[str]:
    """The DAG tasks of the entrypoint template, in order: the steps."""
    spec = workflow.get("spec") or {}
    entry = spec.get("entrypoint", "main")
    for template in spec.get("templates") or []:
        if template.get("name") == entry:
            return [str(t["name"]) for t in (template.get("dag") or {}).get("tasks") or []]
    return []


_ATTEMPT = re.compile(r"\(\d+\)$")


def _step_nodes(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Step name -> its Argo node (a Pod, Retry or Skipped node), in the DAG's task order."""
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    by_name: dict[str, dict[str, Any]] = {}
    for node in nodes.values():
        name = str(node.get("displayName", ""))
        if node.get("type") in {"Pod", "Retry", "Skipped"} and not _ATTEMPT.search(name):
            by_name.setdefault(name, node)
    tasks = _task_names(workflow) or list(by_name)
    return {task: by_name[task] for task in tasks if task in by_name}


def _attempts(workflow: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    """A Retry node's attempts (its child Pod nodes), oldest first."""
    if node.get("type") != "Retry":
        return []
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    return [nodes[child] for child in node.get("children") or [] if child in nodes]


def _last_attempt(workflow: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    attempts = _attempts(workflow, node)
    return attempts[-1] if attempts else node


def _node_outputs(workflow: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    for candidate in (node, _last_attempt(workflow, node)):
        parameters = (candidate.get("outputs") or {}).get("parameters")
        if parameters:
            return [p for p in parameters if "name" in p]
    return []


def _event(workflow: dict[str, Any], run_id: str, step: str, node: dict[str, Any]) -> StepEvent:
    status = NODE_STATUS.get(str(node.get("phase", "")), "running")
    attempt = max(1, len(_attempts(workflow, node)))
    elapsed = _elapsed(node.get("startedAt"), node.get("finishedAt"))
    return StepEvent(run_id, step, status, attempt, elapsed, str(node.get("message", "")))


def _elapsed(started: str | None, finished: str | None) -> float:
    """Seconds from ``started`` to ``finished`` (or now); RFC 3339 times as Argo writes them."""
    try:
        start = datetime.fromisoformat(str(started).replace("Z", "+00:00"))
        end = datetime.fromisoformat(finished.replace("Z", "+00:00")) if finished else None
    except ValueError:
        return 0.0
    return max(0.0, ((end or datetime.now(timezone.utc)) - start).total_seconds())


def _decode(value: Any) -> Any:
    """An output parameter's value: the JSON text the step runtime wrote, decoded."""
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value
