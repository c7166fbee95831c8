"""`cellpipe submit --target argo --watch` and `cellpipe status`, end to end from the CLI.

No Kubernetes API server can run here: these are API-level tests against kmock's in-memory
Kubernetes API over real HTTP (see conftest.py), with the test playing Argo's controller
(patching the Workflow's status) while the command watches it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, write_nb
from tests.targets.argo.conftest import kubeconfig

kubernetes = pytest.importorskip("kubernetes")

WORKFLOWS = ("argoproj.io", "v1alpha1", "workflows")
CELLS = [
    ("parameters", "n = 5"),
    ("step:make", "values = list(range(n))"),
    ("step:total", "total = sum(values)"),
    ("metrics", "total"),
]


def _cellpipe(tmp_path: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig(tmp_path, url)),
           "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "cellpipe", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _play_controller(kube: Any, final: str, stop: threading.Event) -> threading.Thread:
    """Wait for the submitted Workflow, then move its steps through their phases."""

    def run() -> None:
        api = kubernetes.client.CustomObjectsApi(kube.api())
        name = None
        while name is None and not stop.is_set():
            items = api.list_namespaced_custom_object(*WORKFLOWS[:2], "ml", WORKFLOWS[2])
            names = [i["metadata"]["name"] for i in items.get("items", [])]
            name = names[0] if names else None
            time.sleep(0.05)
        if name is None:
            return

        def node(step: str, phase: str, **extra: Any) -> dict[str, Any]:
            return {"id": f"{name}-{step}", "name": f"{name}.{step}", "displayName": step,
                    "type": "Pod", "templateName": step, "phase": phase, **extra}

        total = {"outputs": {"parameters": [{"name": "total", "value": "10"}]}}
        states = [
            {"phase": "Running", "nodes": {"a": node("make", "Running")}},
            {"phase": "Running", "nodes": {"a": node("make", "Succeeded"),
                                           "b": node("total", "Running")}},
            {"phase": final, "nodes": {"a": node("make", "Succeeded"),
                                       "b": node("total", final, **total)}},
        ]
        for state in states:
            if stop.is_set():
                return
            api.patch_namespaced_custom_object_status(*WORKFLOWS[:2], "ml", WORKFLOWS[2], name,
                                                      {"status": state})
            time.sleep(0.6)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _submit(kube: Any, tmp_path: Path, final: str) -> tuple[int, str, str, str]:
    path = write_nb(tmp_path, *CELLS)
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"make": "registry.local/nb-make:1",
                                  "total": "registry.local/nb-total:1"}))
    stop = threading.Event()
    controller = _play_controller(kube, final, stop)
    proc = _cellpipe(tmp_path, kube.url, "submit", str(path), "--target", "argo", "--images",
                     str(images), "-p", "n=7", "--watch", "--timeout", "60")
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        stop.set()
        controller.join(5)
    api = kubernetes.client.CustomObjectsApi(kube.api())
    name = api.list_namespaced_custom_object(*WORKFLOWS[:2], "ml", WORKFLOWS[2])["items"][0]
    return proc.returncode, out, err, name["metadata"]["name"]


def test_submit_watch_succeeds_with_exit_0_and_passes_parameters(kube, tmp_path):
    code, out, err, name = _submit(kube, tmp_path, "Succeeded")
    assert code == 0, err
    assert f"workflow {name}: Succeeded" in out
    assert "make: succeeded" in err and "total: succeeded" in err  # the progress lines
    stored = kube.workflow(name, namespace="ml")
    arguments = {p["name"]: p["value"] for p in stored["spec"]["arguments"]["parameters"]}
    assert arguments == {"n": "7"}
    status = _cellpipe(tmp_path, kube.url, "status", name)
    out, err = status.communicate(timeout=60)
    assert status.returncode == 0, err
    assert f"workflow {name}: Succeeded" in out and "total=10" in out


def test_submit_watch_of_a_failed_workflow_exits_1(kube, tmp_path):
    code, out, err, name = _submit(kube, tmp_path, "Failed")
    assert code == 1, err
    assert f"workflow {name}: Failed" in out
    assert "total: failed" in err


def test_submit_watch_times_out_with_exit_124(kube, tmp_path):
    path = write_nb(tmp_path, *CELLS)
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"make": "r/nb-make:1", "total": "r/nb-total:1"}))
    proc = _cellpipe(tmp_path, kube.url, "submit", str(path), "--target", "argo", "--images",
                     str(images), "--watch", "--timeout", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 124, err
    assert "Timeout" in out
