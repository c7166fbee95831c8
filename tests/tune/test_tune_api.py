"""`cellpipe.tune`: real Optuna studies in SQLite over real local runs of real notebooks."""

from __future__ import annotations

import itertools
import math
import re

import pytest

import cellpipe
from cellpipe import api
from cellpipe.core.space import SpaceError
from cellpipe.errors import CellpipeError
from tests.tune.notebooks import write_tune_notebook

MODEL_SPACE = {"C": "loguniform(1e-3, 10)", "max_depth": "int(1, 6)"}


def statuses(study, step):
    return [t.run.steps[step]["status"] for t in study.trials]


def test_tuning_a_model_step_runs_the_upstream_steps_once(model_nb):
    seen = []
    study = cellpipe.tune(model_nb, "accuracy", space=MODEL_SPACE, trials=5, seed=3,
                          on_trial=lambda s, t: seen.append((t.number, t.state)))

    assert isinstance(study, api.Study) and len(study.trials) == 5
    assert [t.state for t in study.trials] == ["COMPLETE"] * 5
    # load and clean read no tuned parameter: they ran in the first trial only
    assert statuses(study, "load") == ["succeeded"] + ["cached"] * 4
    assert statuses(study, "clean") == ["succeeded"] + ["cached"] * 4
    assert statuses(study, "train") == ["succeeded"] * 5
    first = study.trials[0].run
    for trial in study.trials[1:]:
        assert trial.run.steps["load"]["cached_from"] == first.id
        assert trial.run.steps["train"]["reason"].startswith("parameter ")
    # each trial's run is the run of its values; its metric is the trial's value
    for trial in study.trials:
        run = trial.run
        assert {k: run.parameters[k] for k in trial.params} == trial.params
        assert run.metrics["accuracy"] == trial.value
    assert study.best_value == max(t.value for t in study.trials)
    assert study.best_params == study.best_trial.params
    assert study.best_run.id == study.best_trial.run_id
    assert study.best_run.load("tree").get_depth() <= study.best_params["max_depth"]
    # on_trial heard each trial start, then end
    assert seen == [(n, s) for n in range(5) for s in ("RUNNING", "COMPLETE")]


def test_a_seeded_sampler_draws_the_same_trials_in_the_same_order(quadratic_nb):
    space = {"x": "uniform(-3, 3)", "y": "int(0, 3)"}
    drawn = {}
    for name, sampler, seed in (("a", "tpe", 11), ("b", "tpe", 11), ("c", "tpe", 12),
                                ("d", "random", 11), ("e", "random", 11)):
        study = api.tune(quadratic_nb, "loss", "minimize", space, trials=4, sampler=sampler,
                         seed=seed, study=name)
        drawn[name] = [t.params for t in study.trials]
    assert drawn["a"] == drawn["b"]
    assert drawn["d"] == drawn["e"]
    assert drawn["a"] != drawn["c"]
    assert len({p["x"] for p in drawn["a"]}) == 4


def test_a_failing_trial_is_recorded_with_its_reason_and_the_study_goes_on(model_nb):
    study = api.tune(model_nb, "accuracy", space={"C": "choice(0.5, -1.0, 2.0)"},
                     sampler="grid", seed=0)

    assert len(study.trials) == 3  # a grid: all its points
    failed = study.trials_in("FAIL")
    assert [t.params for t in failed] == [{"C": -1.0}]
    (bad,) = failed
    assert "step train failed" in bad.reason and "InvalidParameterError" in bad.reason
    assert bad.value is None and not bad.interrupted
    assert bad.run.status == "failed"
    assert sorted(t.params["C"] for t in study.trials_in("COMPLETE")) == [0.5, 2.0]
    assert study.best_params["C"] in (0.5, 2.0)


def test_a_run_without_a_finite_metric_fails_the_trial(quadratic_nb):
    study = api.tune(quadratic_nb, "loss", "minimize", {"x": "choice(1.0, 5.0, 2.0)"},
                     sampler="grid", seed=0)

    by_x = {t.params["x"]: t for t in study.trials}
    assert by_x[5.0].state == "FAIL"
    assert by_x[5.0].reason == "metric 'loss' is nan, not a finite number"
    assert by_x[5.0].run.status == "succeeded"  # the run itself was fine
    assert by_x[2.0].value == pytest.approx(1.0) and study.best_params == {"x": 2.0}


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"objective": "los"}, CellpipeError, "no metric 'los'.*did you mean 'loss'"),
    ({"sampler": "rnadom"}, CellpipeError, "unknown sampler 'rnadom'.*did you mean 'random'"),
    ({"direction": "up"}, CellpipeError, "unknown direction 'up'"),
    ({"space": {"z": "uniform(0, 1)"}}, SpaceError, "no parameter 'z'"),
    ({"space": {"x": "loguniform(0, 1)"}}, SpaceError, "log scale needs LOW above 0"),
    ({"space": {"y": "uniform(0, 1)"}}, SpaceError, "'y' is an int"),
    ({"sampler": "grid"}, SpaceError, "grid search needs a finite list"),
    ({"space": {}}, SpaceError, "the search space is empty"),
    ({"trials": 0}, CellpipeError, "trials must be at least 1"),
])
def test_bad_settings_are_refused_before_any_trial_runs(quadratic_nb, kwargs, error, words):
    settings = {"objective": "loss", "space": {"x": "uniform(-3, 3)"}, **kwargs}
    with pytest.raises(error, match=words) as caught:
        api.tune(quadratic_nb, **settings)
    if kwargs.get("space"):
        assert caught.value.variable == next(iter(kwargs["space"]))
    assert not (quadratic_nb.parent / ".cellpipe" / "runs").exists()
    assert api.list_studies(quadratic_nb.parent / ".cellpipe") == []


def test_the_notebook_metadata_gives_the_defaults_and_arguments_win(tmp_path):
    tune = {"objective": "accuracy", "direction": "maximize", "sampler": "random", "seed": 5,
            "trials": 2, "space": {"C": "loguniform(0.01, 1)", "max_depth": [2, 3]}}
    nb = write_tune_notebook(tmp_path, metadata={"cellpipe": {"tune": tune}})

    study = api.tune(nb, study="from-metadata")
    assert len(study.trials) == 2 and study.objective == "accuracy"
    assert study.settings["sampler"] == "random" and study.settings["seed"] == 5
    assert study.settings["space"] == {"C": "loguniform(0.01, 1)", "max_depth": "choice(2, 3)"}
    assert all(t.params["max_depth"] in (2, 3) for t in study.trials)

    override = api.tune(nb, trials=1, space={"C": "choice(0.5)"}, study="overridden")
    assert [t.params for t in override.trials] == [{"C": 0.5}]


def test_a_resumed_study_goes_on_and_keeps_what_it_tunes(quadratic_nb):
    space = {"x": "uniform(-3, 3)"}
    first = api.tune(quadratic_nb, "loss", "minimize", space, trials=2, seed=1, study="s")
    before = [t.params for t in first.trials]
    assert len(before) == 2

    more = api.tune(quadratic_nb, resume="s", trials=5)
    assert more.name == "s" and len(more.trials) == 5
    assert [t.params for t in more.trials[:2]] == before
    assert len({t.params["x"] for t in more.trials}) == 5  # the reseeded sampler drew anew
    assert api.tune(quadratic_nb, resume="s").trials == more.trials  # 5 done: nothing to run

    with pytest.raises(CellpipeError, match="started with direction 'minimize', not 'maximize'"):
        api.tune(quadratic_nb, resume="s", direction="maximize")
    with pytest.raises(CellpipeError, match="started with sampler 'tpe', not 'random'"):
        api.tune(quadratic_nb, resume="s", sampler="random")
    with pytest.raises(CellpipeError, match="keeps its space"):
        api.tune(quadratic_nb, resume="s", space={"x": "uniform(-1, 1)"})
    with pytest.raises(CellpipeError, match=r"already a study 's'.*--resume s"):
        api.tune(quadratic_nb, "loss", space=space, study="s")
    with pytest.raises(CellpipeError, match="no study 'z'"):
        api.tune(quadratic_nb, resume="z")


def test_parallel_trials_run_at_once_and_still_share_the_cached_upstream(quadratic_nb):
    study = api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=5,
                     parallel=2, seed=0, parameters={"pause": 0.4})

    assert [t.state for t in study.trials] == ["COMPLETE"] * 5
    assert sorted(statuses(study, "prepare")) == ["cached"] * 4 + ["succeeded"]
    runs = [t.run for t in study.trials]
    assert all(r.parameters["pause"] == 0.4 for r in runs)
    spans = sorted((r.data["started"], r.data["finished"]) for r in runs[1:])
    overlapping = [a for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    assert overlapping, f"no two trials ran at once: {spans}"
    # each run's record is whole: every step of every trial is in its own run
    assert all(set(r.steps) == {"prepare", "evaluate"} for r in runs)
    assert len({r.id for r in runs}) == 5


def test_the_study_reports_importances_and_writes_its_history_plot(model_nb):
    study = api.tune(model_nb, "accuracy", space=MODEL_SPACE, trials=4, seed=2)
    shares = study.importances()
    assert set(shares) == {"C", "max_depth"}
    assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-6)

    path = study.plot_history()
    assert path == model_nb.parent / ".cellpipe" / "tune" / study.name / "history.png"
    assert_real_png(path)
    reopened = api.open_study(study.name, model_nb.parent / ".cellpipe")
    assert reopened.trials == study.trials and reopened.best_value == study.best_value


def test_importances_need_two_completed_trials(quadratic_nb):
    study = api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=1)
    with pytest.raises(CellpipeError, match=r"at least 2 completed trials.*has 1"):
        study.importances()


def test_the_sampler_names_and_cmaes_run(quadratic_nb):
    assert api.SAMPLERS == ("tpe", "random", "grid", "cmaes")
    study = api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)",
                                                       "y": "int(0, 3)"},
                     trials=3, sampler="cmaes", seed=0)
    assert [t.state for t in study.trials] == ["COMPLETE"] * 3


def test_trials_are_numbered_per_study_in_one_storage(quadratic_nb):
    """Two studies share the root's SQLite file; `list_studies` tells them apart."""
    api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=2, study="one")
    api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=1, study="two")
    listed = {s.name: s for s in api.list_studies(quadratic_nb.parent / ".cellpipe")}
    assert set(listed) == {"one", "two"}
    assert (listed["one"].trials, listed["two"].trials) == (2, 1)
    assert listed["one"].complete == 2 and listed["one"].objective == "loss"
    assert listed["one"].best_value == api.open_study("one", quadratic_nb.parent /
                                                      ".cellpipe").best_value


def test_the_api_does_not_import_optuna_until_it_tunes():
    import subprocess
    import sys

    code = ("import sys, cellpipe, cellpipe.api; cellpipe.tune; "
            "print(sorted(m for m in ('optuna', 'sqlalchemy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def assert_real_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert pixels.std() > 0.05  # not one flat colour: axes, points and a line are drawn



def test_no_trial_starts_after_the_timeout(quadratic_nb):
    started = []
    study = api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=10,
                     timeout=1.5, parameters={"pause": 1.0},
                     on_trial=lambda s, t: started.append(t.number) if t.state == "RUNNING"
                     else None)
    assert 1 <= len(study.trials) <= 2, [t.duration for t in study.trials]
    assert started == [t.number for t in study.trials]
    assert all(t.state == "COMPLETE" for t in study.trials)
    assert api.tune(quadratic_nb, "loss", space={"x": "uniform(-3, 3)"}, trials=3,
                    timeout=0).trials == []


def test_a_resumed_study_keeps_its_fixed_parameters(quadratic_nb):
    api.tune(quadratic_nb, "loss", "minimize", {"x": "uniform(-3, 3)"}, trials=1,
             parameters={"y": 1}, study="fixed")
    with pytest.raises(CellpipeError, match=r"sets \{'y': 1\} in every trial, not \{'y': 2\}"):
        api.tune(quadratic_nb, resume="fixed", trials=2, parameters={"y": 2})
    resumed = api.tune(quadratic_nb, resume="fixed", trials=2)
    assert [t.run.parameters["y"] for t in resumed.trials] == [1, 1]


def test_study_names_are_safe_folder_names(tmp_path):
    nb = write_tune_notebook(tmp_path, name="My model (v2).ipynb")
    with pytest.raises(CellpipeError, match="cannot name a study"):
        api.tune(nb, "accuracy", space={"C": "choice(1.0)"}, study="../escape")
    study = api.tune(nb, "accuracy", space={"C": "choice(1.0)"})
    assert re.fullmatch(r"My-model-v2-+accuracy-\d{8}-\d{6}", study.name), study.name
    assert study.plot_history().parent == tmp_path / ".cellpipe" / "tune" / study.name
