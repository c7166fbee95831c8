"""What Argo keeps for its UI: each step's report, figures, classification metrics and
models as output artifacts, where the cluster has somewhere to keep them (an object store,
or an artifact repository); without one, none, and compiling says so."""

from __future__ import annotations

import json

import nbformat
import pytest
import yaml
from click.testing import CliRunner
from hera.workflows import models as hera_models

from cellpipe import api
from cellpipe.cli.main import main
from cellpipe.errors import CellpipeError
from cellpipe.targets.argo.compile import compile_argo, to_yaml
from cellpipe.targets.cluster import cluster_settings
from tests.conftest import make_nb

S3 = {"storage": "s3://ml-bucket/cellpipe",
      "storage_secret": {"secret": "s3-credentials"},
      "storage_endpoint": "http://minio.ml:9000"}
CELLS = (
    "from sklearn.linear_model import LogisticRegression\nimport numpy as np",
    (["step:train", "model:clf"], "X = np.eye(4)\ny = [0, 1, 1, 0]\n"
                                  "clf = LogisticRegression().fit(X, y)\n"
                                  "predicted = clf.predict(X)"),
    ("metrics", "accuracy = float((predicted == y).mean())\n"
                "confusion = {'labels': ['no', 'yes'], 'matrix': [[1, 1], [1, 1]]}"),
    ("step:report", "print(accuracy)"),
)


def compiled(tmp_path, cluster=None, **overrides):
    nb = make_nb(*CELLS, metadata={"cellpipe": {"cluster": cluster}} if cluster else None)
    path = tmp_path / "classify.ipynb"
    nbformat.write(nb, path)
    spec = api.compile_spec(path)
    images = {s.name: f"registry.local/classify-{s.name}:1" for s in spec.steps}
    return path, compile_argo(spec, images, cluster_settings(spec, **overrides))


def template(manifest, name):
    return next(t for t in manifest["spec"]["templates"] if t["name"] == name)


def artifacts(manifest, name):
    return {a["name"]: a for a in template(manifest, name).get("outputs", {}).get("artifacts", [])}


def test_with_an_object_store_every_step_keeps_its_ui_artifacts_beside_the_values(tmp_path):
    _, manifest = compiled(tmp_path, S3)
    train = artifacts(manifest, "train")
    assert sorted(train) == ["classification", "figures", "metrics", "model-clf", "report"]
    location = {"bucket": "ml-bucket", "endpoint": "minio.ml:9000", "insecure": True,
                "accessKeySecret": {"name": "s3-credentials", "key": "accesskey"},
                "secretKeySecret": {"name": "s3-credentials", "key": "secretkey"}}
    prefix = "cellpipe/{{workflow.name}}/.artifacts/train"
    assert train["report"] == {"name": "report", "archive": {"none": {}}, "optional": True,
                               "path": "/tmp/cellpipe/outputs/report.html",
                               "s3": {**location, "key": f"{prefix}/report.html"}}
    assert train["figures"]["path"] == "/tmp/cellpipe/outputs/figures"
    assert train["figures"]["s3"]["key"] == f"{prefix}/figures"
    assert train["classification"]["s3"]["key"] == f"{prefix}/classification.json"
    assert train["metrics"]["s3"]["key"] == f"{prefix}/metrics.json"
    assert "optional" not in train["metrics"]
    model = train["model-clf"]
    assert model["path"] == "/tmp/cellpipe/outputs/models/clf"
    assert model["s3"]["key"] == f"{prefix}/models/clf.tgz"
    assert "archive" not in model and model["optional"] is True  # a store folder, archived
    # a step without charts or models still shows its report and figures
    assert sorted(artifacts(manifest, "report")) == ["figures", "report"]
    command = template(manifest, "train")["container"]["command"]
    assert command[command.index("--outputs-dir") + 1:][:2] == ["/tmp/cellpipe/outputs",
                                                                "--artifacts"]
    assert "artifactRepositoryRef" not in manifest["spec"]


@pytest.mark.parametrize(("repository", "reference"), [
    ("default", None),
    ({"configmap": "artifact-repositories", "key": "minio"},
     {"configMap": "artifact-repositories", "key": "minio"}),
    ({"configmap": "artifact-repositories"}, {"configMap": "artifact-repositories"}),
])
def test_with_an_artifact_repository_the_repository_places_them(tmp_path, repository,
                                                                 reference):
    _, manifest = compiled(tmp_path, {"artifact_repository": repository})
    train = artifacts(manifest, "train")
    assert sorted(train) == ["classification", "figures", "metrics", "model-clf", "report"]
    assert not any("s3" in a for a in train.values())
    assert train["report"] == {"name": "report", "archive": {"none": {}}, "optional": True,
                               "path": "/tmp/cellpipe/outputs/report.html"}
    assert manifest["spec"].get("artifactRepositoryRef") == reference
    assert manifest["spec"]["volumeClaimTemplates"]


def test_without_either_no_step_publishes_artifacts_and_compiling_says_so(tmp_path):
    path, manifest = compiled(tmp_path)
    for name in ("train", "report"):
        assert artifacts(manifest, name) == {}
        assert "--artifacts" not in template(manifest, name)["container"]["command"]
    assert [p["name"] for p in template(manifest, "train")["outputs"]["parameters"]] == [
        "accuracy"]
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"train": "r/train:1", "report": "r/report:1"}))
    done = CliRunner().invoke(main, ["compile", str(path), "--target", "argo",
                                     "--images", str(images), "-o", str(tmp_path / "wf.yaml")])
    assert done.exit_code == 0, done.output
    assert ("cellpipe: argo: no artifact repository or object store: the steps' reports, "
            "figures, classification metrics and models are not kept") in done.output
    done = CliRunner().invoke(main, ["compile", str(path), "--target", "argo", "--images",
                                     str(images), "--storage", "s3://bucket/x"])
    assert "storage_secret" in done.output  # --storage needs its secret in the metadata


@pytest.mark.parametrize(("option", "reference"), [
    ("default", None), ("repos", {"configMap": "repos"}),
    ("repos:minio", {"configMap": "repos", "key": "minio"})])
def test_artifact_repository_on_the_command_line(tmp_path, option, reference):
    path, _ = compiled(tmp_path)
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"train": "r/train:1", "report": "r/report:1"}))
    done = CliRunner().invoke(main, ["compile", str(path), "--target", "argo", "--images",
                                     str(images), "--artifact-repository", option,
                                     "-o", str(tmp_path / "wf.yaml")])
    assert done.exit_code == 0, done.output
    assert "are not kept" not in done.output
    manifest = yaml.safe_load((tmp_path / "wf.yaml").read_text(encoding="utf-8"))
    assert manifest["spec"].get("artifactRepositoryRef") == reference
    assert sorted(artifacts(manifest, "train")) == ["classification", "figures", "metrics",
                                                    "model-clf", "report"]
    done = CliRunner().invoke(main, ["compile", str(path), "--target", "argo", "--images",
                                     str(images), "--artifact-repository", "Bad_Name"])
    assert done.exit_code != 0 and "artifact_repository" in done.output


def test_storage_volume_on_the_command_line_drops_the_artifacts_again(tmp_path):
    _, manifest = compiled(tmp_path, S3, storage="volume")
    assert artifacts(manifest, "train") == {}


@pytest.mark.parametrize("cluster", [
    {}, S3, {"artifact_repository": {"configmap": "repos", "key": "s3"}}])
def test_the_manifests_are_argos_schema_and_stable(tmp_path, cluster):
    _, manifest = compiled(tmp_path, cluster)
    model = hera_models.Workflow.model_validate(manifest)
    assert model.model_dump(by_alias=True, exclude_none=True) == manifest
    assert to_yaml(compiled(tmp_path, cluster)[1]) == to_yaml(manifest)


@pytest.mark.parametrize(("value", "words"), [
    ("yes", "neither \"default\" nor a ConfigMap's key"),
    ({"key": "s3"}, "missing 'configmap'"),
    ({"configmap": "Repos"}, "not a valid Kubernetes name"),
    ({"configmap": "repos", "bucket": "b"}, "unknown key 'bucket'"),
])
def test_a_bad_artifact_repository_names_its_key(tmp_path, value, words):
    with pytest.raises(CellpipeError, match=r"cellpipe\.cluster\.artifact_repository") as caught:
        compiled(tmp_path, {"artifact_repository": value})
    assert words in caught.value.message


def test_played_pod_by_pod_each_step_leaves_every_artifact_its_template_names(tmp_path):
    """The manifest's artifact paths are the runtime's files: each pod run as Argo would
    (tests/targets/test_shared_image.py), then every output artifact looked for."""
    from tests.targets.test_shared_image import _play_carried

    cells = list(CELLS)
    cells[1] = (cells[1][0], cells[1][1] + "\nimport matplotlib.pyplot as plt\n"
                "plt.plot([0, 1], [1, 0])\nplt.show()")
    path = tmp_path / "classify.ipynb"
    nbformat.write(make_nb(*cells, metadata={"cellpipe": {"cluster": {
        "artifact_repository": "default"}}}), path)
    spec = api.compile_spec(path)
    manifest = compile_argo(spec, {s.name: "shared:1" for s in spec.steps},
                            cluster_settings(spec), carry_code=True)
    done = _play_carried(tmp_path / "argo", manifest)
    for task, process in done.items():
        assert process.returncode == 0, process.stderr
        outputs = tmp_path / "argo" / f"pod-{task}" / "outputs"
        for artifact in artifacts(manifest, task).values():
            found = outputs / artifact["path"].removeprefix("/tmp/cellpipe/outputs/")
            if (task, artifact["name"]) == ("report", "figures"):
                assert not found.exists() and artifact["optional"]  # it displayed none
                continue
            assert found.exists(), f"{task}: {artifact['name']} ({found})"
    train = tmp_path / "argo" / "pod-train" / "outputs"
    assert "0.5" in (tmp_path / "argo" / "pod-report" / "outputs" / "report.html").read_text()
    assert (train / "figures" / "figure-1.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((train / "classification.json").read_text())["confusion"]["labels"] == [
        "no", "yes"]
    assert (train / "models" / "clf" / "train" / "clf.joblib").is_file()
