"""Results back home: `cellpipe.submit(...)` → ClusterRun → wait, metrics, load, report.

No Kubernetes API server can run here: kmock's in-memory Kubernetes API over real HTTP
stands in for it (conftest.py), and the test plays Argo's controller: it takes the
Workflow cellpipe created, runs each step's container command here as the pod would (the
raw artifacts written where the manifest says, the S3 credentials in the environment as
the secret references would put them), then writes the Workflow's final status. The
store is a real S3 API server (moto's server mode, the ``s3_server`` fixture); the values
read back through the ClusterRun must be those of a local run.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cellpipe import api
from cellpipe.core.layout import CARRIED_STEP_DIR
from cellpipe.errors import CellpipeError
from tests.conftest import write_nb
from tests.engines.compare import assert_same
from tests.targets.argo.conftest import WORKFLOWS

kubernetes = pytest.importorskip("kubernetes")

CELLS = [
    ("", "import numpy as np\nimport pandas as pd"),
    ("parameters", "n = 6"),
    ("step:make", "frame = pd.DataFrame({'x': np.arange(n), 'y': np.arange(n) ** 2})\n"
                  "print('made', len(frame), 'rows')"),
    ("step:fit", "slope = float(np.polyfit(frame['x'], frame['y'], 1)[0])\n"
                 "score = round(slope / n, 4)\nprint('slope', slope)"),
    ("metrics", "score"),
]


def _notebook(tmp_path: Path, s3: Any, **cluster: Any) -> Path:
    metadata = {"cellpipe": {"cluster": {
        "storage": f"s3://{s3.bucket}/runs",
        "storage_secret": {"secret": "s3-credentials", "access_key": "id",
                           "secret_key": "key"},
        "storage_endpoint": s3.endpoint, **cluster}}}
    path = write_nb(tmp_path, *CELLS, name="fit.ipynb")
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.update(metadata)
    nbformat.write(nb, path)
    return path


def _run_pods(workflow: dict[str, Any], work: Path) -> dict[str, subprocess.CompletedProcess]:
    """Each task's container command, run here in its own folder, in DAG order."""
    templates = {t["name"]: t for t in workflow["spec"]["templates"]}
    name = workflow["metadata"]["name"]
    defaults = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    done = {}
    for task in templates["main"]["dag"]["tasks"]:
        template = templates[task["template"]]
        pod = work / task["name"]
        carried = pod / "carried"
        carried.mkdir(parents=True)
        for artifact in template["inputs"]["artifacts"]:
            if "raw" in artifact:
                (carried / artifact["path"].removeprefix(CARRIED_STEP_DIR + "/")).write_text(
                    artifact["raw"]["data"], encoding="utf-8")
        command = []
        for part in template["container"]["command"]:
            part = part.replace(CARRIED_STEP_DIR, str(carried))
            part = part.replace("{{workflow.name}}", name)
            for parameter, value in defaults.items():
                part = part.replace(f"{{{{inputs.parameters.{parameter}}}}}", value)
            command.append(sys.executable if part == "python" else part)
        for option in ("--step-dir", "--outputs-dir"):
            command[command.index(option) + 1] = str(pod / option.strip("-"))
        done[task["name"]] = subprocess.run(command, cwd=pod, capture_output=True, text=True,
                                            check=False)
    return done


def _play_controller(kube: Any, work: Path, stop: threading.Event, box: dict) -> threading.Thread:
    def run() -> None:
        client = kubernetes.client.CustomObjectsApi(kube.api())
        while not stop.is_set():
            items = client.list_namespaced_custom_object(*WORKFLOWS[:2], "ml", WORKFLOWS[2])
            if items.get("items"):
                break
            time.sleep(0.05)
        else:
            return
        workflow = items["items"][0]
        box["pods"] = done = _run_pods(workflow, work)
        phase = "Succeeded" if all(d.returncode == 0 for d in done.values()) else "Failed"
        nodes = {step: {"id": f"n-{step}", "name": f"{workflow['metadata']['name']}.{step}",
                        "displayName": step, "type": "Pod", "templateName": step,
                        "phase": "Succeeded" if d.returncode == 0 else "Failed"}
                 for step, d in done.items()}
        client.patch_namespaced_custom_object_status(
            *WORKFLOWS[:2], "ml", WORKFLOWS[2], workflow["metadata"]["name"],
            {"status": {"phase": phase, "nodes": nodes}})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_submit_wait_and_read_the_results_back_from_the_object_store(
        cluster, s3_server, tmp_path):
    path = _notebook(tmp_path, s3_server)
    local = api.run(path, root=tmp_path / ".cellpipe")
    assert local.status == "succeeded"
    stop, box = threading.Event(), {}
    controller = _play_controller(cluster, tmp_path / "pods", stop, box)
    try:
        run = api.submit(path, "argo", image="ml/notebook:1")
        assert isinstance(run, api.ClusterRun) and run.status == "Submitted"
        assert run.store == f"s3://{s3_server.bucket}/runs/{run.name}"
        final = run.wait(timeout=120, poll=0.2)
    finally:
        stop.set()
        controller.join(10)
    assert final.phase == "Succeeded", {k: d.stderr[-2000:] for k, d in box["pods"].items()}
    assert run.done and run.status == "Succeeded"
    assert_same(local.load("frame"), run.load("frame"), "frame")
    assert run.load("slope") == local.load("slope")
    assert run.metrics == local.metrics == {"score": local.load("score")}
    report = run.report("fit", into=tmp_path / "report").read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<[^>]+>", "", report))
    assert "np.polyfit(frame['x']" in text and "slope 4.99" in text  # the cell, its output
    with pytest.raises(CellpipeError, match=r"no step of .* makes a value 'slop'") as caught:
        run.load("slop")
    assert "did you mean 'slope'" in (caught.value.hint or "")

    # another process takes the run up again by its name, from the record beside the notebook
    root = tmp_path / ".cellpipe"
    script = ("import sys; from cellpipe import api; "
              "run = api.ClusterRun.attach(sys.argv[1], root=sys.argv[2]); "
              "print(run.target, run.store, run.load('slope'), run.metrics['score'])")
    again = subprocess.run([sys.executable, "-c", script, run.name, str(root)],
                           capture_output=True, text=True, check=False)
    assert again.stdout.split() == ["argo", run.store, str(local.load("slope")),
                                    str(local.load("score"))], again.stderr
    # `cellpipe status NAME` finds the target and the store in the record: metrics and
    # where each value lives
    shown = subprocess.run([str(Path(sys.executable).parent / "cellpipe"), "status", run.name,
                            "--root", str(root)], capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"workflow {run.name}: Succeeded"
    assert f"metrics: score={local.load('score')}" in lines
    assert f"values (in {run.store}; reports under .steps/STEP/):" in lines
    rows = {line.split()[0]: line.split()[1:] for line in lines
            if line.startswith("  ") and line.split()[0] in ("frame", "slope", "score")}
    assert rows["slope"] == ["fit", f"{run.store}/fit/slope.json"]
    assert rows["frame"][0] == "make" and rows["frame"][1].startswith(f"{run.store}/make/frame")
    with pytest.raises(CellpipeError, match="no cluster run 'nope'") as caught:
        api.ClusterRun.attach("nope", root=root)
    assert run.name in (caught.value.hint or "")


def test_a_run_on_a_volume_says_its_values_stay_in_the_cluster(cluster, tmp_path):
    path = write_nb(tmp_path, *CELLS, name="fit.ipynb")
    run = api.submit(path, "argo", image="ml/notebook:1")
    assert run.store is None
    with pytest.raises(CellpipeError, match="stays in the cluster") as caught:
        run.load("slope")
    assert "--storage s3://" in (caught.value.hint or "")
    with pytest.raises(CellpipeError, match="stays in the cluster"):
        run.report("fit")
