"""Local runs tracked in a real `mlflow server` (tests/tracking/conftest.py), read back
through MLflow's own client: params, metrics, tags, statuses, nesting and artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import cellpipe
from cellpipe import api
from cellpipe.cli.main import main
from cellpipe.tracking import Tracking, TrackingWarning, log_run, parent_run
from tests.conftest import make_nb
from tests.tracking.conftest import free_port

PNG = b"\x89PNG\r\n\x1a\n"


def write(directory: Path, name: str, *cells, metadata=None) -> Path:
    path = directory / f"{name}.ipynb"
    nbformat.write(make_nb(*cells, metadata=metadata), path)
    return path


def plotting_notebook(directory: Path, name: str = "plotting", **metadata) -> Path:
    return write(
        directory, name,
        ("parameters", "lr = 0.1\nlabel = 'base'"),
        ("step:prepare", "import matplotlib\nimport matplotlib.pyplot as plt\n"
         "data = [i * lr for i in range(5)]\nplt.plot(data)\nplt.show()"),
        ("step:train", "score = sum(data)\nprint('score is', score)"),
        ("metrics", "accuracy = score / 10"),
        metadata=metadata or None)


def only_run(client, name: str):
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, f"no experiment {name!r}"
    return client.search_runs([experiment.experiment_id])


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *args], check=True, text=True,
                          capture_output=True).stdout.strip()


def test_a_run_is_an_mlflow_run_with_params_metrics_tags_and_artifacts(tmp_path, mlflow_server):
    git(tmp_path, "init", "-q")
    notebook = plotting_notebook(tmp_path, "plotting")
    git(tmp_path, "add", notebook.name)
    git(tmp_path, "-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "nb")

    run = cellpipe.run(notebook, {"lr": 0.5}, track=mlflow_server.uri)

    assert run.status == "succeeded"
    client = mlflow_server.client()
    (tracked,) = only_run(client, "plotting")  # the experiment is the pipeline's name
    assert run.tracking == {"uri": mlflow_server.uri, "experiment": "plotting",
                            "run_id": tracked.info.run_id, "source": "option"}
    assert json.loads((run.path / "run.json").read_text())["tracking"]["run_id"] == \
        tracked.info.run_id
    assert tracked.info.status == "FINISHED"
    assert tracked.data.params == {"lr": "0.5", "label": "base"}
    metrics = tracked.data.metrics
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["cellpipe.step.prepare.duration"] == run.steps["prepare"]["duration"]
    assert metrics["cellpipe.duration"] == run.data["duration"]
    tags = tracked.data.tags
    assert tags["cellpipe.run_id"] == run.id
    assert tags["cellpipe.step.prepare.status"] == "succeeded"
    assert tags["cellpipe.step.train.reason"] == "first run of this step"
    assert tags["mlflow.source.git.commit"] == git(tmp_path, "rev-parse", "HEAD")
    assert tags["cellpipe.git.notebook_changed"] == "false"
    assert tracked.info.start_time == int(run.data["started"] * 1000)

    paths = artifact_paths(client, tracked.info.run_id)
    assert {"spec.json", "cellpipe/run.json", "steps/prepare/report.html",
            "steps/prepare/report.ipynb", "steps/prepare/figures/figure-1.png",
            "steps/train/log.txt"} <= paths
    local = Path(client.download_artifacts(tracked.info.run_id, "steps", str(tmp_path / "dl")))
    assert (local / "prepare" / "figures" / "figure-1.png").read_bytes().startswith(PNG)
    assert "score is 5.0" in (local / "train" / "log.txt").read_text()
    assert "score is 5.0" in (local / "train" / "report.html").read_text()
    spec = json.loads(Path(client.download_artifacts(tracked.info.run_id, "spec.json",
                                                     str(tmp_path / "dl2"))).read_text())
    assert [s["name"] for s in spec["steps"]] == ["prepare", "train"]


def test_a_failed_run_is_failed_in_mlflow_and_stays_whole_here(tmp_path, mlflow_server):
    notebook = write(tmp_path, "failing", ("step:load", "x = 1"),
                     ("step:boom", "print('about to fail')\nraise ValueError('no luck')"))

    run = cellpipe.run(notebook, track=mlflow_server.uri)

    assert run.status == "failed"
    (tracked,) = only_run(mlflow_server.client(), "failing")
    assert tracked.info.status == "FAILED"
    assert tracked.data.tags["cellpipe.step.boom.status"] == "failed"
    assert tracked.data.tags["cellpipe.step.load.status"] == "succeeded"
    log = Path(mlflow_server.client().download_artifacts(
        tracked.info.run_id, "steps/boom/log.txt", str(tmp_path / "dl"))).read_text()
    assert "no luck" in log
    again = api.open_run(run.id, tmp_path / ".cellpipe")  # the local run is intact
    assert again.status == "failed" and again.load("x") == 1


def test_a_cancelled_run_is_killed_in_mlflow(tmp_path, mlflow_server):
    notebook = write(tmp_path, "cancelled", ("step:a", "x = 1"))
    run = cellpipe.run(notebook, track=False)
    assert run.tracking is None
    data = {**run.data, "status": "cancelled"}
    logged = log_run(Tracking(mlflow_server.uri, "cancelled"), run.path, data)
    assert mlflow_server.client().get_run(logged["run_id"]).info.status == "KILLED"


def test_a_sweep_is_one_parent_with_a_nested_run_per_combination(tmp_path, mlflow_server):
    notebook = plotting_notebook(tmp_path, "swept")

    runs = api.sweep(notebook, {"lr": [0.1, 0.2], "label": ["a", "b"]}, track=mlflow_server.uri)

    assert [r.status for r in runs] == ["succeeded"] * 4
    client = mlflow_server.client()
    found = only_run(client, "swept")
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(found) == 5
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert json.loads(parent.data.params["lr"]) == [0.1, 0.2]
    children = {r.data.tags["cellpipe.run_id"]: r for r in found if r is not parent}
    assert set(children) == {r.id for r in runs}
    for run in runs:
        child = children[run.id]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.params == {"lr": str(run.parameters["lr"]),
                                     "label": run.parameters["label"]}
        lr, label = run.parameters["lr"], run.parameters["label"]
        assert child.info.run_name == f"lr={lr!r}, label={label!r}"
        assert run.tracking["parent_run_id"] == parent.info.run_id


def test_parent_run_nests_runs_for_tuning_code(tmp_path, mlflow_server):
    notebook = plotting_notebook(tmp_path, "tuned")
    tracking = Tracking(mlflow_server.uri, "tuned")
    with parent_run(tracking, "tune lr", params={"trials": 2}) as parent:
        for number, lr in enumerate([0.3, 0.4]):
            with parent.child(name=f"trial-{number}", tags={"optuna.trial": str(number)}):
                cellpipe.run(notebook, {"lr": lr})  # no track=: the parent's server
        parent.log_metrics({"best_accuracy": 1.0, "note": "not a number"})
    client = mlflow_server.client()
    top = client.get_run(parent.run_id)
    assert top.data.metrics == {"best_accuracy": 1.0} and top.data.params == {"trials": "2"}
    children = [client.get_run(i) for i in parent.children]
    assert [c.info.run_name for c in children] == ["trial-0", "trial-1"]
    assert [c.data.tags["optuna.trial"] for c in children] == ["0", "1"]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.run_id}


def test_a_resumed_run_logs_into_the_mlflow_run_it_had(tmp_path, mlflow_server):
    notebook = write(tmp_path, "resumed", ("step:a", "x = 1"),
                     ("step:b", "import os\nif not os.path.exists('ok'):\n    raise SystemExit(3)"))
    first = cellpipe.run(notebook, track=mlflow_server.uri)
    assert first.status == "failed"
    (tmp_path / "ok").write_text("")
    import os

    os.chdir(tmp_path)  # the steps run in the notebook's folder; the file is there
    second = cellpipe.run(notebook, resume=first.id, track=mlflow_server.uri)
    assert second.status == "succeeded"
    (tracked,) = only_run(mlflow_server.client(), "resumed")
    assert tracked.info.status == "FINISHED"
    assert tracked.data.tags["cellpipe.step.b.status"] == "succeeded"


def test_a_server_that_is_down_is_a_warning_and_the_run_is_kept(tmp_path):
    notebook = write(tmp_path, "down", ("step:a", "x = 41 + 1"))
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.warns(TrackingWarning, match="cannot be reached"):
        run = cellpipe.run(notebook, track=uri)
    assert run.status == "succeeded" and run.load("x") == 42
    assert run.tracking["uri"] == uri and "cannot be reached" in run.tracking["error"]
    result = CliRunner().invoke(main, ["run", str(notebook), "--track", uri])
    assert result.exit_code == 0, result.output
    assert "warning: run" in result.output and "cannot be reached" in result.output


def test_metadata_names_the_server_and_the_experiment(tmp_path, mlflow_server):
    notebook = plotting_notebook(tmp_path, "meta", cellpipe={
        "tracking": {"uri": mlflow_server.uri, "experiment": "from-metadata"}})
    run = cellpipe.run(notebook)
    assert run.tracking["experiment"] == "from-metadata"
    assert run.tracking["source"] == "metadata"
    (tracked,) = only_run(mlflow_server.client(), "from-metadata")
    assert tracked.data.tags["cellpipe.run_id"] == run.id


def test_the_environment_tracks_says_so_and_no_track_turns_it_off(tmp_path, mlflow_server,
                                                                   monkeypatch):
    notebook = write(tmp_path, "envtracked", ("parameters", "n = 1"), ("step:a", "x = n"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(notebook), "-p", "n=2"])
    assert result.exit_code == 0, result.output
    assert f"tracking in MLflow at {mlflow_server.uri}, experiment 'envtracked' (from " \
        "$MLFLOW_TRACKING_URI); --no-track turns it off" in result.output
    (tracked,) = only_run(mlflow_server.client(), "envtracked")
    assert f"mlflow run: {tracked.info.run_id}" in result.output

    quiet = runner.invoke(main, ["run", str(notebook), "-p", "n=3", "--no-track"])
    assert quiet.exit_code == 0, quiet.output
    assert "tracking in" not in quiet.output
    assert len(only_run(mlflow_server.client(), "envtracked")) == 1

    listed = runner.invoke(main, ["runs", str(notebook), "--mlflow", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(r["run_id"], r["status"], r["params"]) for r in rows] == [
        (tracked.info.run_id, "FINISHED", {"n": "2"})]
    table = runner.invoke(main, ["runs", str(notebook), "--mlflow", "--track", mlflow_server.uri])
    assert tracked.info.run_id in table.output and "1 run(s)" in table.output


def test_cli_sweep_is_nested_under_one_parent(tmp_path, mlflow_server):
    notebook = write(tmp_path, "clisweep", ("parameters", "n = 1"), ("step:a", "x = n"),
                     ("metrics", "twice = x * 2"))
    result = CliRunner().invoke(main, ["run", str(notebook), "-p", "n=1,2,3", "--sweep",
                                       "--track", mlflow_server.uri])
    assert result.exit_code == 0, result.output
    found = only_run(mlflow_server.client(), "clisweep")
    (parent,) = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert parent.data.tags["cellpipe.kind"] == "sweep"
    assert f"mlflow parent run: {parent.info.run_id} (3 nested runs)" in result.output
    twice = sorted(r.data.metrics["twice"] for r in found if r is not parent)
    assert twice == [2.0, 4.0, 6.0]


def test_without_mlflow_asking_for_tracking_says_what_to_install(tmp_path):
    """In a process where mlflow cannot be imported (the test extras install it)."""
    notebook = write(tmp_path, "nomlflow", ("step:a", "x = 1"))
    code = ("import sys; sys.modules['mlflow'] = None\n"
            "from cellpipe.cli.main import main\n"
            f"main(['run', {str(notebook)!r}, '--track', 'http://127.0.0.1:9'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'mlflow'" in done.stderr and "pip install 'cellpipe[mlflow]'" in done.stderr
    assert not (tmp_path / ".cellpipe" / "runs").exists() or not list(
        (tmp_path / ".cellpipe" / "runs").iterdir())  # refused before anything ran
    # From the environment alone, a run without mlflow runs, untracked, with a warning.
    code = ("import sys, warnings; sys.modules['mlflow'] = None\n"
            "import cellpipe\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            f"    run = cellpipe.run({str(notebook)!r})\n"
            "print(run.status, run.tracking, [str(w.message) for w in caught])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**__import__("os").environ,
                                            "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("succeeded None") and "cellpipe[mlflow]" in done.stdout


def test_tracking_failure_never_raises_out_of_parent_run(tmp_path):
    tracking = Tracking(f"http://127.0.0.1:{free_port()}", "nowhere")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with parent_run(tracking, "down") as parent:
            parent.log_metrics({"a": 1})
    assert parent.run_id is None and "cannot be reached" in parent.error
    assert any(issubclass(w.category, TrackingWarning) for w in caught)


def test_a_tuning_study_is_one_parent_with_a_nested_run_per_trial(tmp_path, mlflow_server):
    """Two trials at once (threads): each trial's run still finds the study's parent."""
    notebook = plotting_notebook(tmp_path, "tuning")
    study = cellpipe.api.tune(notebook, "accuracy", direction="maximize",
                              space={"lr": "uniform(0.1, 1.0)"}, trials=4, parallel=2,
                              sampler="random", seed=3, track=mlflow_server.uri,
                              root=tmp_path / ".cellpipe")
    assert [t.state for t in study.trials] == ["COMPLETE"] * 4
    client = mlflow_server.client()
    found = only_run(client, "tuning")
    [parent] = [r for r in found if r.data.tags.get("cellpipe.kind") == "tune"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["space.lr"] == "uniform(0.1, 1.0)"
    assert parent.data.params["objective"] == "accuracy"
    assert parent.data.metrics["best_accuracy"] == pytest.approx(study.best_value)
    assert float(parent.data.params["best.lr"]) == pytest.approx(study.best_params["lr"])
    children = {r.data.tags["cellpipe.run_id"]: r for r in found
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {t.run.id for t in study.trials}
    for trial in study.trials:
        child = children[trial.run.id]
        assert child.data.tags["cellpipe.kind"] == "tune-trial"
        assert child.data.tags["cellpipe.trial"] == str(trial.number)
        assert child.info.run_name == f"trial {trial.number}: lr={trial.params['lr']!r}"
        assert child.data.metrics["accuracy"] == pytest.approx(trial.value)


def test_cli_tune_tracks_the_study(tmp_path, mlflow_server):
    notebook = plotting_notebook(tmp_path, "tuned-cli")
    done = CliRunner().invoke(main, ["tune", str(notebook), "--objective", "accuracy",
                                     "-p", "lr=uniform(0.1, 0.5)", "--trials", "2",
                                     "--seed", "0", "--track", mlflow_server.uri,
                                     "--root", str(tmp_path / ".cellpipe")])
    assert done.exit_code == 0, done.output
    found = only_run(mlflow_server.client(), "tuned-cli")
    [parent] = [r for r in found if r.data.tags.get("cellpipe.kind") == "tune"]
    assert sorted(r.data.tags.get("mlflow.parentRunId") for r in found if r is not parent) \
        == [parent.info.run_id] * 2
    done = CliRunner().invoke(main, ["tune", str(notebook), "--objective", "accuracy",
                                     "-p", "lr=uniform(0.1, 0.5)", "--trials", "1",
                                     "--no-track", "--root", str(tmp_path / ".cellpipe")])
    assert done.exit_code == 0, done.output
    assert len(only_run(mlflow_server.client(), "tuned-cli")) == 3  # nothing new
