"""`cellpipe tune` on the command line: real processes, a real Ctrl-C, --show, --list."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time

import pytest

from cellpipe import api
from cellpipe.errors import CellpipeError
from tests.tune.test_tune_api import assert_real_png

QUADRATIC_ARGS = ["--objective", "loss", "--minimize", "-p", "x=uniform(-3, 3)"]


def cellpipe(*args, check=True, timeout=300, cwd=None):
    result = subprocess.run([sys.executable, "-m", "cellpipe", *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, check=False,
                            cwd=cwd)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_tune_prints_each_trial_and_the_best(quadratic_nb):
    result = cellpipe("tune", quadratic_nb, *QUADRATIC_ARGS, "-p", "y=int(0, 3)",
                      "--trials", 3, "--seed", 4, "--study", "cli")
    study = api.open_study("cli", quadratic_nb.parent / ".cellpipe")
    best = study.best_trial
    assert f"best loss: {best.value:.4g} (trial {best.number}, run {best.run_id})" \
        in result.stdout
    assert "best parameters: " + json.dumps(best.params) in result.stdout
    lines = [line.strip() for line in result.stderr.splitlines() if "trial " in line]
    assert [line.split(":")[0] for line in lines] == [f"trial {n} complete" for n in range(3)]
    assert "Traceback" not in result.stderr and "[I " not in result.stderr  # Optuna's INFO


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_trials_and_resume_completes_the_study(quadratic_nb):
    root = quadratic_nb.parent / ".cellpipe"
    args = ["tune", quadratic_nb, *QUADRATIC_ARGS, "--trials", 4, "--seed", 9, "--study", "cut",
            "--set", "pause=2.0"]
    process = subprocess.Popen([sys.executable, "-m", "cellpipe", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        running = wait_for_a_trial_in_its_step(root, "cut", process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, out + err
    assert "study cut interrupted" in err and "--resume cut" in err

    study = api.open_study("cut", root)
    states = [t.state for t in study.trials]
    assert "RUNNING" not in states
    # the trial that ran when Ctrl-C came (a loaded machine may have begun the next one)
    (stopped,) = [t for t in study.trials if t.interrupted]
    assert stopped.number >= running and stopped.number == len(states) - 1
    assert stopped.state == "FAIL"
    if stopped.number == running:
        assert stopped.reason.startswith("interrupted (Ctrl-C)")
        assert stopped.run.status == "cancelled"  # its run was stopped, not left running
    finished = study.trials[:stopped.number]
    assert finished and all(t.state == "COMPLETE" for t in finished)

    resumed = cellpipe("tune", quadratic_nb, "--resume", "cut")
    assert "study cut: 5 trials, 1 failed" in resumed.stdout
    study = api.open_study("cut", root)
    done = [t for t in study.trials if not t.interrupted]
    assert len(done) == 4 and all(t.state == "COMPLETE" for t in done)
    # the interrupted trial ran again first, with its values
    again = study.trials[stopped.number + 1]
    if stopped.params:
        assert again.params == stopped.params
    assert again.run.parameters["pause"] == 2.0


def wait_for_a_trial_in_its_step(root, name, process, timeout=120):
    """The number of a trial, after at least one completed, whose run has started."""
    deadline = time.monotonic() + timeout
    study = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if study is None and (root / "tune" / "studies.db").exists():
            with contextlib.suppress(CellpipeError):  # not created yet
                study = api.open_study(name, root)
        trials = study.trials if study is not None else []
        running = [t for t in trials if t.state == "RUNNING" and t.run_id]
        if running and any(t.state == "COMPLETE" for t in trials):
            return running[-1].number
        time.sleep(0.05)
    pytest.fail("no trial reached its run in time")


def test_show_prints_the_trials_importances_and_writes_the_plot(model_nb, tmp_path):
    api.tune(model_nb, "accuracy", space={"C": "loguniform(1e-3, 10)",
                                          "max_depth": "int(1, 6)"}, trials=4, seed=1,
             study="shown")
    plot = tmp_path / "plots" / "history.png"
    shown = cellpipe("tune", "--show", "shown", "--root", model_nb.parent / ".cellpipe",
                     "-o", plot)
    study = api.open_study("shown", model_nb.parent / ".cellpipe")
    text = shown.stdout
    assert "study shown: accuracy (maximize) of " in text
    assert "space: C=loguniform(1e-3, 10), max_depth=int(1, 6); sampler tpe (seed 1)" in text
    for trial in study.trials:
        assert trial.run_id in text
    importances = study.importances()
    assert "parameter importances: " + ", ".join(
        f"{k} {v:.2f}" for k, v in importances.items()) in text
    assert f"optimization history: {plot}" in text
    assert_real_png(plot)

    as_json = json.loads(cellpipe("tune", model_nb, "--show", "shown", "--format", "json").stdout)
    assert as_json["best"]["value"] == study.best_value
    assert [t["run"] for t in as_json["trials"]] == [t.run_id for t in study.trials]
    assert as_json["importances"] == pytest.approx(importances)
    assert as_json["plot"] == str(model_nb.parent / ".cellpipe" / "tune" / "shown" /
                                  "history.png")


def test_show_says_why_there_are_no_importances_yet(quadratic_nb):
    api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=1, study="one")
    shown = cellpipe("tune", quadratic_nb, "--show", "one")
    assert "parameter importances: parameter importances need at least 2 completed trials; " \
        "study 'one' has 1" in shown.stdout
    missing = cellpipe("tune", quadratic_nb, "--show", "onr", check=False)
    assert missing.returncode == 2
    assert "error: there is no study 'onr'" in missing.stderr and "did you mean 'one'?" \
        in missing.stderr


def test_list_shows_the_studies(quadratic_nb):
    assert "no studies yet" in cellpipe("tune", quadratic_nb, "--list").stdout
    api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=2,
             study="listed")
    listed = json.loads(cellpipe("tune", quadratic_nb, "--list", "--format", "json").stdout)
    assert [(s["name"], s["trials"], s["complete"], s["objective"], s["direction"])
            for s in listed] == [("listed", 2, 2, "loss", "minimize")]
    table = cellpipe("tune", quadratic_nb.parent / "other.ipynb", "--list", "--root",
                     quadratic_nb.parent / ".cellpipe").stdout
    assert "listed" in table and "quadratic.ipynb" in table


def test_a_space_file_and_bad_input(quadratic_nb, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("objective: loss\ndirection: minimize\nsampler: grid\n"
                     "space:\n  x: [1.0, 2.0]\n  y: int(0, 1)\n")
    result = cellpipe("tune", quadratic_nb, "--space", space, "--study", "filed")
    study = api.open_study("filed", quadratic_nb.parent / ".cellpipe")
    assert sorted((t.params["x"], t.params["y"]) for t in study.trials) == [
        (1.0, 0), (1.0, 1), (2.0, 0), (2.0, 1)]
    assert study.best_params == {"x": 2.0, "y": 1} and "best loss: 0 " in result.stdout

    for args, message in [
        (["--objective", "los", "-p", "x=uniform(0, 1)"],
         f"error: {quadratic_nb}: the notebook has no metric 'los' to optimize (did you mean "
         "'loss'?)"),
        (["--objective", "loss", "-p", "x=uniform(0, 1)", "--sampler", "cma"],
         "error: unknown sampler 'cma' (did you mean 'cmaes'?)"),
        (["--objective", "loss", "-p", "x=unifrom(0, 1)"],
         "error: unknown search space 'unifrom' in x=unifrom(0, 1) (did you mean 'uniform'?)"),
        (["--objective", "loss"], f"error: {quadratic_nb}: the search space is empty"),
    ]:
        bad = cellpipe("tune", quadratic_nb, *args, check=False)
        assert bad.returncode == 2, bad.stderr
        assert bad.stderr.splitlines()[0].startswith(message), bad.stderr
    missing = cellpipe("tune", check=False)
    assert missing.returncode == 2 and "give the NOTEBOOK to tune" in missing.stderr


@pytest.mark.slow
def test_ctrl_c_stops_parallel_trials_and_leaves_none_running(quadratic_nb):
    root = quadratic_nb.parent / ".cellpipe"
    args = ["tune", quadratic_nb, *QUADRATIC_ARGS, "--trials", 8, "--parallel", 2,
            "--study", "par", "--set", "pause=1.0"]
    process = subprocess.Popen([sys.executable, "-m", "cellpipe", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_a_trial_in_its_step(root, "par", process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, out + err
    study = api.open_study("par", root)
    assert [t for t in study.trials if t.state == "RUNNING"] == []
    stopped = [t for t in study.trials if t.interrupted]
    assert stopped and all(t.state == "FAIL" for t in stopped)
    assert all(t.run.status == "cancelled" for t in stopped if t.run_id)
    assert len(study.trials) < 8  # no trial started after Ctrl-C

    cellpipe("tune", quadratic_nb, "--resume", "par", "--parallel", 2)
    trials = api.open_study("par", root).trials
    done = [t for t in trials if not t.interrupted]
    assert len(done) == 8 and all(t.state == "COMPLETE" for t in done), [
        (t.number, t.state, t.reason, t.params) for t in trials]


def test_resume_without_the_notebook_finds_it_in_the_study(quadratic_nb, tmp_path):
    api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=1, study="r")
    result = cellpipe("tune", "--resume", "r", "--trials", 2, cwd=tmp_path)
    assert "study r: 2 trials, 0 failed" in result.stdout
    study = api.open_study("r", tmp_path / ".cellpipe")
    assert study.settings["notebook"] == str(quadratic_nb.resolve())
