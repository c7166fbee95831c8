"""Argo schedules: a CronWorkflow around the compiled Workflow, created, listed and deleted.

No Kubernetes API server can run here: the API-level tests below run against kmock's
in-memory Kubernetes API over real HTTP (see conftest.py), reached through a kubeconfig
as a user's cluster would be, with the real ``kubernetes`` client. The manifest is checked
against Argo's schema with Hera's models and against a golden file in tests/golden/argo/
(regenerate on purpose with ``CELLPIPE_REGEN_GOLDEN=1``).
"""

from __future__ import annotations

import os

import pytest
import yaml
from hera.workflows import models as hera_models

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.compile import PIPELINE_LABEL, compile_argo, to_yaml
from cellpipe.targets.argo.cron import MAX_NAME, cron_workflow, schedule_of
from cellpipe.targets.argo.cron_client import CronWorkflowClient
from cellpipe.targets.base import ScheduleOptions
from cellpipe.targets.cluster import cluster_settings
from tests.conftest import ROOT, SAMPLES, write_nb
from tests.targets.argo.conftest import CRON_WORKFLOWS, WORKFLOWS, kubeconfig

GOLDEN = ROOT / "tests" / "golden" / "argo"
REGEN = os.environ.get("CELLPIPE_REGEN_GOLDEN") == "1"
CELLS = [
    ("parameters", "n = 5\nlabel = 'x'"),
    ("step:make", "values = list(range(n))"),
    ("step:total", "total = sum(values)"),
    ("metrics", "total"),
]
IMAGES = {"make": "registry.local/nb-make:1", "total": "registry.local/nb-total:1"}


def tabular_workflow():
    spec = api.compile_spec(SAMPLES / "tabular_tags.ipynb")
    images = {s.name: f"registry.local/ml/tabular-tags-{s.name}:0123456789abcdef"
              for s in spec.steps}
    return compile_argo(spec, images, cluster_settings(spec, namespace="ml"))


# --- the manifest (pure) --------------------------------------------------------------------

def test_the_cron_workflow_matches_its_golden_file():
    """Pure compile, no cluster: the CronWorkflow YAML is stable."""
    workflow = tabular_workflow()
    manifest = cron_workflow(workflow, "0 3 * * *", parameters={"test_size": 0.3, "seed": 7},
                             options=ScheduleOptions(timezone="Europe/Berlin"))
    text = to_yaml(manifest)
    golden = GOLDEN / "tabular_tags.nightly.cronworkflow.yaml"
    if REGEN:
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file; run with CELLPIPE_REGEN_GOLDEN=1 to create {golden}"
    assert text == golden.read_text(encoding="utf-8"), (
        f"the CronWorkflow compiles differently from {golden.name}; if the change is intended, "
        "regenerate with CELLPIPE_REGEN_GOLDEN=1")


def test_the_cron_workflow_is_valid_for_argos_schema_losing_nothing():
    """Hera's models of Argo's schema read the manifest back without dropping a field."""
    workflow = tabular_workflow()
    manifest = cron_workflow(workflow, "*/30 6-18 * * MON-FRI", parameters={"C": 2.0},
                             options=ScheduleOptions(name="daytime", timezone="UTC",
                                                     concurrency_policy="Replace",
                                                     suspend=True))
    model = hera_models.CronWorkflow.model_validate(manifest)
    assert model.model_dump(by_alias=True, exclude_none=True) == manifest
    assert yaml.safe_load(to_yaml(manifest)) == manifest


def test_the_workflow_spec_is_the_compiled_workflows_with_the_parameters_given():
    workflow = tabular_workflow()
    manifest = cron_workflow(workflow, "0 3 * * *",
                             parameters={"test_size": 0.3, "log_columns": ["a"], "seed": 7})
    spec = manifest["spec"]
    assert spec["schedules"] == ["0 3 * * *"]
    assert spec["concurrencyPolicy"] == "Forbid"  # cellpipe's default: no overlapping runs
    assert "timezone" not in spec and "suspend" not in spec
    expected = dict(workflow["spec"])
    arguments = {p["name"]: p["value"] for p in spec["workflowSpec"]["arguments"]["parameters"]}
    assert arguments["test_size"] == "0.3" and arguments["seed"] == "7"
    assert arguments["log_columns"] == '["a"]'
    assert arguments["C"] == "1.0"  # not given: the notebook's default
    expected["arguments"] = spec["workflowSpec"]["arguments"]
    assert spec["workflowSpec"] == expected
    # the compiled Workflow is left as it was
    assert {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}[
        "test_size"] == "0.25"
    assert manifest["metadata"] == {"name": "tabular-tags", "namespace": "ml",
                                    "labels": {PIPELINE_LABEL: "tabular-tags"}}
    assert spec["workflowMetadata"] == {"labels": {PIPELINE_LABEL: "tabular-tags"}}


def test_names_are_kubernetes_names_that_leave_room_for_argos_suffix(tmp_path):
    workflow = tabular_workflow()
    assert cron_workflow(workflow, "0 3 * * *", options=ScheduleOptions(name="nightly"))[
        "metadata"]["name"] == "nightly"
    for bad in ("Nightly", "night_ly", "x" * (MAX_NAME + 1)):
        with pytest.raises(CellpipeError, match="cannot name a CronWorkflow") as info:
            cron_workflow(workflow, "0 3 * * *", options=ScheduleOptions(name=bad))
        assert "--name" in str(info.value.hint)
    path = write_nb(tmp_path, *CELLS, name=f"{'long-name-' * 8}.ipynb")
    spec = api.compile_spec(path)
    long = compile_argo(spec, IMAGES, cluster_settings(spec))
    assert len(cron_workflow(long, "0 3 * * *")["metadata"]["name"]) <= MAX_NAME


def test_an_unknown_parameter_is_refused_with_the_nearest_name():
    with pytest.raises(CellpipeError, match="no parameter 'test_sise'") as info:
        cron_workflow(tabular_workflow(), "0 3 * * *", parameters={"test_sise": 0.3})
    assert "test_size" in str(info.value.hint)


# --- create, list, delete through the API (kmock) -------------------------------------------

def test_schedule_list_and_delete_a_cron_workflow_through_the_api(cluster, tmp_path):
    """kmock stands in for the Kubernetes API server (none can run here)."""
    path = write_nb(tmp_path, *CELLS, name="nightly.ipynb")
    made = api.schedule(path, "argo", cron="0  3 * * *", parameters={"n": 7},
                        timezone="Europe/Berlin", concurrency_policy="replace",
                        images=IMAGES)
    assert (made.name, made.cron, made.timezone) == ("nightly", "0 3 * * *", "Europe/Berlin")
    assert made.concurrency_policy == "Replace" and not made.suspended
    assert made.parameters == {"n": "7", "label": "x"}
    assert made.title == "CronWorkflow nightly"

    stored = cluster.stored(CRON_WORKFLOWS[2], "ml")["nightly"]  # the kubeconfig's namespace
    assert stored["kind"] == "CronWorkflow"
    assert stored["spec"]["schedules"] == ["0 3 * * *"]
    assert stored["spec"]["timezone"] == "Europe/Berlin"
    assert stored["spec"]["concurrencyPolicy"] == "Replace"
    spec = api.compile_spec(path)
    compiled = compile_argo(spec, IMAGES, cluster_settings(spec))
    compiled["spec"]["arguments"]["parameters"][0]["value"] = "7"
    assert stored["spec"]["workflowSpec"] == compiled["spec"]
    hera_models.CronWorkflow.model_validate(stored)
    assert cluster.stored(WORKFLOWS[2], "ml") == {}  # nothing runs until the controller says

    second = api.schedule(path, "argo", cron="@hourly", name="hourly", suspend=True,
                          images=IMAGES)
    assert (second.cron, second.suspended, second.concurrency_policy) == (
        "0 * * * *", True, "Forbid")
    listed = api.list_schedules("argo")
    assert [s.name for s in listed] == ["hourly", "nightly"]
    assert listed[1] == made

    gone = api.unschedule("argo", "nightly")
    assert gone.name == "nightly" and gone.cron == "0 3 * * *"
    assert [s.name for s in api.list_schedules("argo")] == ["hourly"]
    assert set(cluster.stored(CRON_WORKFLOWS[2], "ml")) == {"hourly"}


def test_the_namespace_given_wins_and_list_shows_only_cellpipes(cluster, tmp_path):
    """kmock stands in for the Kubernetes API server (none can run here)."""
    import kubernetes

    path = write_nb(tmp_path, *CELLS, name="nightly.ipynb")
    api.schedule(path, "argo", cron="0 3 * * *", connection={"namespace": "team"},
                 images=IMAGES)
    assert set(cluster.stored(CRON_WORKFLOWS[2], "team")) == {"nightly"}
    assert api.list_schedules("argo") == []  # the kubeconfig's namespace, ml, has none
    # a CronWorkflow someone else made is not listed as cellpipe's
    foreign = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
               "metadata": {"name": "theirs", "namespace": "team"},
               "spec": {"schedules": ["* * * * *"], "workflowSpec": {"entrypoint": "x"}}}
    kubernetes.client.CustomObjectsApi(cluster.api()).create_namespaced_custom_object(
        *CRON_WORKFLOWS[:2], "team", CRON_WORKFLOWS[2], foreign)
    assert [s.name for s in api.list_schedules("argo", namespace="team")] == ["nightly"]


def test_a_schedule_of_that_name_already_there_is_a_clear_error(cluster, tmp_path):
    """kmock stands in for the Kubernetes API server (none can run here)."""
    path = write_nb(tmp_path, *CELLS, name="nightly.ipynb")
    api.schedule(path, "argo", cron="0 3 * * *", images=IMAGES)
    with pytest.raises(CellpipeError, match="409") as info:
        api.schedule(path, "argo", cron="0 4 * * *", images=IMAGES)
    assert "--delete" in str(info.value.hint) and "--name" in str(info.value.hint)
    assert cluster.stored(CRON_WORKFLOWS[2], "ml")["nightly"]["spec"]["schedules"] == [
        "0 3 * * *"]


def test_deleting_a_schedule_that_is_not_there_says_how_to_list_them(cluster):
    """kmock stands in for the Kubernetes API server (none can run here)."""
    with pytest.raises(CellpipeError, match="nightly") as info:
        api.unschedule("argo", "nightly")
    assert "schedule --list" in str(info.value.hint)


def test_a_bad_cron_is_refused_before_anything_is_compiled_or_sent(cluster, tmp_path):
    """kmock stands in for the Kubernetes API server (none can run here)."""
    path = tmp_path / "missing.ipynb"  # not even read: the cron expression is checked first
    with pytest.raises(CellpipeError, match=r"field 2 \(hour\) is '25'") as info:
        api.schedule(path, "argo", cron="0 25 * * *", images=IMAGES)
    assert "0-23" in str(info.value.hint)
    assert cluster.stored(CRON_WORKFLOWS[2], "ml") == {}


def test_a_cluster_without_argo_says_so(kube_without_argo, tmp_path, monkeypatch):
    """kmock stands in for the Kubernetes API server (none can run here); no Argo CRDs."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, kube_without_argo.url)))
    path = write_nb(tmp_path, *CELLS, name="nightly.ipynb")
    with pytest.raises(CellpipeError, match="does not serve cronworkflows") as info:
        api.schedule(path, "argo", cron="0 3 * * *", images=IMAGES)
    assert "cronworkflows.argoproj.io" in str(info.value.hint)


def test_the_client_reads_what_the_controller_reports(kube):
    """kmock stands in for the Kubernetes API server (none can run here); the test plays
    Argo's controller by patching the CronWorkflow's status."""
    import kubernetes

    client = CronWorkflowClient(namespace="ml", api_client=kube.api())
    manifest = cron_workflow(tabular_workflow(), "0 3 * * *")
    client.create(manifest)
    kubernetes.client.CustomObjectsApi(kube.api()).patch_namespaced_custom_object_status(
        *CRON_WORKFLOWS[:2], "ml", CRON_WORKFLOWS[2], "tabular-tags",
        {"status": {"lastScheduledTime": "2026-01-02T03:00:00Z"}})
    (found,) = client.list_crons()
    assert schedule_of(found).last_run == "2026-01-02T03:00:00Z"
    with pytest.raises(CellpipeError, match="only an Argo CronWorkflow"):
        client.create(tabular_workflow())
