"""Tracking from cluster steps: the env and Secret references in the compiled manifests,
and the steps' runtime logging to the real `mlflow server` (tests/tracking/conftest.py).

No cluster runs here: a step's pod is played by ``python -m cellpipe.runtime`` with the
environment the manifest gives it; the KFP IR is run for real by ``kfp.local``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cellpipe import api
from cellpipe.cli.main import main
from cellpipe.errors import CellpipeError

URI = "http://mlflow.ml.svc:5000"
TRACKED = {"cellpipe": {"tracking": {"uri": URI, "experiment": "cluster-exp",
                                     "secret": {"name": "mlflow-auth", "token": "api-token"}}}}
CELLS = [("parameters", "n = 3"),
         ("step:make", "values = list(range(n))"),
         ("step:other", "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"),
         ("step:total", "total = sum(values)\nprint('total', total)"),
         ("metrics", "total")]


def notebook(tmp_path: Path, name: str = "clustered", metadata=None, cells=CELLS) -> Path:
    import nbformat

    from tests.conftest import make_nb

    path = tmp_path / f"{name}.ipynb"
    nbformat.write(make_nb(*cells, metadata=metadata), path)
    return path


def containers(workflow: dict) -> dict[str, dict]:
    return {t["name"]: t["container"] for t in workflow["spec"]["templates"] if "container" in t}


def test_argo_steps_get_the_uri_the_workflow_name_and_the_credentials_by_secret(tmp_path):
    path = notebook(tmp_path, metadata=TRACKED)
    workflow = yaml.safe_load(api.compile_target(path, "argo", image="img:1"))
    found = containers(workflow)
    assert set(found) == {"make", "other", "total"}
    for container in found.values():
        env = {e["name"]: e for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"]["value"] == URI
        assert env["MLFLOW_EXPERIMENT_NAME"]["value"] == "cluster-exp"
        assert env["CELLPIPE_TRACKING_RUN"]["value"] == "{{workflow.name}}"
        assert env["CELLPIPE_TRACKING_STEPS"]["value"] == "make,other,total"
        assert env["MLFLOW_TRACKING_TOKEN"] == {"name": "MLFLOW_TRACKING_TOKEN", "valueFrom": {
            "secretKeyRef": {"name": "mlflow-auth", "key": "api-token"}}}


def test_track_option_and_no_track_on_compile(tmp_path, monkeypatch):
    path = notebook(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")  # never read here
    plain = api.compile_target(path, "argo", image="img:1")
    assert "MLFLOW" not in plain
    runner = CliRunner()
    out = tmp_path / "wf.yaml"
    result = runner.invoke(main, ["compile", str(path), "--target", "argo", "--image", "img:1",
                                  "--track", URI, "-o", str(out)])
    assert result.exit_code == 0, result.output
    env = {e["name"]: e.get("value") for e in containers(yaml.safe_load(out.read_text()))[
        "make"]["env"]}
    assert env["MLFLOW_TRACKING_URI"] == URI and env["MLFLOW_EXPERIMENT_NAME"] == "clustered"
    tracked = notebook(tmp_path, "meta", metadata=TRACKED)
    result = runner.invoke(main, ["compile", str(tracked), "--target", "argo", "--image",
                                  "img:1", "--no-track"])
    assert result.exit_code == 0 and "MLFLOW" not in result.output


def test_kfp_tasks_get_the_env_the_secret_and_the_job_id(tmp_path):
    path = notebook(tmp_path, metadata=TRACKED)
    documents = list(yaml.safe_load_all(api.compile_target(path, "kfp", image="img:1")))
    ir, platform = documents[0], documents[1]
    for name, executor in ir["deploymentSpec"]["executors"].items():
        env = {e["name"]: e["value"] for e in executor["container"]["env"]}
        assert env == {"MLFLOW_TRACKING_URI": URI, "MLFLOW_EXPERIMENT_NAME": "cluster-exp",
                       "CELLPIPE_TRACKING_STEPS": "make,other,total"}, name
    for task in ir["root"]["dag"]["tasks"].values():
        argument = task["inputs"]["parameters"]["cellpipe_run"]  # shared with storage
        assert argument["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    secrets = [executor["secretAsEnv"] for executor in
               platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()]
    assert len(secrets) == 3
    for secret in secrets:
        assert secret[0]["keyToEnv"] == [{"secretKey": "api-token",
                                          "envVar": "MLFLOW_TRACKING_TOKEN"}]
        assert secret[0].get("secretName", secret[0].get("secretNameParameter")) in (
            "mlflow-auth", {"runtimeValue": {"constant": "mlflow-auth"}})


def test_images_get_mlflow_skinny_only_when_tracked(tmp_path):
    plain = notebook(tmp_path)
    tracked = notebook(tmp_path, "meta", metadata=TRACKED)
    assert not any(line.startswith("mlflow") for line in api.image_requirements(plain))
    assert any(line.startswith("mlflow-skinny==") for line in api.image_requirements(tracked))
    assert any(line.startswith("mlflow-skinny==")
               for line in api.image_requirements(plain, track=URI))
    result = CliRunner().invoke(main, ["requirements", str(plain), "--track", URI])
    assert "mlflow-skinny==" in result.output


def test_a_password_in_the_uri_is_refused_for_clusters(tmp_path):
    path = notebook(tmp_path)
    with pytest.raises(CellpipeError, match="password"):
        api.compile_target(path, "argo", image="img:1", track="http://me:secret@mlflow:5000")


def run_step(spec_path: Path, step: str, work: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cellpipe.runtime", "--spec", str(spec_path), "--step", step,
         "--store", str(work / "store"), "--step-dir", str(work / "steps" / step)],
        cwd=work, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


def test_cluster_steps_log_nested_runs_under_one_parent_per_workflow(tmp_path, mlflow_server):
    """Each step as its pod runs it; 'make' and 'other' start at once (both are roots)."""
    path = notebook(tmp_path, "pods", cells=CELLS)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.spec_to_json(api.compile_spec(path)))
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri, "MLFLOW_EXPERIMENT_NAME": "pods",
           "CELLPIPE_TRACKING_RUN": "pods-x7k2p", "CELLPIPE_TRACKING_STEPS": "make,other,total"}
    roots = [run_step(spec_path, step, tmp_path, env) for step in ("make", "other")]
    for process in roots:
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 0, output
        assert "not tracked" not in output, output
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("pods")
    parents = client.search_runs([experiment.experiment_id],
                                 filter_string="tags.`cellpipe.kind` = 'workflow'")
    assert len(parents) == 1  # the race of the two roots left one parent
    parent = parents[0]
    assert parent.info.run_name == "pods-x7k2p" and parent.info.status == "RUNNING"

    last = run_step(spec_path, "total", tmp_path, env)
    output = last.communicate(timeout=120)[0]
    assert last.returncode == 0, output
    parent = client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED"  # every step finished
    assert parent.data.params == {"n": "3"} and parent.data.metrics == {"total": 3.0}
    children = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_step = {c.data.tags["cellpipe.step"]: c for c in children}
    assert set(by_step) == {"make", "other", "total"}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert by_step["total"].data.metrics == {"total": 3.0}
    assert by_step["make"].data.params == {"n": "3"}
    files = {a.path for a in client.list_artifacts(by_step["other"].info.run_id, "figures")}
    assert files == {"figures/figure-1.png"}
    report = Path(client.download_artifacts(by_step["total"].info.run_id, "report.html",
                                            str(tmp_path / "dl"))).read_text()
    assert "total 3" in report


def test_a_failing_cluster_step_fails_the_parent_and_keeps_its_exit_code(tmp_path,
                                                                        mlflow_server):
    path = notebook(tmp_path, "podfail", cells=[("step:boom", "raise ValueError('bad pod')")])
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.spec_to_json(api.compile_spec(path)))
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri, "CELLPIPE_TRACKING_RUN": "podfail-1",
           "CELLPIPE_TRACKING_STEPS": "boom"}
    process = run_step(spec_path, "boom", tmp_path, env)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 1, output
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("podfail")  # the pipeline's name
    runs = {r.data.tags["cellpipe.kind"]: r for r in client.search_runs(
        [experiment.experiment_id])}
    assert runs["workflow"].info.status == "FAILED"
    assert runs["step"].info.status == "FAILED"
    assert "bad pod" in runs["step"].data.tags["cellpipe.error"]


def test_a_cluster_step_with_the_server_down_warns_and_succeeds(tmp_path):
    from tests.tracking.conftest import free_port

    path = notebook(tmp_path, "poddown", cells=[("step:fine", "x = 1")])
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.spec_to_json(api.compile_spec(path)))
    env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
           "CELLPIPE_TRACKING_RUN": "poddown-1"}
    process = run_step(spec_path, "fine", tmp_path, env)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 0, output
    assert "warning: step 'fine' was not tracked" in output and "cannot be reached" in output


def test_kfp_local_run_logs_every_step_under_the_pipeline_job(tmp_path, mlflow_server):
    """The compiled IR run by kfp.local: the tasks' env says where, the job id placeholder
    (an argument) groups the steps under one parent."""
    kfp_local = pytest.importorskip("kfp.local", reason="kfp is installed by `.[kfp]`")
    kfp_components = pytest.importorskip("kfp.components")
    path = notebook(tmp_path, "kfptracked", cells=CELLS)
    package = tmp_path / "pipeline.yaml"
    package.write_text(api.compile_target(path, "kfp", image="unused:1",
                                          track=mlflow_server.uri))
    root = tmp_path / "kfp-root"
    root.mkdir()
    kfp_local.init(runner=kfp_local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    started = time.monotonic()
    with pytest.warns(RuntimeWarning):  # kfp.local: the step's image is not used
        kfp_components.load_component_from_file(str(package))(n=4)
    print(f"kfp.local run took {time.monotonic() - started:.1f}s")
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("kfptracked")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("cellpipe.kind") == "workflow"]
    steps = {r.data.tags["cellpipe.step"]: r for r in runs if r is not parent}
    assert set(steps) == {"make", "other", "total"}
    assert {r.data.tags["mlflow.parentRunId"] for r in steps.values()} == {parent.info.run_id}
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    assert steps["total"].data.metrics == {"total": 6.0}


def test_built_step_images_pin_mlflow_skinny_only_when_tracked(tmp_path):
    """What `cellpipe build` gives the image builder (its requirements lines win over pins)."""
    import importlib.metadata

    from cellpipe.engines.docker.requirements import step_requirements
    from cellpipe.tracking_api import tracking_requirements

    for metadata, tracked, expected in ((TRACKED, None, True), (None, None, False),
                                        (None, True, True), (TRACKED, False, False)):
        path = notebook(tmp_path, "built", metadata=metadata)
        nb = api.load_notebook(path)
        spec = api.compile_spec(nb)
        lines = tracking_requirements(nb, spec, tracked)
        needs = step_requirements(spec, tmp_path, lines)
        pinned = {step: found.pins.get("mlflow-skinny") for step, found in needs.items()}
        version = importlib.metadata.version("mlflow-skinny")
        assert pinned == dict.fromkeys(["make", "other", "total"],
                                       version if expected else None), (metadata, tracked)
