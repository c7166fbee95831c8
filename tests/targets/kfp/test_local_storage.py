"""Results back home from Kubeflow Pipelines: kfp.local runs against a real S3 server.

With ``storage`` in the notebook's cluster metadata, every KFP step also leaves its values,
its result and its report under ``STORAGE/<run id>`` (the run id is KFP's
``{{$.pipeline_job_uuid}}``, which kfp.local resolves as a server does). The compiled IR is
run for real by ``kfp.local.SubprocessRunner``; the store is moto's S3 API server (the
``s3_server`` fixture: an HTTP server, not a mock object), whose credentials the steps read
from the environment as the secret references put them on a cluster. The values, metrics
and report read back through a :class:`cellpipe.ClusterRun` must be the local engine's.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
import yaml

from cellpipe import api
from cellpipe.cluster_api import compile_document
from cellpipe.cluster_run import ClusterRun
from cellpipe.errors import CellpipeError
from tests.conftest import write_nb
from tests.engines.compare import assert_same
from tests.targets.kfp.conftest import TINY

pytestmark = pytest.mark.filterwarnings(
    "ignore:You may be attemping to run a task that uses custom:RuntimeWarning")

kfp_local = pytest.importorskip("kfp.local", reason="kfp is installed by `.[kfp]`")
kfp_components = pytest.importorskip("kfp.components")

ARGUMENTS = {"n": 7, "weights": [3, 4]}


def _notebook(tmp_path: Path, s3: Any) -> Path:
    import nbformat

    path = write_nb(tmp_path, *TINY, name="kfp_stored.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.metadata["cellpipe"] = {"cluster": {
        "storage": f"s3://{s3.bucket}/kfp-runs",
        "storage_secret": {"secret": "s3-credentials", "access_key": "id", "secret_key": "key"},
        "storage_endpoint": s3.endpoint}}
    nbformat.write(nb, path)
    return path


def test_a_kfp_local_run_with_storage_comes_back_through_a_cluster_run(tmp_path, s3_server):
    path = _notebook(tmp_path, s3_server)
    document = compile_document(path, "kfp", image="unused/shared:1")
    assert document.store == f"s3://{s3_server.bucket}/kfp-runs/{{name}}"
    assert any("kfp-runs/<run id>" in note for note in document.notes)
    ir = yaml.safe_load_all(document.text)
    platform = [part for part in ir if "platforms" in part]
    # the credentials travel by secret reference, the endpoint as an environment variable
    executors = platform[0]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for executor in executors.values():
        assert executor["secretAsEnv"][0]["secretName"] == "s3-credentials"
        assert {m["secretKey"]: m["envVar"] for m in executor["secretAsEnv"][0]["keyToEnv"]} \
            == {"id": "AWS_ACCESS_KEY_ID", "key": "AWS_SECRET_ACCESS_KEY"}
    assert "AWS_ENDPOINT_URL" in document.text and s3_server.endpoint in document.text

    package = tmp_path / "pipeline.yaml"
    package.write_text(document.text, encoding="utf-8")
    root = tmp_path / "kfp-root"
    kfp_local.init(runner=kfp_local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    kfp_components.load_component_from_file(str(package))(**ARGUMENTS)

    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_server.endpoint, skip_instance_cache=True)
    (run_folder,) = fs.ls(f"{s3_server.bucket}/kfp-runs")
    run_id = run_folder.rsplit("/", 1)[1]
    # the run id in the store is the one KFP gave the run (kfp.local: the number it drew)
    assert run_id.isdigit()

    run = ClusterRun("kfp", run_id, "SUCCEEDED", spec=document.spec,
                     store=document.store.format(name=run_id))
    local = api.run(path, parameters=ARGUMENTS, engine="local", root=tmp_path / ".cellpipe")
    assert local.status == "succeeded"
    for name in ("values", "labels", "weighted", "total"):
        assert_same(local.load(name), run.load(name), name)
    assert run.load("labels") == ["3", "4"]  # the ints of a list stayed ints
    assert run.metrics == local.metrics == {"total": 50.0}
    report = run.report("total", into=tmp_path / "report").read_text(encoding="utf-8")
    assert '"total": 50.0' in html.unescape(report)
    with pytest.raises(CellpipeError, match=r"no step of .* makes a value 'nothing'"):
        run.load("nothing")


def test_without_storage_a_kfp_run_says_its_values_stay_in_the_cluster(tiny_notebook):
    document = compile_document(tiny_notebook, "kfp", image="unused/shared:1")
    assert document.store is None and "--publish" not in document.text
    run = ClusterRun("kfp", "0123", "SUCCEEDED", spec=document.spec, store=None)
    with pytest.raises(CellpipeError) as caught:
        run.load("total")
    assert "KFP server's own artifact store" in caught.value.message
    assert "--storage s3://" in caught.value.hint
