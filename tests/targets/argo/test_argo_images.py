"""`cellpipe compile --target argo --registry …`: the images are built, pushed, and named in
the Workflow (real daemon and the local registry from scripts/docker_up.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid

import pytest
import yaml

from tests.conftest import BASE_IMAGE, REGISTRY, ROOT, write_nb


@pytest.mark.docker
@pytest.mark.slow
def test_compile_with_a_registry_pushes_the_images_it_names(tmp_path, docker_client):
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5).close()
    except OSError as exc:
        pytest.skip(f"no registry at {REGISTRY} ({exc}); run `bash scripts/docker_up.sh`")
    path = write_nb(tmp_path, ("step:make", "import numpy as np\nvalues = np.arange(3)"),
                    ("step:total", "total = int(values.sum())"))
    prefix = f"{REGISTRY}/argo-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CELLPIPE_BASE_IMAGE": BASE_IMAGE}
    done = subprocess.run([sys.executable, "-m", "cellpipe", "compile", str(path), "--target",
                           "argo", "--registry", prefix], capture_output=True, text=True,
                          env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    workflow = yaml.safe_load(done.stdout)
    images = {t["name"]: t["container"]["image"] for t in workflow["spec"]["templates"]
              if "container" in t}
    assert set(images) == {"make", "total"}
    for step, ref in images.items():
        assert ref.startswith(f"{prefix}/nb-{step}:"), ref
        docker_client.images.get_registry_data(ref)  # raises when the registry lacks it
    assert "pushed" in done.stderr
