"""Submit a Katib Experiment, read it and its trials back, follow it to its end.

Everything goes through the Kubernetes API with the ``kubernetes`` client's
``CustomObjectsApi`` (``experiments`` and ``trials`` of ``kubeflow.org/v1beta1``); the Katib
SDK is not needed (it pins an old protobuf that kfp and MLflow cannot share). How the
cluster is found (kubeconfig, else the in-cluster account) is the Argo target's.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cellpipe.errors import CellpipeError
from cellpipe.events import StepEvent

GROUP, VERSION = "kubeflow.org", "v1beta1"
EXPERIMENTS, TRIALS = "experiments", "trials"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"  # Katib labels each trial with it
SUBMISSION_LABEL = "cellpipe.dev/submission"
FINAL_PHASES = ("Succeeded", "Failed")
EXIT_CODES = {"Succeeded": 0, "Failed": 1, "Timeout": 124}
# Katib condition types, the later ones winning when several are True.
_EXPERIMENT_PHASES = ("Created", "Running", "Restarting", "Succeeded", "Failed")
_TRIAL_PHASES = ("Created", "Running", "Succeeded", "Killed", "MetricsUnavailable",
                 "EarlyStopped", "Failed")
_TRIAL_STATUS = {"Created": "running", "Running": "running", "Succeeded": "succeeded",
                 "EarlyStopped": "succeeded", "Killed": "cancelled", "Failed": "failed",
                 "MetricsUnavailable": "failed"}
_TIMEOUT = 30  # seconds for one API request


def exit_code(phase: str) -> int:
    """The process exit code for an experiment's final phase (``Timeout`` is 124)."""
    return EXIT_CODES.get(phase, 1)


@dataclass
class TrialState:
    """One trial as Katib reports it.

    Attributes:
        name: The trial's name (its Workflow has the same name).
        phase: Its last condition that holds (``Running``, ``Succeeded``, ``Failed``, …).
        parameters: The values Katib gave it (text, as Katib keeps them).
        metrics: What its metrics collector observed (the latest value of each).
        message: Its condition's message.
    """

    name: str
    phase: str
    parameters: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    message: str = ""


@dataclass
class ExperimentState:
    """An experiment's state, its best trial so far and its trials.

    Attributes:
        name: The experiment's name.
        phase: ``Pending`` (no controller has seen it), ``Created``, ``Running``,
            ``Restarting``, ``Succeeded`` or ``Failed``.
        message: The condition's message (why it ended).
        optimal: The best trial so far (``currentOptimalTrial``), or None before there is one.
        trials: Every trial, by name.
        counts: How many trials are in each state (``trialsSucceeded`` …), as Katib counts.
    """

    name: str
    phase: str
    message: str = ""
    optimal: TrialState | None = None
    trials: dict[str, TrialState] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def experiment_state(experiment: Mapping[str, Any],
                     trials: Sequence[Mapping[str, Any]] | None = None) -> ExperimentState:
    """Read an Experiment object (and its Trial objects) as Katib's controller left them."""
    status = experiment.get("status") or {}
    phase, message = _phase(status.get("conditions"), _EXPERIMENT_PHASES)
    optimal = status.get("currentOptimalTrial") or {}
    best = None
    if optimal.get("bestTrialName"):
        best = TrialState(str(optimal["bestTrialName"]), "Succeeded",
                          _assignments(optimal.get("parameterAssignments")),
                          _metrics(optimal.get("observation")))
    states: dict[str, TrialState] = {}
    for trial in trials or []:
        name = str((trial.get("metadata") or {}).get("name", ""))
        trial_status = trial.get("status") or {}
        trial_phase, trial_message = _phase(trial_status.get("conditions"), _TRIAL_PHASES)
        states[name] = TrialState(name, trial_phase,
                                  _assignments((trial.get("spec") or {})
                                               .get("parameterAssignments")),
                                  _metrics(trial_status.get("observation")), trial_message)
    counts = {key: int(value) for key, value in status.items()
              if key.startswith("trials") and isinstance(value, int)}
    return ExperimentState(str((experiment.get("metadata") or {}).get("name", "")),
                           phase, message, best, dict(sorted(states.items())), counts)


def _phase(conditions: Any, order: tuple[str, ...]) -> tuple[str, str]:
    """The latest condition type (in ``order``) whose status is True, and its message."""
    holding = {str(c.get("type")): str(c.get("message") or "")
               for c in conditions or [] if str(c.get("status")) == "True"}
    for phase in reversed(order):
        if phase in holding:
            return phase, holding[phase]
    return "Pending", ""


def _assignments(found: Any) -> dict[str, str]:
    return {str(a["name"]): str(a.get("value", "")) for a in found or [] if "name" in a}


def _metrics(observation: Any) -> dict[str, str]:
    metrics = {}
    for metric in (observation or {}).get("metrics") or []:
        if "name" in metric:
            value = next((metric[key] for key in ("latest", "max", "min") if metric.get(key)),
                         "")
            metrics[str(metric["name"])] = str(value)
    return metrics


class KatibClient:
    """Creates Experiments in one namespace of a cluster and reads them back.

    Args:
        namespace: Where experiments go. Default: the kubeconfig context's namespace, else
            "default"; when not given, a manifest's own ``metadata.namespace`` wins.
        api_client: A ``kubernetes.client.ApiClient``. Default: one from the kubeconfig,
            else the in-cluster service account.
    """

    def __init__(self, namespace: str | None = None, api_client: Any = None) -> None:
        from cellpipe.targets.argo.submit import default_client, kubernetes_module

        kube = kubernetes_module()
        import urllib3

        self._explicit_namespace = namespace is not None
        default_namespace = "default"
        if api_client is None:
            api_client, default_namespace = default_client()
        self.namespace: str = namespace or default_namespace
        self.api_client = api_client
        self._custom = kube.client.CustomObjectsApi(api_client)
        self._api_exception: type[Exception] = kube.client.exceptions.ApiException
        self._transport_errors = (OSError, urllib3.exceptions.HTTPError)

    @property
    def host(self) -> str:
        """The API server's URL."""
        return str(self.api_client.configuration.host)

    def submit(self, manifest: Mapping[str, Any]) -> str:
        """Create the Experiment; its name (generated from ``metadata.generateName``)."""
        if manifest.get("kind") != "Experiment" or manifest.get("apiVersion") != \
                f"{GROUP}/{VERSION}":
            raise CellpipeError(
                f"only a Katib Experiment ({GROUP}/{VERSION}) can be submitted here, not "
                f"kind {manifest.get('kind')!r}, apiVersion {manifest.get('apiVersion')!r}")
        body = copy.deepcopy(dict(manifest))
        metadata = body.setdefault("metadata", {})
        wanted = metadata.get("namespace")
        if wanted and wanted != self.namespace:
            if self._explicit_namespace:
                raise CellpipeError(
                    f"the experiment is for namespace {wanted!r} but this client submits to "
                    f"{self.namespace!r}",
                    hint="pass the same namespace to both, or drop metadata.namespace")
            self.namespace = wanted
        metadata["namespace"] = self.namespace
        submission = uuid.uuid4().hex
        metadata.setdefault("labels", {})[SUBMISSION_LABEL] = submission
        self._check_crd()
        created = self._objects(EXPERIMENTS, "create an experiment", "create", body)
        if isinstance(created, dict) and created.get("metadata", {}).get("name"):
            return str(created["metadata"]["name"])
        # Some servers (kmock) answer with an empty body: find the object by its label.
        selector = f"{SUBMISSION_LABEL}={submission}"
        listed = self._objects(EXPERIMENTS, "list experiments", "list", label_selector=selector)
        for item in (listed or {}).get("items", []):
            meta = item.get("metadata", {})
            if meta.get("labels", {}).get(SUBMISSION_LABEL) == submission and meta.get("name"):
                return str(meta["name"])
        raise CellpipeError(
            f"the experiment was created in namespace {self.namespace!r} at {self.host}, "
            "but the server did not say its name",
            hint=f"look for it: kubectl get experiments -n {self.namespace} -l {selector}")

    def get(self, name: str) -> dict[str, Any]:
        """The Experiment object as the API server has it."""
        found: dict[str, Any] = self._objects(EXPERIMENTS, f"get experiment {name!r}", "get",
                                              name)
        return found

    def trials(self, name: str) -> list[dict[str, Any]]:
        """The experiment's Trial objects (those Katib labelled with its name)."""
        listed = self._objects(TRIALS, f"list the trials of experiment {name!r}", "list",
                               label_selector=f"{EXPERIMENT_LABEL}={name}", missing_ok=True)
        return [item for item in (listed or {}).get("items", [])
                if (item.get("metadata", {}).get("labels") or {}).get(EXPERIMENT_LABEL) == name]

    def state(self, name: str) -> ExperimentState:
        """The experiment's phase, best trial and trials."""
        return experiment_state(self.get(name), self.trials(name))

    def watch(self, name: str, on_event: Callable[[StepEvent], None] | None = None,
              timeout: float | None = None, poll: float = 2.0) -> str:
        """Follow the experiment until it ends; report each change of a trial's state.

        Returns:
            The final phase (``Succeeded``, ``Failed``), or ``Timeout`` when ``timeout``
            seconds passed first (the experiment goes on).
        """
        emit = on_event or (lambda event: None)
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            state = self.state(name)
            for trial in state.trials.values():
                if seen.get(trial.name) != trial.phase:
                    seen[trial.name] = trial.phase
                    emit(StepEvent(name, trial.name, _TRIAL_STATUS.get(trial.phase, "running"),
                                   message=trial_summary(trial)))
            if state.phase in FINAL_PHASES:
                return state.phase
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return "Timeout"
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - now)))

    def _check_crd(self) -> None:
        """Fail clearly when the cluster does not serve Katib's experiments."""
        try:
            found = self._call("discover the Katib API", self._custom.get_api_resources,
                               GROUP, VERSION, missing_ok=True)
        except CellpipeError:
            return  # no discovery rights, say: the create call tells what is wrong
        if found is not None and any(r.name == EXPERIMENTS for r in found.resources or []):
            return
        raise CellpipeError(
            f"the Kubernetes API at {self.host} does not serve {EXPERIMENTS}.{GROUP}/{VERSION}: "
            f"is Katib installed (for namespace {self.namespace!r})?",
            hint=f"install Katib or switch to its cluster; check with 'kubectl get crd "
            f"{EXPERIMENTS}.{GROUP}' and 'kubectl config current-context'")

    def _objects(self, plural: str, what: str, verb: str, *args: Any,
                 missing_ok: bool = False, **kwargs: Any) -> Any:
        method = getattr(self._custom, f"{verb}_namespaced_custom_object")
        return self._call(what, method, GROUP, VERSION, self.namespace, plural, *args,
                          missing_ok=missing_ok, **kwargs)

    def _call(self, what: str, method: Callable[..., Any], *args: Any,
              missing_ok: bool = False, **kwargs: Any) -> Any:
        """Call the API; None for a 404 when ``missing_ok``; CellpipeErrors for the rest."""
        from cellpipe.targets.argo.submit import TransientError

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
                "or set KUBECONFIG") from exc

    def _error(self, exc: Any, what: str) -> CellpipeError:
        from cellpipe.targets.argo.submit import TransientError

        status = getattr(exc, "status", None) or 0
        try:
            message = json.loads(exc.body).get("message") or exc.reason
        except (TypeError, ValueError, AttributeError):
            message = getattr(exc, "reason", None) or str(exc)
        ns = self.namespace
        hints = {
            401: "your credentials were refused: log in to the cluster again",
            403: f"your account may not do this in namespace {ns!r}: check 'kubectl auth "
            f"can-i create experiments.kubeflow.org -n {ns}'",
            404: f"no such experiment in namespace {ns!r}: 'kubectl get experiments -n {ns}' "
            "lists them",
            409: "an experiment of that name exists: use metadata.generateName, or delete it",
            422: "Katib's webhook rejected the experiment: fix what its message names",
        }
        error = TransientError if status >= 500 else CellpipeError
        return error(f"cannot {what} in namespace {ns!r} at {self.host}: {status} {message}",
                     hint=hints.get(status, "see the server's message"))


def trial_summary(trial: TrialState) -> str:
    """``C=0.5 max_depth=3 -> best_accuracy=0.97``: a trial's values and what it observed."""
    values = " ".join(f"{k}={v}" for k, v in trial.parameters.items())
    metrics = " ".join(f"{k}={v}" for k, v in trial.metrics.items())
    return f"{values} -> {metrics}" if metrics else values
