"""The Argo Workflow compiler: golden manifests, Argo's schema, and what each setting becomes.

Golden files live in tests/golden/argo/; regenerate them on purpose with
``CELLPIPE_REGEN_GOLDEN=1 python -m pytest tests/targets/argo/test_compile.py``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import nbformat
import pytest
import yaml
from hera.shared import global_config
from hera.workflows import models as hera_models

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.compile import compile_argo, parameter_text, to_yaml
from cellpipe.targets.cluster import cluster_settings
from tests.conftest import ROOT, SAMPLES, write_nb

GOLDEN = ROOT / "tests" / "golden" / "argo"
REGEN = os.environ.get("CELLPIPE_REGEN_GOLDEN") == "1"

FULL_CLUSTER = {
    "namespace": "ml",
    "service_account": "pipeline-runner",
    "labels": {"team": "fraud"},
    "annotations": {"owner": "ana"},
    "node_selector": {"pool": "cpu"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml",
                     "effect": "NoSchedule"}],
    "secrets": [{"env": "API_TOKEN", "secret": "api-credentials", "key": "token"}],
    "volume": {"size": "10Gi", "storage_class": "standard", "access_mode": "ReadWriteMany"},
    "steps": {"train-forest": {
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "secrets": [{"env": "WANDB_API_KEY", "secret": "wandb", "key": "api-key"}],
    }},
}
S3_CLUSTER = {
    "storage": "s3://ml-bucket/cellpipe",
    "storage_secret": {"secret": "s3-credentials", "access_key": "accesskey",
                       "secret_key": "secretkey"},
    "storage_endpoint": "http://minio.ml:9000",
}
FOREST_TAGS = ["cpu:2", "memory:4Gi", "gpu:1", "retries:3", "timeout:3600"]


def image_map(spec):
    return {step.name: f"registry.local/ml/tabular-tags-{step.name}:0123456789abcdef"
            for step in spec.steps}


def with_step(spec, index, **changes):
    """The spec with its step ``index`` changed (the spec's objects are frozen)."""
    steps = list(spec.steps)
    steps[index] = dataclasses.replace(steps[index], **changes)
    return dataclasses.replace(spec, steps=tuple(steps))


def tabular_copy(tmp_path, cluster, forest_tags=()):
    """tabular_tags.ipynb with cellpipe.cluster metadata and extra tags on train-forest."""
    nb = nbformat.read(SAMPLES / "tabular_tags.ipynb", as_version=4)
    nb.metadata["cellpipe"] = {"cluster": cluster}
    for cell in nb.cells:
        if "step:train-forest" in cell.metadata.get("tags", []):
            cell.metadata["tags"] = [*cell.metadata["tags"], *forest_tags]
    path = tmp_path / "tabular_tags.ipynb"
    nbformat.write(nb, path)
    return path


def compile_path(path, **overrides):
    spec = api.compile_spec(path)
    return spec, compile_argo(spec, image_map(spec), cluster_settings(spec, **overrides))


@pytest.fixture
def default_case():
    return compile_path(SAMPLES / "tabular_tags.ipynb")


@pytest.fixture
def full_case(tmp_path):
    return compile_path(tabular_copy(tmp_path, FULL_CLUSTER, FOREST_TAGS))


@pytest.fixture
def s3_case(tmp_path):
    return compile_path(tabular_copy(tmp_path, S3_CLUSTER))


def templates_by_name(manifest):
    return {template["name"]: template for template in manifest["spec"]["templates"]}


def tasks_by_name(manifest):
    return {task["name"]: task for task in templates_by_name(manifest)["main"]["dag"]["tasks"]}


# --- golden files, determinism, Argo's schema -----------------------------------------------

@pytest.mark.parametrize("case", ["default", "full", "s3"])
def test_manifests_match_golden_files(case, request):
    _, manifest = request.getfixturevalue(f"{case}_case")
    text = to_yaml(manifest)
    golden = GOLDEN / f"tabular_tags.{case}.workflow.yaml"
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file; run with CELLPIPE_REGEN_GOLDEN=1 to create {golden}"
    assert text == golden.read_text(encoding="utf-8"), (
        f"the Workflow compiles differently from {golden.name}; if the change is intended, "
        "regenerate with CELLPIPE_REGEN_GOLDEN=1"
    )


def test_yaml_is_byte_identical_across_processes_and_hash_seeds():
    script = (
        "from cellpipe import api\n"
        "from cellpipe.targets.argo.compile import compile_argo, to_yaml\n"
        "from cellpipe.targets.cluster import cluster_settings\n"
        "spec = api.compile_spec('sample_notebooks/tabular_tags.ipynb')\n"
        "images = {s.name: f\"registry.local/ml/tabular-tags-{s.name}:0123456789abcdef\"\n"
        "          for s in spec.steps}\n"
        "print(to_yaml(compile_argo(spec, images, cluster_settings(spec))), end='')\n"
    )
    outputs = [
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                       cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "12345")
    ]
    assert outputs[0] == outputs[1]
    assert outputs[0].decode("utf-8") == (GOLDEN / "tabular_tags.default.workflow.yaml").read_text(
        encoding="utf-8")


@pytest.mark.parametrize("case", ["default", "full", "s3"])
def test_manifests_validate_against_argos_schema_losing_nothing(case, request):
    _, manifest = request.getfixturevalue(f"{case}_case")
    model = hera_models.Workflow.model_validate(manifest)
    # Argo's models ignore unknown fields; a lossless round trip proves there are none.
    assert model.model_dump(by_alias=True, exclude_none=True) == manifest
    assert yaml.safe_load(to_yaml(manifest)) == manifest


def test_hera_global_config_does_not_leak_into_the_manifest(monkeypatch):
    monkeypatch.setattr(global_config, "namespace", "somewhere-else")
    monkeypatch.setattr(global_config, "service_account_name", "someone")
    _, manifest = compile_path(SAMPLES / "tabular_tags.ipynb")
    assert "namespace" not in manifest["metadata"]
    assert "serviceAccountName" not in manifest["spec"]


# --- semantics ------------------------------------------------------------------------------

def test_workflow_shape(default_case):
    spec, manifest = default_case
    assert manifest["apiVersion"] == "argoproj.io/v1alpha1"
    assert manifest["kind"] == "Workflow"
    assert manifest["metadata"] == {"generateName": "tabular-tags-",
                                    "labels": {"cellpipe.dev/pipeline": "tabular-tags"}}
    assert manifest["spec"]["entrypoint"] == "main"
    assert set(templates_by_name(manifest)) == {"main"} | {s.name for s in spec.steps}


def test_dag_dependencies_are_the_specs_upstream(default_case):
    spec, manifest = default_case
    tasks = tasks_by_name(manifest)
    assert list(tasks) == [step.name for step in spec.steps]
    for step in spec.steps:
        assert tasks[step.name].get("dependencies", []) == list(step.upstream)
        assert tasks[step.name]["template"] == step.name
    assert tasks["evaluate"]["dependencies"] == [
        "split", "train-logreg", "train-forest", "train-boosting"]


def test_a_parameter_flows_from_the_arguments_through_the_task_into_the_command(default_case):
    spec, manifest = default_case
    arguments = {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]}
    assert arguments == {p.name: parameter_text(p.default_copy) for p in spec.parameters}
    assert arguments["C"] == "1.0"
    assert arguments["log_columns"] == '["mean area", "worst area", "area error"]'
    task = tasks_by_name(manifest)["train-logreg"]
    assert task["arguments"]["parameters"] == [
        {"name": "C", "value": "{{workflow.parameters.C}}"}]
    template = templates_by_name(manifest)["train-logreg"]
    assert template["inputs"]["parameters"] == [{"name": "C"}]
    command = template["container"]["command"]
    assert command[command.index("--param") + 1] == "C={{inputs.parameters.C}}"
    # only the parameters a step reads reach it
    assert "inputs" not in templates_by_name(manifest)["clean"]
    assert "arguments" not in tasks_by_name(manifest)["clean"]


def test_each_container_runs_the_step_runtime_in_its_image_on_the_workflow_volume(default_case):
    _, manifest = default_case
    container = templates_by_name(manifest)["split"]["container"]
    assert container["image"] == "registry.local/ml/tabular-tags-split:0123456789abcdef"
    assert container["command"] == [
        "python", "-m", "cellpipe.runtime", "--spec", "/opt/cellpipe/step/spec.json",
        "--step", "split", "--store", "/cellpipe/run/artifacts",
        "--step-dir", "/cellpipe/run/steps/split", "--outputs-dir", "/tmp/cellpipe/outputs",
        "--param", "seed={{inputs.parameters.seed}}",
        "--param", "test_size={{inputs.parameters.test_size}}",
    ]
    assert container["volumeMounts"] == [{"name": "cellpipe-data", "mountPath": "/cellpipe/run"}]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert manifest["spec"]["volumeClaimTemplates"] == [{
        "metadata": {"name": "cellpipe-data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }]
    pod = manifest["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == 10001


def test_metrics_are_the_reporting_steps_output_parameters(default_case):
    spec, manifest = default_case
    templates = templates_by_name(manifest)
    outputs = templates["evaluate"]["outputs"]
    assert [p["name"] for p in outputs["parameters"]] == [m.name for m in spec.metrics]
    assert outputs["parameters"][1] == {
        "name": "best_f1", "globalName": "best_f1",
        "valueFrom": {"path": "/tmp/cellpipe/outputs/best_f1"}}
    # no artifact repository and no object store: no artifact (Argo would fail the step)
    assert "artifacts" not in outputs
    assert all("outputs" not in t for name, t in templates.items() if name != "evaluate")


def test_full_cluster_metadata_reaches_the_manifest(full_case):
    _, manifest = full_case
    assert manifest["metadata"]["namespace"] == "ml"
    assert manifest["metadata"]["labels"] == {"cellpipe.dev/pipeline": "tabular-tags",
                                              "team": "fraud"}
    assert manifest["metadata"]["annotations"] == {"owner": "ana"}
    assert manifest["spec"]["serviceAccountName"] == "pipeline-runner"
    claim = manifest["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim == {"accessModes": ["ReadWriteMany"], "storageClassName": "standard",
                     "resources": {"requests": {"storage": "10Gi"}}}
    templates = templates_by_name(manifest)
    forest, load = templates["train-forest"], templates["load"]
    assert forest["retryStrategy"] == {"limit": 3, "retryPolicy": "OnFailure"}
    assert forest["activeDeadlineSeconds"] == 3600
    assert forest["container"]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}}
    assert forest["nodeSelector"] == {"pool": "gpu"}
    assert load["nodeSelector"] == {"pool": "cpu"}
    assert load["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    assert forest["tolerations"] == [*load["tolerations"], {
        "key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    token = {"name": "API_TOKEN",
             "valueFrom": {"secretKeyRef": {"name": "api-credentials", "key": "token"}}}
    assert load["container"]["env"] == [token]
    wandb = {"name": "WANDB_API_KEY",
             "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}}}
    assert forest["container"]["env"] == [token, wandb]
    for name in ("retryStrategy", "activeDeadlineSeconds"):
        assert name not in load


def test_s3_storage_replaces_the_volume(s3_case):
    _, manifest = s3_case
    spec = manifest["spec"]
    assert "volumeClaimTemplates" not in spec
    assert spec["volumes"] == [{"name": "cellpipe-run", "emptyDir": {}}]
    container = templates_by_name(manifest)["load"]["container"]
    command = container["command"]
    assert command[command.index("--store") + 1] == "s3://ml-bucket/cellpipe/{{workflow.name}}"
    assert command[command.index("--step-dir") + 1] == "/cellpipe/run/steps/load"
    assert container["volumeMounts"] == [{"name": "cellpipe-run", "mountPath": "/cellpipe/run"}]
    assert container["env"] == [
        {"name": "AWS_ACCESS_KEY_ID",
         "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": "accesskey"}}},
        {"name": "AWS_SECRET_ACCESS_KEY",
         "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": "secretkey"}}},
        {"name": "AWS_ENDPOINT_URL", "value": "http://minio.ml:9000"},
    ]


@pytest.mark.parametrize("case", ["full", "s3"])
def test_no_secret_value_reaches_the_yaml(case, request):
    spec, manifest = request.getfixturevalue(f"{case}_case")
    entries = [entry for template in manifest["spec"]["templates"]
               for entry in template.get("container", {}).get("env", [])]
    inline = [entry for entry in entries if "value" in entry]
    endpoint = {"name": "AWS_ENDPOINT_URL", "value": "http://minio.ml:9000"}
    assert inline == ([endpoint] * len(spec.steps) if case == "s3" else [])
    assert entries and all(set(entry["valueFrom"]) == {"secretKeyRef"}
                           for entry in entries if entry not in inline)
    parsed = yaml.safe_load(to_yaml(manifest))
    assert parsed == manifest


def test_parameter_text_for_every_type(tmp_path):
    path = write_nb(tmp_path, ("parameters", "flag = True\noff = False\nopts = {'a': [1, 2]}\n"
                                             "name = 'x y'\nnothing = None\nn = 3"),
                    ("step:a", "out = (flag, off, opts, name, nothing, n)"))
    spec = api.compile_spec(path)
    manifest = compile_argo(spec, {"a": "img:1"}, cluster_settings(spec))
    assert {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]} == {
        "flag": "true", "off": "false", "opts": '{"a": [1, 2]}', "name": "x y",
        "nothing": "null", "n": "3"}


def test_small_cpu_and_memory_tags_become_canonical_quantities(tmp_path):
    path = write_nb(tmp_path, (["step:a", "cpu:0.5", "memory:512Mi"], "x = 1"))
    spec = api.compile_spec(path)
    manifest = compile_argo(spec, {"a": "img:1"}, cluster_settings(spec))
    resources = templates_by_name(manifest)["a"]["container"]["resources"]
    assert resources == {"requests": {"cpu": "500m", "memory": "512Mi"},
                         "limits": {"cpu": "500m", "memory": "512Mi"}}


# --- errors ---------------------------------------------------------------------------------

def test_a_step_without_an_image_is_named_with_the_fix(default_case):
    spec, _ = default_case
    images = image_map(spec)
    del images["train-forest"]
    with pytest.raises(CellpipeError, match="no container image for step 'train-forest'") as caught:
        compile_argo(spec, images, cluster_settings(spec))
    assert caught.value.step == "train-forest"
    assert "cellpipe build NOTEBOOK --registry" in caught.value.hint
    assert "image map" in caught.value.hint


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("memory", "2GB", "memory:2GB is not a Kubernetes quantity"),
    ("cpu", "lots", "cpu:lots is not a Kubernetes quantity"),
    ("gpu", -1, "gpu:-1 is not a whole number"),
    ("retries", 1.5, "retries:1.5 is not a whole number"),
    ("timeout", 0, "timeout:0 is not a whole number of at least 1"),
])
def test_a_bad_step_setting_names_the_step_and_the_annotation(default_case, setting, value,
                                                              words):
    spec, _ = default_case
    step = spec.steps[4]
    spec = with_step(spec, 4, settings=dataclasses.replace(step.settings, **{setting: value}))
    with pytest.raises(CellpipeError, match=words) as caught:
        compile_argo(spec, image_map(spec), cluster_settings(spec))
    assert caught.value.step == "train-logreg"
    assert str(caught.value).startswith("step 'train-logreg': ")


def test_steps_that_share_a_kubernetes_name_are_refused(default_case):
    spec, _ = default_case
    # the plan refuses this too; compile must not rely on that
    spec = with_step(spec, 5, name="train_logreg")
    with pytest.raises(CellpipeError, match="'train-logreg' and 'train_logreg' both become"):
        compile_argo(spec, {s.name: "img:1" for s in spec.steps}, cluster_settings(spec))


def test_a_step_called_main_does_not_clash_with_the_dag(tmp_path):
    path = write_nb(tmp_path, ("step:main", "x = 1"), ("step:report", "y = x"))
    spec = api.compile_spec(path)
    manifest = compile_argo(spec, {"main": "img:1", "report": "img:2"}, cluster_settings(spec))
    tasks = tasks_by_name(manifest)
    assert tasks["main-step"]["template"] == "main-step"
    assert tasks["report"]["dependencies"] == ["main-step"]
    assert templates_by_name(manifest)["main-step"]["container"]["command"][6] == "main"


def test_a_secret_env_clashing_with_the_store_credentials_is_refused(tmp_path):
    cluster = {**S3_CLUSTER, "secrets": [{"env": "AWS_ACCESS_KEY_ID", "secret": "s", "key": "k"}]}
    spec = api.compile_spec(tabular_copy(tmp_path, cluster))
    with pytest.raises(CellpipeError, match="AWS_ACCESS_KEY_ID clashes") as caught:
        compile_argo(spec, image_map(spec), cluster_settings(spec))
    assert caught.value.step == "load"


def test_the_pipeline_description_is_shown_by_the_argo_ui(default_case):
    spec, _ = default_case
    spec = dataclasses.replace(
        spec, pipeline=dataclasses.replace(spec.pipeline, description="Breast cancer models"))
    manifest = compile_argo(spec, image_map(spec), cluster_settings(spec))
    assert manifest["metadata"]["annotations"] == {
        "workflows.argoproj.io/description": "Breast cancer models"}
