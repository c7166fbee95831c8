"""A step image writing to S3: what an Argo pod with ``--storage s3://…`` runs, for real.

The images are built on the local daemon with s3fs added to their requirements (as the
README says an S3 store needs), then each step's container runs its runtime exactly as the
Argo manifest's command does, against a real S3 API server (moto's, on 127.0.0.1, reached
from the container through the host network) with the credentials in the environment, as
the manifest's secret references would put them. The values read back from the bucket are
the local run's.
"""

from __future__ import annotations

import importlib.metadata

import pytest

from cellpipe import api
from cellpipe.core.layout import IMAGE_SPEC
from cellpipe.marshal import open_store
from tests.conftest import write_nb
from tests.engines.compare import assert_same

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CELLS = [
    ("", "import numpy as np"),
    ("parameters", "n = 4"),
    ("step:make", "grid = np.arange(n * n).reshape(n, n)"),
    ("step:trace", "trace = int(np.trace(grid))\nprint('trace', trace)"),
]


def test_step_images_with_s3fs_write_and_read_their_values_in_the_bucket(
        tmp_path, docker_env, s3_server):
    path = write_nb(tmp_path, *CELLS, name="s3_steps.ipynb")
    local = api.run(path, root=tmp_path / ".cellpipe")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"s3fs=={importlib.metadata.version('s3fs')}\n")
    images = api.build_images(path, requirements=requirements)
    store = f"s3://{s3_server.bucket}/image-run"
    try:
        for step in ("make", "trace"):  # the DAG's order
            output = docker_env.containers.run(
                images[step].ref,
                command=["python", "-m", "cellpipe.runtime", "--spec", IMAGE_SPEC,
                         "--step", step, "--store", store, "--step-dir", f"/tmp/{step}",
                         "--outputs-dir", "/tmp/outputs"],
                environment=s3_server.env, network_mode="host", remove=True, stderr=True)
            assert b"Traceback" not in output, output.decode()[-3000:]
    finally:
        for image in images.values():
            if image.status == "built":
                docker_env.images.remove(image.ref, force=True)
    values = open_store(store)
    assert_same(local.load("grid"), values.load("make", "grid", verify=True), "grid")
    assert values.load("trace", "trace") == local.load("trace") == 30  # 0 + 5 + 10 + 15
