"""`cellpipe submit --target katib` and `cellpipe status --target katib`, from the CLI.

No Kubernetes API server nor Katib can run here: these are API-level tests against kmock's
in-memory Kubernetes API over real HTTP (see conftest.py). The test plays Katib's controller
(:mod:`tests.targets.katib.katib_controller`): it reads the submitted Experiment back,
creates its Trials with the trial template's parameters replaced, plays Argo and the pod by
running the reporting step's command (the real step runtime) with each trial's values,
parses the metrics file as Katib's File collector does, and writes the trials' and the
experiment's status (its optimal trial) for `cellpipe status` to read back. Every object
it writes is checked against Katib's own definitions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hera.workflows import models as hera_models

from cellpipe import api
from tests.conftest import ROOT, write_nb
from tests.targets.argo.conftest import _serve, kubeconfig
from tests.targets.katib import katib_controller as katib
from tests.targets.katib import katib_schema

kubernetes = pytest.importorskip("kubernetes")

EXPERIMENTS = ("kubeflow.org", "v1beta1", "experiments")
TRIALS = ("kubeflow.org", "v1beta1", "trials")
CELLS = [
    ("parameters", "a = 0.5\nk = 2\nlabel = 'base'"),
    ("step:fit", "score = round(k - (a - 0.3) ** 2, 6)\nloss = round((a - 0.3) ** 2, 6)"),
    ("metrics", "score\nloss"),
]
SEARCH = ["-p", "a=uniform(0, 1)", "-p", "k=int(1, 3)", "-p", "label=tuned",
          "--objective", "score", "--maximize", "--trials", "3", "--parallel", "3",
          "--sampler", "random"]
TRIAL_VALUES = [{"a": "0.9", "k": "1"}, {"a": "0.25", "k": "3"}, {"a": "0.000012", "k": "2"}]


def _cellpipe(tmp_path: Path, url: str, *args: str, wait: bool = True) -> Any:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig(tmp_path, url)),
           "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "cellpipe", *args]
    if wait:
        return subprocess.run(command, env=env, text=True, capture_output=True, timeout=120)
    return subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _notebook(tmp_path: Path) -> tuple[Path, Path]:
    path = write_nb(tmp_path, *CELLS)
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"fit": "registry.local/ml/fit:1"}))
    return path, images


def _custom(kube: Any) -> Any:
    return kubernetes.client.CustomObjectsApi(kube.api())


def _experiments(kube: Any) -> list[dict[str, Any]]:
    items = _custom(kube).list_namespaced_custom_object(*EXPERIMENTS[:2], "ml", EXPERIMENTS[2])
    return list(items.get("items", []))


def _run_reporting_step(run: dict[str, Any], notebook: Path, work: Path) -> dict[str, str]:
    """Play Argo and the pod: run the labelled template's command, with the Workflow's
    argument values for its inputs and local paths for the pod's, and read its metrics file
    as Katib's File collector does."""
    assert hera_models.Workflow.model_validate(run).model_dump(
        by_alias=True, exclude_none=True) == run
    arguments = {p["name"]: p["value"] for p in run["spec"]["arguments"]["parameters"]}
    [template] = [t for t in run["spec"]["templates"]
                  if (t.get("metadata") or {}).get("labels", {}).get(
                      "katib.kubeflow.org/model-training") == "true"]
    command = [re.sub(r"\{\{inputs\.parameters\.(\w+)\}\}", lambda m: arguments[m[1]], word)
               for word in template["container"]["command"]]
    assert command[:3] == ["python", "-m", "cellpipe.runtime"]
    work.mkdir(parents=True)
    spec_path = work / "spec.json"
    spec_path.write_text(api.compile_spec(notebook).to_json())
    local = {"--spec": spec_path, "--store": work / "store", "--step-dir": work / "step",
             "--outputs-dir": work / "outputs", "--metrics-file": work / "katib" / "metrics.log"}
    for option, value in local.items():
        command[command.index(option) + 1] = str(value)
    done = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src")}, timeout=120)
    assert done.returncode == 0, done.stderr
    observed = katib.katib_parse(local["--metrics-file"].read_text(), ["score", "loss"])
    return {name: values[-1] for name, values in observed.items()}


def _play_katib(kube: Any, notebook: Path, work: Path, *, final: bool = True,
                pause: float = 0.0) -> dict[str, Any]:
    """Katib's controller for the one submitted experiment: trials, their metrics, the best."""
    custom = _custom(kube)
    deadline = time.monotonic() + 60
    while not _experiments(kube):
        assert time.monotonic() < deadline, "no experiment was submitted"
        time.sleep(0.05)
    [experiment] = _experiments(kube)
    assert katib_schema.errors(experiment) == []
    name = experiment["metadata"]["name"]
    running = {"conditions": [katib.condition("Created"), katib.condition("Running")]}
    custom.patch_namespaced_custom_object_status(*EXPERIMENTS[:2], "ml", EXPERIMENTS[2], name,
                                                 {"status": running})
    results: dict[str, dict[str, str]] = {}
    for index, values in enumerate(TRIAL_VALUES):
        trial = f"{name}-trial{index}"
        body = katib.trial_object(experiment, trial, "ml", values)
        assert katib_schema.errors(body, ".v1beta1.Trial") == []
        run = body["spec"]["runSpec"]
        assert run["metadata"]["name"] == trial  # the Workflow is the trial's namesake
        custom.create_namespaced_custom_object(*TRIALS[:2], "ml", TRIALS[2], body)
        status = {"conditions": [katib.condition("Created"), katib.condition("Running")]}
        custom.patch_namespaced_custom_object_status(*TRIALS[:2], "ml", TRIALS[2], trial,
                                                     {"status": status})
        time.sleep(pause)
        results[trial] = _run_reporting_step(run, notebook, work / trial)
        status = {"conditions": [*status["conditions"], katib.condition("Succeeded")],
                  "observation": katib.observation(results[trial])}
        assert katib_schema.errors(status, ".v1beta1.TrialStatus") == []
        custom.patch_namespaced_custom_object_status(*TRIALS[:2], "ml", TRIALS[2], trial,
                                                     {"status": status})
    best = max(results, key=lambda trial: float(results[trial]["score"]))
    values = TRIAL_VALUES[list(results).index(best)]
    status = {
        "conditions": [*running["conditions"]]
        + ([katib.condition("Succeeded", "Experiment has succeeded because max trial count "
                                         "has reached")] if final else []),
        "currentOptimalTrial": {
            "bestTrialName": best,
            "parameterAssignments": [{"name": k, "value": v} for k, v in values.items()],
            "observation": katib.observation(results[best])},
        "trials": 3, "trialsSucceeded": 3, "succeededTrialList": sorted(results),
    }
    assert katib_schema.errors(status, "v1beta1.ExperimentStatus") == []
    custom.patch_namespaced_custom_object_status(*EXPERIMENTS[:2], "ml", EXPERIMENTS[2], name,
                                                 {"status": status})
    return {"name": name, "best": best, "results": results, "experiment": experiment}


def test_submit_then_status_reads_the_optimal_trial_back(katib_kube, tmp_path):
    notebook, images = _notebook(tmp_path)
    submitted = _cellpipe(tmp_path, katib_kube.url, "submit", str(notebook), "--target",
                          "katib", *SEARCH, "--images", str(images))
    assert submitted.returncode == 0, submitted.stderr
    played = _play_katib(katib_kube, notebook, tmp_path / "trials")
    name = played["name"]
    assert f"Katib experiment {name}: Submitted" in submitted.stdout
    assert f"cellpipe status {name} --target katib" in submitted.stdout
    experiment = played["experiment"]
    assert experiment["spec"]["parameters"] == [
        {"name": "a", "parameterType": "double", "feasibleSpace": {"min": "0.0", "max": "1.0"}},
        {"name": "k", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3",
                                                               "step": "1"}}]
    assert experiment["spec"]["objective"] == {
        "type": "maximize", "objectiveMetricName": "score", "additionalMetricNames": ["loss"]}
    # the trials ran the step with Katib's values: k - (a - 0.3)^2, read from the metrics file
    assert played["results"][f"{name}-trial1"] == {"score": "2.9975", "loss": "0.0025"}
    assert played["results"][f"{name}-trial2"]["score"] == "1.910007"
    assert played["best"] == f"{name}-trial1"
    run = katib.run_spec(experiment, "t", "ml", TRIAL_VALUES[0])
    assert {p["name"]: p["value"] for p in run["spec"]["arguments"]["parameters"]} == {
        "a": "0.9", "k": "1", "label": "tuned"}  # -p label=tuned: every trial's value

    shown = _cellpipe(tmp_path, katib_kube.url, "status", name, "--target", "katib")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"Katib experiment {name}: Succeeded (Experiment has succeeded")
    assert any(line.split()[:3] == [f"{name}-trial0", "Succeeded", "a=0.9"]
               and "score=0.64" in line for line in lines)
    assert f"optimal trial {name}-trial1: a=0.25, k=3 -> loss=0.0025, score=2.9975" in lines
    assert not any(line.startswith("metrics:") for line in lines)


def test_status_through_the_api_has_the_optimal_trial_typed(katib_cluster, tmp_path):
    notebook, images = _notebook(tmp_path)
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(
        played=_play_katib(katib_cluster, notebook, tmp_path / "trials")), daemon=True)
    thread.start()
    run = api.submit(notebook, "katib", connection={"namespace": "ml"}, images=str(images),
                     target_options={"space": ["a=uniform(0, 1)", "k=int(1, 3)"],
                                     "objective": "score", "direction": "maximize",
                                     "trials": 3, "parallel": 1})
    thread.join(120)
    assert run.target == "katib" and run.name == box["played"]["name"]
    found = api.target_status("katib", run.name, namespace="ml")
    assert found.done and found.phase == "Succeeded"
    assert found.optimal == {"name": f"{run.name}-trial1", "parameters": {"a": 0.25, "k": 3},
                             "metrics": {"loss": 0.0025, "score": 2.9975}}
    assert found.outputs == {"loss": 0.0025, "score": 2.9975}
    assert set(found.steps) == {f"{run.name}-trial{i}" for i in range(3)}
    assert api.target_exit_code("katib", found.phase) == 0


def test_submit_watch_follows_the_trials_to_the_end(katib_kube, tmp_path):
    notebook, images = _notebook(tmp_path)
    watching = _cellpipe(tmp_path, katib_kube.url, "submit", str(notebook), "--target",
                         "katib", *SEARCH, "--images", str(images), "--watch", "--timeout",
                         "90", wait=False)
    try:
        played = _play_katib(katib_kube, notebook, tmp_path / "trials", pause=0.3)
        out, err = watching.communicate(timeout=60)
    finally:
        watching.kill()
    assert watching.returncode == 0, err
    name = played["name"]
    assert f"Katib experiment {name}: Succeeded" in out
    assert f"{name}-trial1: succeeded (a=0.25 k=3 -> loss=0.0025 score=2.9975)" in err


def test_a_running_experiment_has_no_optimal_trial_yet(katib_kube, tmp_path):
    notebook, images = _notebook(tmp_path)
    submitted = _cellpipe(tmp_path, katib_kube.url, "submit", str(notebook), "--target",
                          "katib", *SEARCH, "--images", str(images))
    assert submitted.returncode == 0, submitted.stderr
    [experiment] = _experiments(katib_kube)
    shown = _cellpipe(tmp_path, katib_kube.url, "status", experiment["metadata"]["name"],
                      "--target", "katib")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"Katib experiment {experiment['metadata']['name']}: Pending"]


def test_a_cluster_without_katib_is_told_so(tmp_path):
    notebook, images = _notebook(tmp_path)
    for kube in _serve(declare_workflows=True):
        done = _cellpipe(tmp_path, kube.url, "submit", str(notebook), "--target", "katib",
                         *SEARCH, "--images", str(images))
        assert done.returncode != 0
        assert "does not serve experiments.kubeflow.org/v1beta1: is Katib installed" in (
            done.stderr)


def test_submit_refuses_a_bad_search_before_reaching_the_cluster(tmp_path):
    notebook, images = _notebook(tmp_path)
    done = _cellpipe(tmp_path, "http://127.0.0.1:9", "submit", str(notebook), "--target",
                     "katib", "-p", "a=uniform(0, 1)", "--objective", "scor", "--maximize",
                     "--images", str(images))
    assert done.returncode != 0
    assert "'scor' is not a metric of the notebook (did you mean 'score'?)" in done.stderr
