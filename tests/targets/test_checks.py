"""Pre-submit checks and cluster settings: every mistake is a CellpipeError naming its place."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from cellpipe import api
from cellpipe.core.spec import freeze
from cellpipe.errors import CellpipeError
from cellpipe.targets.checks import check_no_secret_values, check_quantity, dns1123_name
from cellpipe.targets.cluster import SecretRef, Toleration, cluster_settings
from tests.conftest import make_nb


def spec_with(cluster, steps=("load", "train")):
    """A spec of one-cell steps whose ``pipeline.cluster`` is ``cluster`` as given."""
    spec = api.compile_spec(make_nb(*((f"step:{name}", f"x{i} = {i}")
                                      for i, name in enumerate(steps))))
    return dataclasses.replace(
        spec, notebook=dataclasses.replace(spec.notebook, path="nb.ipynb"),
        pipeline=dataclasses.replace(spec.pipeline, cluster=freeze(cluster)))


# --- dns1123_name ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "label"), [
    ("train", "train"),
    ("train_logreg", "train-logreg"),
    ("Train_LogReg", "train-logreg"),
    ("my pipeline.v2", "my-pipeline-v2"),
    ("_load_", "load"),
])
def test_dns1123_name_maps_names_to_labels(name, label):
    assert dns1123_name(name) == label


def test_dns1123_name_shortens_long_names_keeping_them_distinct():
    first, second = dns1123_name("a" * 70 + "_x"), dns1123_name("a" * 70 + "_y")
    assert len(first) == len(second) == 63
    assert first != second
    assert dns1123_name("b" * 40, max_length=20).startswith("b" * 11 + "-")


@pytest.mark.parametrize("name", ["", "__", "träin", "a/b"])
def test_dns1123_name_rejects_what_no_label_can_hold(name):
    with pytest.raises(CellpipeError, match="cannot become a Kubernetes name"):
        dns1123_name(name)


# --- check_quantity -------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "canonical"), [
    (2, "2"), (0.5, "500m"), ("500m", "500m"), ("1000m", "1"), ("1.5", "1500m"), (" 2 ", "2"),
    ("2e0", "2"),
])
def test_cpu_quantities_are_canonical(value, canonical):
    assert check_quantity(value, kind="cpu", step="train", annotation="cpu") == canonical


@pytest.mark.parametrize(("value", "canonical"), [
    ("512Mi", "512Mi"), ("2G", "2G"), ("1.5Gi", "1.5Gi"), (2**30, "1073741824"), ("+4Gi", "4Gi"),
    ("1e9", "1e9"),
])
def test_memory_quantities_are_canonical(value, canonical):
    assert check_quantity(value, kind="memory", step="train", annotation="memory") == canonical


def test_a_bad_memory_size_names_the_step_and_the_annotation_and_how_to_write_it():
    with pytest.raises(CellpipeError) as caught:
        check_quantity("2GB", kind="memory", step="train", annotation="memory")
    error = caught.value
    assert error.step == "train"
    assert str(error) == ("step 'train': memory:2GB is not a Kubernetes quantity "
                          "(write 2Gi or 2G)")


@pytest.mark.parametrize(("value", "kind", "words", "hint"), [
    ("2gb", "memory", "not a Kubernetes quantity", "write 2Gi or 2G"),
    ("512 MiB", "memory", "not a Kubernetes quantity", "write 512Mi or 512M"),
    ("512m", "memory", "milli-bytes", "write 512Mi or 512M"),
    (512, "memory", "only 512 bytes", "512Mi"),
    ("0", "memory", "more than zero", ""),
    ("-1Gi", "memory", "more than zero", ""),
    ("2Gi", "cpu", "CPU is counted in cores", "500m"),
    ("0.0001", "cpu", "finer than a millicore", "500m"),
    ("two", "cpu", "not a Kubernetes quantity", "500m"),
    (True, "cpu", "not a Kubernetes quantity", ""),
    (float("inf"), "cpu", "not a Kubernetes quantity", ""),
    ([1], "memory", "not a Kubernetes quantity", ""),
])
def test_quantities_kubernetes_would_reject_or_nobody_means_fail(value, kind, words, hint):
    with pytest.raises(CellpipeError, match=words) as caught:
        check_quantity(value, kind=kind, step="fit", annotation=kind)
    assert caught.value.step == "fit"
    assert f"{kind}:{value}" in caught.value.message
    assert hint in (caught.value.hint or "")


def test_a_quantity_from_metadata_names_the_key():
    key = "notebook metadata cellpipe.cluster.volume.size"
    with pytest.raises(CellpipeError, match=r"volume\.size: '10GB' is not"):
        check_quantity("10GB", kind="memory", step=None, annotation=key)


# --- check_no_secret_values -----------------------------------------------------------------

def manifest_with_env(entry):
    return {"spec": {"templates": [{"name": "a"}, {"container": {"env": [
        {"name": "MODE", "value": "fast"}, entry]}}]}}


def test_secret_references_pass():
    check_no_secret_values(manifest_with_env(
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}
    ), "Argo Workflow 'demo-'")


@pytest.mark.parametrize("name", ["API_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY",
                                  "GCP_CREDENTIALS", "apikey"])
def test_an_inline_secret_value_names_where_it_is(name):
    with pytest.raises(CellpipeError, match="never go into manifests") as caught:
        check_no_secret_values(manifest_with_env({"name": name, "value": "hunter2"}), "Workflow x")
    assert f"Workflow x: spec.templates[1].container.env[1] ({name})" in caught.value.message
    assert "secretKeyRef" in caught.value.hint


def test_a_secret_from_a_config_map_is_refused_too():
    entry = {"name": "API_KEY", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
    with pytest.raises(CellpipeError, match="does not come from a Secret"):
        check_no_secret_values(manifest_with_env(entry), "Workflow x")


# --- cluster_settings -----------------------------------------------------------------------

FULL = {
    "namespace": "ml",
    "service_account": "pipeline-runner",
    "labels": {"team": "fraud"},
    "annotations": {"owner": "ana", "example.com/note": "any text at all"},
    "node_selector": {"pool": "cpu"},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "secrets": [{"env": "API_TOKEN", "secret": "api-credentials", "key": "token"}],
    "volume": {"size": "10Gi", "storage_class": "standard", "access_mode": "ReadWriteMany"},
    "steps": {"train": {"node_selector": {"pool": "gpu"},
                        "tolerations": [{"key": "spot", "value": "yes", "effect": "NoExecute",
                                         "toleration_seconds": 60}],
                        "secrets": [{"env": "API_TOKEN", "secret": "train-api", "key": "t"}]}},
    "kfp": {"caching": False},
}


def test_full_metadata_is_read_into_settings():
    settings = cluster_settings(spec_with(FULL))
    assert settings.namespace == "ml"
    assert settings.service_account == "pipeline-runner"
    assert settings.labels == (("team", "fraud"),)
    assert dict(settings.annotations) == FULL["annotations"]
    assert settings.volume_size == "10Gi"
    assert settings.volume_storage_class == "standard"
    assert settings.volume_access_mode == "ReadWriteMany"
    assert settings.storage is None
    assert settings.kfp_caching is False
    assert settings.node_selector_for("load") == {"pool": "cpu"}
    assert settings.node_selector_for("train") == {"pool": "gpu"}
    assert settings.tolerations_for("train") == [
        Toleration("gpu", "Exists", None, "NoSchedule"),
        Toleration("spot", "Equal", "yes", "NoExecute", 60),
    ]
    assert settings.secrets_for("load") == [SecretRef("API_TOKEN", "api-credentials", "token")]
    assert settings.secrets_for("train") == [SecretRef("API_TOKEN", "train-api", "t")]
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_defaults_without_metadata():
    settings = cluster_settings(spec_with({}))
    assert (settings.namespace, settings.volume_size, settings.volume_access_mode) == (
        None, "1Gi", "ReadWriteOnce")
    assert settings.secrets_for("train") == []


def test_command_line_overrides_win_and_are_checked_by_option_name():
    settings = cluster_settings(
        spec_with(FULL), namespace="prod", volume_size="20Gi", storage_class="fast",
        access_mode="ReadWriteOnce", service_account="runner",
    )
    assert (settings.namespace, settings.volume_size, settings.volume_storage_class,
            settings.volume_access_mode, settings.service_account) == (
        "prod", "20Gi", "fast", "ReadWriteOnce", "runner")
    with pytest.raises(CellpipeError, match="option --namespace: 'Prod' is not a valid"):
        cluster_settings(spec_with({}), namespace="Prod")
    with pytest.raises(CellpipeError, match="option --volume-size: '20GB' is not a Kubernetes"):
        cluster_settings(spec_with({}), volume_size="20GB")


def test_s3_storage_needs_its_secret_and_keeps_the_endpoint():
    s3 = {"storage": "s3://bucket/runs/", "storage_endpoint": "http://minio.ml:9000",
          "storage_secret": {"secret": "s3-credentials"}}
    settings = cluster_settings(spec_with(s3))
    assert settings.storage == "s3://bucket/runs"
    assert (settings.storage_secret.access_key, settings.storage_secret.secret_key) == (
        "accesskey", "secretkey")
    assert settings.storage_endpoint == "http://minio.ml:9000"
    assert cluster_settings(spec_with(s3), storage="volume").storage is None
    with pytest.raises(CellpipeError, match=r"cellpipe.cluster.storage_secret: s3://bkt/p needs"):
        cluster_settings(spec_with({}), storage="s3://bkt/p")


@pytest.mark.parametrize(("cluster", "key", "words"), [
    ({"namspace": "ml"}, "cellpipe.cluster.namspace", "did you mean 'namespace'"),
    ({"steps": {"trian": {}}}, "cellpipe.cluster.steps.trian", "did you mean 'train'"),
    ({"steps": {"train": {"node_selectr": {}}}}, "steps.train.node_selectr",
     "did you mean 'node_selector'"),
    ({"volume": {"sise": "1Gi"}}, "cellpipe.cluster.volume.sise", "did you mean 'size'"),
    ({"tolerations": [{"key": "gpu", "operator": "Exist"}]}, "tolerations[0].operator",
     "not Equal or Exists"),
    ({"tolerations": [{"key": "a"}, {"operator": "Equal"}]}, "tolerations[1].key", "needs a key"),
    ({"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}, "tolerations[0].value",
     "has no value"),
    ({"tolerations": [{"key": "a", "effect": "NoSchedul"}]}, "tolerations[0].effect",
     "did you mean 'NoSchedule'"),
    ({"tolerations": [{"key": "a", "toleration_seconds": 5}]},
     "tolerations[0].toleration_seconds", "NoExecute"),
    ({"tolerations": {"key": "a"}}, "cellpipe.cluster.tolerations", "expected a list"),
    ({"labels": {"team": "two words"}}, "labels.team", "not a valid label value"),
    ({"labels": {"team": 3}}, "labels.team", "not a valid label value"),
    ({"labels": {"bad key!": "x"}}, "labels.bad key!", "not a valid label or annotation key"),
    ({"node_selector": []}, "cellpipe.cluster.node_selector", "expected a mapping"),
    ({"namespace": "ML"}, "cellpipe.cluster.namespace", "not a valid Kubernetes name"),
    ({"service_account": 7}, "cellpipe.cluster.service_account", "non-empty string"),
    ({"secrets": [{"env": "API_TOKEN", "secret": "s"}]}, "secrets[0]", "missing 'key'"),
    ({"secrets": [{"env": "API-TOKEN", "secret": "s", "key": "k"}]}, "secrets[0].env",
     "not an environment variable name"),
    ({"secrets": [{"env": "A", "secret": "s", "key": "k"}, {"env": "A", "secret": "t",
                                                            "key": "k"}]},
     "secrets[1].env", "given twice"),
    ({"secrets": [{"env": "A", "secret": "s", "key": "k", "scret": "x"}]}, "secrets[0].scret",
     "did you mean 'secret'"),
    ({"volume": {"size": "10GB"}}, "cellpipe.cluster.volume.size", "write 10Gi or 10G"),
    ({"volume": {"access_mode": "ReadOnlyMany"}}, "volume.access_mode", "cannot be written"),
    ({"volume": {"access_mode": "ReadWriteOnc"}}, "volume.access_mode", "ReadWriteOnce"),
    ({"storage": "gs://bucket/x"}, "cellpipe.cluster.storage", "not an s3://bucket/prefix URL"),
    ({"storage": "s3://bkt/p", "storage_secret": {"access_key": "a"}}, "storage_secret",
     "missing 'secret'"),
    ({"storage_endpoint": "minio:9000"}, "storage_endpoint", "not an http(s) URL"),
    ({"kfp": {"caching": "yes"}}, "cellpipe.cluster.kfp.caching", "not true or false"),
    ({"kfp": {"cache": True}}, "cellpipe.cluster.kfp.cache", "did you mean 'caching'"),
    ("not a dict", "notebook metadata cellpipe.cluster:", "expected a mapping"),
])
def test_every_bad_value_names_its_metadata_key(cluster, key, words):
    with pytest.raises(CellpipeError) as caught:
        cluster_settings(spec_with(cluster))
    text = str(caught.value)
    assert key in text
    assert words in text
    assert "notebook metadata cellpipe.cluster" in text
    assert caught.value.path == "nb.ipynb"


@pytest.mark.parametrize(("cluster", "key"), [
    ({"secrets": [{"env": "API_TOKEN", "value": "hunter2"}]}, "secrets[0].value"),
    ({"steps": {"train": {"secrets": [{"env": "T", "secret": "s", "key": "k",
                                        "value": "x"}]}}}, "steps.train.secrets[0].value"),
    ({"storage": "s3://bkt/p", "storage_secret": {"secret": "s", "access_key_value": "AKIA"}},
     "storage_secret.access_key_value"),
    ({"storage": "s3://bkt/p", "storage_secret": {"secret": "s", "access_key": {"value": "AKIA"}}},
     "storage_secret.access_key"),
])
def test_a_secret_with_a_value_is_refused(cluster, key):
    with pytest.raises(CellpipeError) as caught:
        cluster_settings(spec_with(cluster))
    assert f"cellpipe.cluster.{key}: secret values never go into manifests" in str(caught.value)
    assert "create a Secret and reference it" in str(caught.value)
