"""The Katib target's compiler: a golden Experiment, Katib's own definitions, what Katib needs.

Golden files live in tests/golden/katib/; regenerate them on purpose with
``CELLPIPE_REGEN_GOLDEN=1 python -m pytest tests/targets/katib/test_katib_compile.py``.
Every Experiment compiled here is checked against Katib's swagger definitions, closed so
that a field Katib does not define fails (:mod:`tests.targets.katib.katib_schema`), and its
trial template against Argo's models, losing nothing.
"""

from __future__ import annotations

import json
import os
import re

import gjson
import nbformat
import pytest
import yaml
from hera.workflows import models as hera_models

from cellpipe import api
from cellpipe.core.space import SpaceError
from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.compile import to_yaml
from cellpipe.targets.cluster import cluster_settings
from cellpipe.targets.katib.compile import (
    FAILURE_CONDITION,
    METRICS_FILE,
    PRIMARY_LABEL,
    SUCCESS_CONDITION,
)
from cellpipe.targets.katib.target import KatibTarget
from tests.conftest import ROOT, SAMPLES, write_nb
from tests.targets.katib import katib_schema

GOLDEN = ROOT / "tests" / "golden" / "katib"
REGEN = os.environ.get("CELLPIPE_REGEN_GOLDEN") == "1"
TABULAR = SAMPLES / "tabular_tags.ipynb"
# in name order: a notebook's metadata keeps its keys sorted (a metadata space compiles alike)
SPACE = ["C=loguniform(1e-3, 1e2)", "learning_rate=uniform(0.01, 0.3)", "max_depth=int(2, 8)",
         "n_estimators=choice(50, 100, 200)"]
SEARCH = {"space": SPACE, "objective": "best_accuracy", "direction": "maximize",
          "trials": 20, "parallel": 4, "max_failed": 2, "sampler": "tpe"}


def image_map(spec):
    return {step.name: f"registry.local/ml/tabular-tags-{step.name}:0123456789abcdef"
            for step in spec.steps}


def compile_nb(path, search=None, metadata=None, *, carry_code=False, **cluster):
    """The Katib Document of a notebook, through the target as the api calls it."""
    spec = api.compile_spec(path)
    options = {**(SEARCH if search is None else search), "carry_code": carry_code,
               "notebook_metadata": metadata if metadata is not None
               else api.load_notebook(path).metadata}
    return KatibTarget().compile(spec, image_map(spec), cluster_settings(spec, **cluster),
                                 options)


def assert_valid(experiment):
    """Valid by Katib's definitions, its trial template by Argo's, and as YAML."""
    assert katib_schema.errors(experiment) == []
    workflow = experiment["spec"]["trialTemplate"]["trialSpec"]
    model = hera_models.Workflow.model_validate(workflow)
    assert model.model_dump(by_alias=True, exclude_none=True) == workflow
    assert yaml.safe_load(to_yaml(experiment)) == experiment


@pytest.fixture(scope="module")
def tabular():
    return compile_nb(TABULAR)


def templates(experiment):
    return experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["templates"]


def arguments(experiment):
    spec = experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]
    return {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}


# --- golden file, Katib's definitions, Argo's models -----------------------------------------

def test_experiment_matches_the_golden_file(tabular):
    golden = GOLDEN / "tabular_tags.experiment.yaml"
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(tabular.text, encoding="utf-8")
    assert golden.exists(), f"no golden file; run with CELLPIPE_REGEN_GOLDEN=1 to create {golden}"
    assert tabular.text == golden.read_text(encoding="utf-8"), (
        f"the Experiment compiles differently from {golden.name}; if the change is intended, "
        "regenerate with CELLPIPE_REGEN_GOLDEN=1")


def test_golden_file_is_valid_by_katibs_definitions_and_argos_models():
    experiment = yaml.safe_load((GOLDEN / "tabular_tags.experiment.yaml").read_text())
    assert_valid(experiment)


def test_the_validator_flags_what_katib_does_not_define(tabular):
    experiment = json.loads(json.dumps(tabular.data))
    experiment["spec"]["parallelTrialCounts"] = 3  # a typo
    experiment["spec"]["parameters"][0]["feasibleSpace"]["distrib"] = "logUniform"
    experiment["spec"]["maxTrialCount"] = "20"
    experiment["metadata"]["generate_name"] = "x-"
    found = katib_schema.errors(experiment)
    assert any("parallelTrialCounts" in line for line in found)
    assert any(line.startswith("spec.parameters.0.feasibleSpace") and "distrib" in line
               for line in found)
    assert any(line.startswith("spec.maxTrialCount") for line in found)
    assert any(line.startswith("metadata") and "generate_name" in line for line in found)


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "cmaes", "bayesianoptimization"])
def test_every_algorithm_maps_to_katibs_name_and_validates(sampler):
    space = (["C=choice(0.1, 1.0, 10.0)", "max_depth=int(2, 8, 2)"] if sampler == "grid"
             else SPACE)
    document = compile_nb(TABULAR, {**SEARCH, "space": space, "sampler": sampler})
    assert document.data["spec"]["algorithm"] == {"algorithmName": sampler}
    assert_valid(document.data)


def test_compiling_is_deterministic_and_carried_code_validates(tmp_path):
    assert compile_nb(TABULAR).text == compile_nb(TABULAR).text
    carried = compile_nb(TABULAR, carry_code=True)
    assert_valid(carried.data)
    storage = compile_nb(tabular_with(tmp_path, {"cluster": {
        "storage": "s3://ml-bucket/cellpipe", "storage_secret": {"secret": "s3"}}}))
    assert_valid(storage.data)
    command = " ".join(" ".join(t["container"]["command"]) for t in templates(storage.data)
                       if "container" in t)
    assert "--store s3://ml-bucket/cellpipe/{{workflow.name}}" in command  # each trial's own
    assert storage.store is None


# --- what Katib needs of a Workflow trial ----------------------------------------------------

def test_objective_budget_and_collector(tabular):
    spec = tabular.data["spec"]
    assert spec["objective"] == {"type": "maximize", "objectiveMetricName": "best_accuracy",
                                 "additionalMetricNames": ["best_f1", "best_roc_auc"]}
    assert (spec["maxTrialCount"], spec["parallelTrialCount"],
            spec["maxFailedTrialCount"]) == (20, 4, 2)
    assert spec["metricsCollectorSpec"] == {
        "collector": {"kind": "File"},
        "source": {"fileSystemPath": {"kind": "File", "path": METRICS_FILE, "format": "TEXT"}}}
    assert METRICS_FILE.startswith("/")  # Katib's webhook wants an absolute path


def test_feasible_spaces(tabular):
    by_name = {p["name"]: p for p in tabular.data["spec"]["parameters"]}
    assert by_name["C"] == {"name": "C", "parameterType": "double", "feasibleSpace": {
        "min": "0.001", "max": "100.0", "distribution": "logUniform"}}
    assert by_name["learning_rate"]["feasibleSpace"] == {"min": "0.01", "max": "0.3"}
    assert by_name["max_depth"] == {"name": "max_depth", "parameterType": "int",
                                    "feasibleSpace": {"min": "2", "max": "8", "step": "1"}}
    assert by_name["n_estimators"] == {"name": "n_estimators", "parameterType": "categorical",
                                       "feasibleSpace": {"list": ["50", "100", "200"]}}


def test_typed_choices_and_log_ints_become_the_text_the_step_reads(tmp_path):
    path = write_nb(tmp_path, ("parameters", "kernel = 'rbf'\nscale = True\nwidth = 16\n"
                                             "extra = None"),
                    ("step:fit", "score = len(kernel) + width + int(scale)"),
                    ("metrics", "score"))
    document = compile_nb(path, {"space": ["kernel=choice(rbf, linear)",
                                           "scale=choice(True, False)", "width=logint(4, 256)",
                                           "extra=choice(None, 1)"],
                                 "objective": "score", "direction": "minimize"})
    by_name = {p["name"]: p for p in document.data["spec"]["parameters"]}
    assert by_name["kernel"]["feasibleSpace"] == {"list": ["rbf", "linear"]}
    assert by_name["scale"]["feasibleSpace"] == {"list": ["true", "false"]}
    assert by_name["extra"]["feasibleSpace"] == {"list": ["null", "1"]}
    assert by_name["width"] == {"name": "width", "parameterType": "int", "feasibleSpace": {
        "min": "4", "max": "256", "distribution": "logUniform"}}
    spec = api.compile_spec(path)
    for text, value in (("true", True), ("false", False), ("rbf", "rbf"), ("null", None)):
        name = {"true": "scale", "false": "scale", "rbf": "kernel", "null": "extra"}[text]
        assert api.convert_parameter(spec, name, text) == value
    assert_valid(document.data)


def test_the_trial_template_is_the_workflow_without_a_name(tabular):
    workflow = tabular.data["spec"]["trialTemplate"]["trialSpec"]
    assert workflow["apiVersion"] == "argoproj.io/v1alpha1" and workflow["kind"] == "Workflow"
    assert set(workflow["metadata"]) == {"labels"}  # Katib names it after the trial


def test_trial_parameters_and_placeholders_match_both_ways(tabular):
    """Katib's webhook: each trialParameter appears in the template, and nothing else does."""
    template = tabular.data["spec"]["trialTemplate"]
    declared = {p["name"] for p in template["trialParameters"]}
    assert {p["reference"] for p in template["trialParameters"]} == {
        p["name"] for p in tabular.data["spec"]["parameters"]}
    text = json.dumps(template["trialSpec"])
    assert set(re.findall(r"\$\{trialParameters\.(.+?)\}", text)) == declared
    values = arguments(tabular.data)
    assert {name: values[name] for name in declared} == {
        name: f"${{trialParameters.{name}}}" for name in declared}
    assert values["seed"] == "42"  # untuned parameters keep their defaults


def test_only_the_objectives_step_is_the_primary_pod_and_writes_the_metrics_file(tabular):
    template = tabular.data["spec"]["trialTemplate"]
    assert template["primaryContainerName"] == "main"
    assert template["primaryPodLabels"] == {PRIMARY_LABEL: "true"}
    labelled = [t for t in templates(tabular.data)
                if (t.get("metadata") or {}).get("labels", {}).get(PRIMARY_LABEL) == "true"]
    assert [t["name"] for t in labelled] == ["evaluate"]
    command = labelled[0]["container"]["command"]
    assert command[-2:] == ["--metrics-file", METRICS_FILE]
    others = [t for t in templates(tabular.data) if "container" in t and t not in labelled]
    assert others and all("--metrics-file" not in t["container"]["command"] for t in others)


def test_a_fixed_value_is_every_trials_argument():
    document = compile_nb(TABULAR, {**SEARCH, "space": [*SPACE, "seed=7", "test_size=0.3"]})
    values = arguments(document.data)
    assert (values["seed"], values["test_size"]) == ("7", "0.3")
    assert {p["name"] for p in document.data["spec"]["parameters"]} == {
        "C", "learning_rate", "max_depth", "n_estimators"}


def tabular_with(tmp_path, cellpipe_metadata):
    nb = nbformat.read(TABULAR, as_version=4)
    nb.metadata["cellpipe"] = cellpipe_metadata
    path = tmp_path / "tabular_tags.ipynb"
    nbformat.write(nb, path)
    return path


def test_the_notebooks_tune_metadata_gives_the_defaults(tmp_path, tabular):
    tune = {"objective": "best_accuracy", "direction": "maximize",
            "space": {"C": "loguniform(1e-3, 1e2)", "max_depth": "int(2, 8)",
                      "n_estimators": [50, 100, 200], "learning_rate": "uniform(0.01, 0.3)"},
            "trials": 20, "parallel": 4, "sampler": "tpe", "seed": 3}
    path = tabular_with(tmp_path, {"tune": tune})
    from_metadata = compile_nb(path, {"max_failed": 2})
    assert from_metadata.data["spec"] == tabular.data["spec"]
    assert any("cellpipe.tune.seed is not used" in note for note in from_metadata.notes)
    # the command line wins over the metadata, and its -p replaces the metadata's space
    given = compile_nb(path, {"space": ["C=uniform(0.5, 2)"], "direction": "minimize",
                              "trials": 5, "sampler": "random"})
    spec = given.data["spec"]
    assert [p["name"] for p in spec["parameters"]] == ["C"]
    assert (spec["objective"]["type"], spec["maxTrialCount"], spec["parallelTrialCount"],
            spec["algorithm"]["algorithmName"]) == ("minimize", 5, 4, "random")


def test_name_is_generated_short_and_starts_with_a_letter(tmp_path):
    nb = nbformat.read(TABULAR, as_version=4)
    nb.metadata["kubeflow_notebook"] = {"pipeline_name": "2024 " + "very long name " * 5}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    name = compile_nb(path).data["metadata"]["generateName"]
    assert re.fullmatch(r"[a-z][-a-z0-9]*-", name) and len(name) <= 36, name


def test_metrics_of_other_steps_are_named_in_a_note(tmp_path):
    path = write_nb(tmp_path, ("parameters", "a = 1.0"), ("step:one", "x = a * 2"),
                    ("metrics", "x"), ("step:two", "y = x + 1"), ("metrics", "y"))
    document = compile_nb(path, {"space": ["a=uniform(0, 1)"], "objective": "y",
                                 "direction": "minimize"})
    assert "additionalMetricNames" not in document.data["spec"]["objective"]
    assert any("only step 'two'" in note and "x stay" in note for note in document.notes)
    labelled = [t["name"] for t in templates(document.data)
                if (t.get("metadata") or {}).get("labels", {}).get(PRIMARY_LABEL)]
    assert labelled == ["two"]


# --- success and failure, as Katib reads them (GJSON over the Workflow) ----------------------

@pytest.mark.parametrize(("status", "outcome"), [
    ({}, None), ({"phase": "Pending"}, None), ({"phase": "Running"}, None),
    ({"phase": "Succeeded"}, "success"), ({"phase": "Failed"}, "failure"),
    ({"phase": "Error"}, "failure"),
])
def test_success_and_failure_conditions_read_the_workflow_phase(tabular, status, outcome):
    """gjson-py evaluates the conditions as Katib's trial controller does with Go's gjson:
    a condition holds when its result is an object or a non-empty array."""
    template = tabular.data["spec"]["trialTemplate"]
    assert (template["successCondition"], template["failureCondition"]) == (
        SUCCESS_CONDITION, FAILURE_CONDITION)
    workflow = {**template["trialSpec"], "status": {**status, "nodes": {}}}

    def holds(condition):
        found = gjson.get(workflow, condition)
        return isinstance(found, dict) or (isinstance(found, list) and len(found) > 0)

    assert holds(SUCCESS_CONDITION) == (outcome == "success")
    assert holds(FAILURE_CONDITION) == (outcome == "failure")


# --- errors, before anything is compiled -----------------------------------------------------

@pytest.mark.parametrize(("change", "error", "message"), [
    ({"objective": "best_acuracy"}, CellpipeError, "did you mean 'best_accuracy'"),
    ({"objective": None}, CellpipeError, "best_accuracy, best_f1, best_roc_auc"),
    ({"direction": None}, CellpipeError, "--maximize or --minimize"),
    ({"sampler": "gird"}, CellpipeError, "did you mean 'grid'"),
    ({"sampler": "hyperband"}, CellpipeError, "tpe, random, grid, cmaes, bayesianoptimization"),
    ({"space": ["C=logunform(1e-3, 1)"]}, SpaceError, "did you mean 'loguniform'"),
    ({"space": ["depth=int(2, 8)"]}, SpaceError, "no parameter 'depth'"),
    ({"space": ["max_depth=uniform(2, 8)"]}, SpaceError, "is an int"),
    ({"sampler": "grid"}, SpaceError, "continuous range"),
    ({"space": ["C=loguniform(1e-3, 1)", "C=0.5"]}, SpaceError, "both searched and fixed"),
    ({"trials": 3, "parallel": 4}, CellpipeError, "more than the 3 trials"),
    ({"trials": 0}, CellpipeError, "at least 1"),
    ({"max_failed": 30}, CellpipeError, "--max-failed 30"),
])
def test_search_errors_say_what_and_how_to_fix(change, error, message):
    with pytest.raises(error) as raised:
        compile_nb(TABULAR, {**SEARCH, **change})
    assert message in str(raised.value)


def test_a_value_the_reporting_step_reads_must_survive_katibs_sh_c(tmp_path):
    """Katib runs the primary container's command words joined by spaces in ``sh -c``."""
    path = write_nb(tmp_path, ("parameters", "a = 1.0\nlabel = 'two words'"),
                    ("step:fit", "score = a * len(label)"), ("metrics", "score"))
    search = {"space": ["a=uniform(0, 1)"], "objective": "score", "direction": "maximize"}
    with pytest.raises(CellpipeError) as raised:
        compile_nb(path, search)
    assert raised.value.variable == "label" and "sh -c" in raised.value.message
    with pytest.raises(CellpipeError):
        compile_nb(path, {**search, "space": ["a=uniform(0, 1)", "label=choice(x, 'y z')"]})
    assert_valid(compile_nb(path, {**search, "space": ["a=uniform(0, 1)", "label=one"]}).data)
