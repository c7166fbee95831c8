"""Submitting, watching and reading logs of Argo Workflows (cellpipe.targets.argo.submit).

No Kubernetes API server can run here; these are API-level tests against kmock's in-memory
Kubernetes API over real HTTP (the real ``kubernetes`` client on a local port), with the
test playing Argo's controller: a thread patches the Workflow's ``status`` the way the
controller does, and kmock reactions stand in for the kubelet's pod logs.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("kmock")
pytest.importorskip("kubernetes")

from cellpipe.errors import CellpipeError
from cellpipe.events import StepEvent
from cellpipe.targets.argo.submit import (
    EXIT_CODES,
    SUBMISSION_LABEL,
    ArgoClient,
    exit_code,
)
from tests.targets.argo.conftest import WORKFLOWS, Kube, kmock, kubernetes

STEPS = ("load", "train", "report")
T0, T1, T2 = "2025-03-01T10:00:00Z", "2025-03-01T10:00:04Z", "2025-03-01T10:00:10Z"


def manifest(pipeline: str = "demo", namespace: str | None = None) -> dict[str, Any]:
    """A small Workflow like the compiler's: a DAG ``main`` whose tasks are the steps."""
    tasks = [
        {"name": step, "template": step, **({"dependencies": [STEPS[i - 1]]} if i else {})}
        for i, step in enumerate(STEPS)
    ]
    templates = [{"name": "main", "dag": {"tasks": tasks}}] + [
        {
            "name": step,
            "container": {"image": f"registry.local/{pipeline}-{step}:1", "command": ["python"]},
            "outputs": {"parameters": [{"name": "rows", "valueFrom": {"path": "/tmp/out/rows"}}]},
        }
        for step in STEPS
    ]
    meta: dict[str, Any] = {"generateName": f"{pipeline}-", "labels": {"app": pipeline}}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": meta,
        "spec": {"entrypoint": "main", "templates": templates},
    }


def fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def node_id(wf: str, node_name: str) -> str:
    return f"{wf}-{fnv32a(node_name)}"  # how Argo names nodes


def node(wf: str, step: str, phase: str, **extra: Any) -> dict[str, Any]:
    """An Argo status node for a step's pod (``extra`` overrides, e.g. type, outputs)."""
    name = f"{wf}.{step}"
    found = {
        "id": node_id(wf, name),
        "name": name,
        "displayName": step,
        "type": "Pod",
        "templateName": step.split("(")[0],
        "phase": phase,
        "boundaryID": node_id(wf, wf),
        "startedAt": T0,
    }
    if phase in {"Succeeded", "Failed", "Error"}:
        found["finishedAt"] = T1
    found.update(extra)
    return found


def nodes(wf: str, *step_nodes: dict[str, Any]) -> dict[str, Any]:
    dag = {"id": node_id(wf, wf), "name": wf, "displayName": wf, "type": "DAG", "phase": "Running"}
    return {n["id"]: n for n in (dag, *step_nodes)}


def params(**values: str) -> dict[str, Any]:
    return {"parameters": [{"name": k, "value": v} for k, v in values.items()]}


class Controller(threading.Thread):
    """Plays Argo's controller: applies each status in turn, each after the watcher read the last.

    kmock logs every request; after a patch the controller waits for a GET of the workflow
    made after it, so the watcher sees every state exactly as in a real
    cluster whose controller is slower than the poll interval.
    """

    def __init__(self, kube: Kube, name: str, states: list[dict[str, Any]]) -> None:
        super().__init__(daemon=True)
        self.kube, self.name, self.states = kube, name, states
        self.error: BaseException | None = None

    def run(self) -> None:
        api = kubernetes.client.CustomObjectsApi(self.kube.api())
        try:
            for state in self.states:
                api.patch_namespaced_custom_object_status(
                    *WORKFLOWS[:2], "default", WORKFLOWS[2], self.name, {"status": state}
                )
                seen = self.kube.fetches()
                deadline = time.monotonic() + 5
                while self.kube.fetches() == seen:  # until the watcher read this state
                    assert time.monotonic() < deadline, "the watcher stopped reading"
                    time.sleep(0.005)
        except BaseException as exc:  # reported by the test
            self.error = exc


def watch_with(kube: Kube, client: ArgoClient, name: str, states: list[dict[str, Any]],
               timeout: float | None = 5) -> tuple[str, list[StepEvent]]:
    events: list[StepEvent] = []
    controller = Controller(kube, name, states)
    controller.start()
    phase = client.watch(name, on_event=events.append, timeout=timeout, poll=0.02)
    controller.join(5)
    assert controller.error is None, controller.error
    return phase, events


def brief(events: list[StepEvent]) -> list[tuple[str, str, int]]:
    return [(e.step, e.status, e.attempt) for e in events]


@pytest.fixture
def client(kube: Kube) -> ArgoClient:
    return ArgoClient(namespace="default", api_client=kube.api())


# --- submit -----------------------------------------------------------------------------


def test_submit_returns_the_generated_name_and_stores_the_workflow(kube: Kube, client: ArgoClient):
    name = client.submit(manifest())
    assert name.startswith("demo-") and len(name) == len("demo-") + 5

    stored = kube.workflow(name)
    assert stored["spec"] == manifest()["spec"]
    labels = stored["metadata"]["labels"]
    assert labels["app"] == "demo" and len(labels[SUBMISSION_LABEL]) == 32
    assert stored["metadata"]["namespace"] == "default"
    assert client.get(name)["metadata"]["name"] == name
    # a second submission of the same manifest is a new workflow
    assert client.submit(manifest()) != name


def test_submit_reads_the_name_back_when_create_answers_with_an_empty_body(kube: Kube,
                                                                          client: ArgoClient):
    kube.in_loop(lambda: kube.emu["post", kmock.resource(*WORKFLOWS)] << b"")
    other = client.submit(manifest("other"))  # another labelled workflow to tell apart
    name = client.submit(manifest())
    assert name.startswith("demo-") and other.startswith("other-")
    assert kube.workflow(name)["metadata"]["generateName"] == "demo-"


def test_submit_without_the_workflow_crd_says_to_install_argo(kube_without_argo: Kube):
    client = ArgoClient(namespace="ml", api_client=kube_without_argo.api())
    with pytest.raises(CellpipeError) as caught:
        client.submit(manifest())
    text = str(caught.value)
    assert "Argo Workflows installed" in text and "'ml'" in text
    assert "kubectl get crd workflows.argoproj.io" in text


def test_submit_conflict_403_and_wrong_kind_are_clear_errors(kube: Kube, client: ArgoClient):
    named = manifest()
    named["metadata"] = {"name": "fixed"}
    assert client.submit(named) == "fixed"
    with pytest.raises(CellpipeError) as caught:
        client.submit(named)
    assert "409" in str(caught.value) and "already exists" in str(caught.value)
    assert "generateName" in caught.value.hint

    forbidden = 'workflows.argoproj.io is forbidden: User "ana" cannot create resource'
    error = kmock.KubernetesError(status=403, reason="Forbidden", message=forbidden)
    kube.in_loop(lambda: kube.emu["post", kmock.resource(*WORKFLOWS)] << error)
    with pytest.raises(CellpipeError) as caught:
        client.submit(manifest())
    assert forbidden in str(caught.value) and "403" in str(caught.value)
    assert "kubectl auth can-i create workflows.argoproj.io -n default" in caught.value.hint

    with pytest.raises(CellpipeError, match="only an Argo Workflow"):
        client.submit({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})


def test_manifest_namespace_is_used_unless_the_client_was_told_another(kube: Kube):
    implicit = ArgoClient(api_client=kube.api())
    assert implicit.namespace == "default"
    name = implicit.submit(manifest(namespace="ml"))
    assert implicit.namespace == "ml"
    assert kube.workflow(name, namespace="ml")["metadata"]["namespace"] == "ml"

    explicit = ArgoClient(namespace="team", api_client=kube.api())
    with pytest.raises(CellpipeError, match="for namespace 'ml'"):
        explicit.submit(manifest(namespace="ml"))


def test_get_of_a_missing_workflow_and_an_unreachable_server(client: ArgoClient):
    with pytest.raises(CellpipeError, match=r"get workflow 'nope'.*404"):
        client.get("nope")

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    dead = ArgoClient(namespace="default", api_client=kubernetes.client.ApiClient(configuration))
    with pytest.raises(CellpipeError, match="cannot reach the Kubernetes API server") as caught:
        dead.get("x")
    assert "current-context" in caught.value.hint


# --- configuration ----------------------------------------------------------------------


def test_without_kubeconfig_or_cluster_the_error_says_how_to_fix(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(CellpipeError) as caught:
        ArgoClient()
    hint = caught.value.hint
    assert "KUBECONFIG" in hint and "kubectl config current-context" in hint


def test_kubeconfig_gives_the_server_and_the_namespace(kube: Kube, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch):
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": kube.url}}],
        "users": [{"name": "ana", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "ml", "context": {"cluster": "kmock", "user": "ana",
                                                "namespace": "ml"}}],
        "current-context": "ml",
    }
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    client = ArgoClient()
    assert client.namespace == "ml" and client.host == kube.url
    name = client.submit(manifest())
    assert kube.workflow(name, namespace="ml")["metadata"]["name"] == name
    assert ArgoClient(namespace="other").namespace == "other"


# --- watch and status -------------------------------------------------------------------


def test_watch_reports_each_step_change_until_success(kube: Kube, client: ArgoClient):
    wf = client.submit(manifest())
    run = {"phase": "Running", "startedAt": T0}
    states = [
        {**run, "nodes": nodes(wf, node(wf, "load", "Pending"))},
        {**run, "nodes": nodes(wf, node(wf, "load", "Running"))},
        {**run, "nodes": nodes(wf, node(wf, "load", "Succeeded", outputs=params(rows="3")),
                                node(wf, "train", "Pending"))},
        {**run, "nodes": nodes(wf, node(wf, "load", "Succeeded"), node(wf, "train", "Running"))},
        {"phase": "Succeeded", "startedAt": T0, "finishedAt": T2, "nodes": nodes(
            wf,
            node(wf, "load", "Succeeded", outputs=params(rows="3")),
            node(wf, "train", "Succeeded", outputs=params(accuracy="0.91", model='"logreg"')),
            node(wf, "report", "Succeeded", outputs=params(note="not json")),
        )},
    ]
    phase, events = watch_with(kube, client, wf, states)

    assert phase == "Succeeded" and exit_code(phase) == 0
    assert brief(events) == [
        ("load", "running", 1),
        ("load", "succeeded", 1),
        ("train", "running", 1),
        ("train", "succeeded", 1),
        ("report", "succeeded", 1),
    ]
    assert {e.run_id for e in events} == {wf}
    assert events[1].elapsed == 4.0  # T0 -> T1

    status = client.status(wf)
    assert (status.name, status.phase, status.started, status.finished) == (wf, "Succeeded", T0, T2)
    assert status.steps == {s: ("Succeeded", "") for s in STEPS}
    assert status.outputs == {"rows": 3, "accuracy": 0.91, "model": "logreg", "note": "not json"}


def test_watch_of_a_failed_step_returns_failed_and_skips_the_rest(kube: Kube, client: ArgoClient):
    wf = client.submit(manifest())
    oom = "OOMKilled (exit code 137)"
    states = [
        {"phase": "Running", "nodes": nodes(wf, node(wf, "load", "Running"))},
        {"phase": "Running", "nodes": nodes(wf, node(wf, "load", "Succeeded"),
                                             node(wf, "train", "Running"))},
        {"phase": "Failed", "message": "child 'train' failed", "finishedAt": T2,
         "nodes": nodes(wf, node(wf, "load", "Succeeded"),
                        node(wf, "train", "Failed", message=oom))},
    ]
    phase, events = watch_with(kube, client, wf, states)

    assert phase == "Failed" and exit_code(phase) == 1
    assert brief(events) == [
        ("load", "running", 1),
        ("load", "succeeded", 1),
        ("train", "running", 1),
        ("train", "failed", 1),
        ("report", "skipped", 1),
    ]
    assert events[3].message == oom and events[4].message == "not run: Failed"
    status = client.status(wf)
    assert status.phase == "Failed" and status.message == "child 'train' failed"
    assert status.steps == {"load": ("Succeeded", ""), "train": ("Failed", oom)}


def test_watch_counts_retries_and_reads_outputs_of_the_last_attempt(kube: Kube,
                                                                   client: ArgoClient):
    wf = client.submit(manifest())

    def retry(phase: str, *attempts: str) -> list[dict[str, Any]]:
        pods = [node(wf, f"train({i})", p, name=f"{wf}.train({i})", templateName="train",
                     id=node_id(wf, f"{wf}.train({i})"),
                     **({"outputs": params(accuracy="0.8")} if p == "Succeeded" else {}))
                for i, p in enumerate(attempts)]
        parent = node(wf, "train", phase, type="Retry", children=[p["id"] for p in pods])
        return [parent, *pods]

    done = node(wf, "load", "Succeeded")
    states = [
        {"phase": "Running", "nodes": nodes(wf, done, *retry("Running", "Running"))},
        {"phase": "Running", "nodes": nodes(wf, done, *retry("Running", "Failed", "Running"))},
        {"phase": "Running", "nodes": nodes(wf, done, *retry("Succeeded", "Failed", "Succeeded"),
                                            node(wf, "report", "Omitted"))},
        {"phase": "Error", "message": "report omitted", "nodes": nodes(
            wf, done, *retry("Succeeded", "Failed", "Succeeded"), node(wf, "report", "Error"))},
    ]
    phase, events = watch_with(kube, client, wf, states)

    assert phase == "Error" and exit_code(phase) == 1
    assert brief(events) == [
        ("load", "succeeded", 1),
        ("train", "running", 1),
        ("train", "running", 2),
        ("train", "succeeded", 2),
        ("report", "skipped", 1),
        ("report", "failed", 1),
    ]
    assert client.status(wf).outputs == {"accuracy": 0.8}


def test_watch_gives_up_after_the_timeout_and_leaves_the_workflow(kube: Kube, client: ArgoClient):
    wf = client.submit(manifest())
    events: list[StepEvent] = []
    controller = Controller(kube, wf, [{"phase": "Running",
                                        "nodes": nodes(wf, node(wf, "load", "Running"))}])
    controller.start()
    phase = client.watch(wf, on_event=events.append, timeout=1, poll=0.05)
    controller.join(5)

    assert phase == "Timeout" and exit_code(phase) == 124
    assert brief(events) == [("load", "running", 1)]
    assert kube.workflow(wf)["status"]["phase"] == "Running"  # not deleted, not stopped


def test_watch_rides_out_brief_server_errors_but_not_long_ones(kube: Kube, client: ArgoClient):
    wf = client.submit(manifest())
    set_status(kube, wf, {"phase": "Succeeded", "nodes": nodes(wf, node(wf, "load", "Succeeded"))})
    unavailable = kmock.KubernetesError(status=503, reason="ServiceUnavailable",
                                        message="etcd leader changed")

    def flaky(errors: int) -> list[Any]:
        calls: list[Any] = []

        def answer(request: Any) -> Any:  # `errors` 503s, then the emulator serves again
            calls.append(request)
            return unavailable if len(calls) <= errors else NotImplemented

        get = kube.emu["get", kmock.resource(*WORKFLOWS), kmock.name(wf)]
        kube.in_loop(lambda: get << answer)
        return calls

    calls = flaky(3)
    assert client.watch(wf, poll=0.01, timeout=5) == "Succeeded"
    assert len(calls) == 4

    calls = flaky(4)
    with pytest.raises(CellpipeError, match="503 etcd leader changed"):
        client.watch(wf, poll=0.01, timeout=5)
    assert len(calls) == 4


def test_status_of_a_workflow_the_controller_has_not_seen(client: ArgoClient):
    wf = client.submit(manifest())
    status = client.status(wf)
    assert (status.phase, status.started, status.steps, status.outputs) == ("Pending", None, {}, {})
    assert client.watch(wf, timeout=0) == "Timeout"


def test_exit_codes():
    assert EXIT_CODES == {"Succeeded": 0, "Failed": 1, "Error": 1, "Timeout": 124}
    assert [exit_code(p) for p in ("Succeeded", "Failed", "Error", "Timeout")] == [0, 1, 1, 124]


# --- logs -------------------------------------------------------------------------------


def set_status(kube: Kube, wf: str, status: dict[str, Any]) -> None:
    kubernetes.client.CustomObjectsApi(kube.api()).patch_namespaced_custom_object_status(
        *WORKFLOWS[:2], "default", WORKFLOWS[2], wf, {"status": status}
    )


def serve_log(kube: Kube, pod: str, text: bytes) -> None:
    """Stand in for the kubelet: kmock answers the pod's log subresource with ``text``."""
    pods = kmock.resource("", "v1", "pods")
    kube.in_loop(lambda: kube.emu["get", pods, kmock.subresource("log"), kmock.name(pod)] << text)


def test_logs_of_a_step_come_from_its_pod_named_as_argo_names_pods(kube: Kube,
                                                                  client: ArgoClient):
    wf = client.submit(manifest())
    train = node(wf, "train", "Succeeded")
    set_status(kube, wf, {"phase": "Running", "nodes": nodes(wf, train)})
    suffix = train["id"].rsplit("-", 1)[1]
    serve_log(kube, f"{wf}-train-{suffix}", b"epoch 1\naccuracy 0.91\n")  # Argo >= 3.4
    assert client.logs(wf, "train") == "epoch 1\naccuracy 0.91\n"

    # a log that happens to be JSON comes back as printed (the client would re-render it)
    report = node(wf, "report", "Succeeded")
    set_status(kube, wf, {"phase": "Running", "nodes": nodes(wf, train, report)})
    serve_log(kube, f"{wf}-report-{report['id'].rsplit('-', 1)[1]}", b'{"f1": 0.5, "ok": true}')
    assert client.logs(wf, "report") == '{"f1": 0.5, "ok": true}'

    serve_log(kube, train["id"], b"old style\n")  # Argo < 3.4: the pod is the node id
    wf2 = client.submit(manifest())
    load = node(wf2, "load", "Running", id=train["id"], templateName="")
    set_status(kube, wf2, {"phase": "Running", "nodes": nodes(wf2, load)})
    assert client.logs(wf2, "load") == "old style\n"


def test_logs_find_the_pod_by_label_and_node_annotation(kube: Kube, client: ArgoClient):
    wf = client.submit(manifest())
    train = node(wf, "train", "Running")
    set_status(kube, wf, {"phase": "Running", "nodes": nodes(wf, train)})
    core = kubernetes.client.CoreV1Api(kube.api())
    for pod, workflow in (("decoy", "other-wf"), ("renamed-pod", wf)):
        core.create_namespaced_pod("default", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "labels": {"workflows.argoproj.io/workflow": workflow},
                         "annotations": {"workflows.argoproj.io/node-name": train["name"]}},
            "spec": {"containers": [{"name": "main", "image": "x"}]},
        })
    serve_log(kube, "decoy", b"wrong pod\n")
    serve_log(kube, "renamed-pod", b"right pod\n")
    assert client.logs(wf, "train") == "right pod\n"


def test_logs_of_a_step_without_a_pod_are_a_clear_error(kube: Kube, client: ArgoClient):
    wf = client.submit(manifest())
    with pytest.raises(CellpipeError, match="has no pod yet: it has not started"):
        client.logs(wf, "load")
    with pytest.raises(CellpipeError, match=r"has no step 'nope' \(its steps: load, train"):
        client.logs(wf, "nope")

    set_status(kube, wf, {"phase": "Running", "nodes": nodes(wf, node(wf, "load", "Pending"))})
    with pytest.raises(CellpipeError, match=r"no pod yet \(node phase Pending\)") as caught:
        client.logs(wf, "load")
    assert caught.value.step == "load"
    assert f"workflows.argoproj.io/workflow={wf}" in caught.value.hint
