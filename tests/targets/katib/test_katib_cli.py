"""`cellpipe compile --target katib` from the command line: the search options and their errors."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from cellpipe import api
from cellpipe.cli.main import main
from cellpipe.errors import CellpipeError
from tests.conftest import SAMPLES
from tests.targets.katib import katib_schema

TABULAR = SAMPLES / "tabular_tags.ipynb"


@pytest.fixture
def images(tmp_path):
    spec = api.compile_spec(TABULAR)
    path = tmp_path / "images.json"
    path.write_text(json.dumps({s.name: f"reg.local/ml/{s.name}:1" for s in spec.steps}))
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_compile_writes_the_experiment_the_options_describe(tmp_path, images):
    out = tmp_path / "experiment.yaml"
    done = invoke("compile", TABULAR, "--target", "katib", "--images", images,
                  "-p", "C=loguniform(1e-4, 1e-1)", "-p", "max_depth=int(2, 6, 2)",
                  "-p", "seed=3", "--objective", "best_f1", "--minimize", "--trials", "8",
                  "--parallel", "2", "--max-failed", "1", "--sampler", "cmaes", "-o", out)
    assert done.exit_code == 0, done.output
    experiment = yaml.safe_load(out.read_text())
    assert katib_schema.errors(experiment) == []
    spec = experiment["spec"]
    assert spec["objective"]["objectiveMetricName"] == "best_f1"
    assert spec["objective"]["type"] == "minimize"
    assert (spec["maxTrialCount"], spec["parallelTrialCount"], spec["maxFailedTrialCount"],
            spec["algorithm"]["algorithmName"]) == (8, 2, 1, "cmaes")
    assert [p["name"] for p in spec["parameters"]] == ["C", "max_depth"]
    assert spec["parameters"][1]["feasibleSpace"]["step"] == "2"
    workflow = spec["trialTemplate"]["trialSpec"]["spec"]
    assert {"name": "seed", "value": "3"} in workflow["arguments"]["parameters"]


@pytest.mark.parametrize(("args", "message"), [
    (["--objective", "best_acc", "--maximize"], "did you mean 'best_accuracy'"),
    (["--objective", "best_accuracy", "--maximize", "--sampler", "tpee"], "did you mean 'tpe'"),
    (["--objective", "best_accuracy"], "give --maximize or --minimize"),
])
def test_compile_errors_are_one_line_with_the_fix(images, args, message):
    done = invoke("compile", TABULAR, "--target", "katib", "--images", images,
                  "-p", "C=loguniform(1e-4, 1e-1)", *args)
    assert done.exit_code != 0
    assert message in done.output and "Traceback" not in done.output


def test_search_options_are_only_for_a_target_that_searches(images):
    done = invoke("compile", TABULAR, "--target", "argo", "--images", images,
                  "--objective", "best_accuracy")
    assert done.exit_code == 2 and "only for a target that searches" in done.output
    done = invoke("compile", TABULAR, "--target", "argo", "--images", images, "-p", "C=0.5")
    assert done.exit_code == 2 and "-p on compile is a search space" in done.output
    done = invoke("compile", TABULAR, "--maximize")
    assert done.exit_code == 2 and "--maximize/--minimize: only for" in done.output


def test_logs_name_a_trial_and_its_step():
    assert api.target_searches("katib") and not api.target_searches("argo")
    with pytest.raises(CellpipeError) as raised:
        api.target_logs("katib", "tabular-tags-k2x7q", "evaluate")
    assert "TRIAL/evaluate" in (raised.value.hint or "")
