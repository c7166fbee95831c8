"""KFP target tests: a small notebook, and (for DockerRunner) its step images holding kfp.

The images are built for real on the local daemon from the local base image
(scripts/docker_up.sh), with ``kfp==<this venv's version>`` added to every step image, and
removed again at the end of the session when this session built them. Outside CI a Docker
test is skipped, saying why, when there is no daemon or base image; under CI=true such a
skip is a failure (tests/conftest.py).
"""

from __future__ import annotations

import importlib.metadata

import pytest

from tests.conftest import BASE_IMAGE, write_nb

# Three steps, numpy only: 'total' reads from two producers; an int and a list parameter
# (KFP carries the numbers inside a list as floats: the labels show whether 3 stayed 3).
TINY = [
    ("", "import json\nimport numpy as np"),
    ("parameters", "n = 5\nweights = [1, 2]"),
    ("step:make", "values = np.arange(n) * 2.0\nprint('made', values)"),
    ("step:weigh", "labels = [str(w) for w in weights]\n"
                   "weighted = values[: len(weights)] * np.array(weights)"),
    ("step:total", "total = float(values.sum() + weighted.sum())\n"
                   "print(json.dumps({'total': total, 'labels': labels}))"),
    ("metrics", "total"),
]
TINY_NAME = "kfp_tiny.ipynb"  # images: cellpipe/kfp-tiny-<step>


@pytest.fixture
def tiny_notebook(tmp_path):
    return write_nb(tmp_path, *TINY, name=TINY_NAME)


@pytest.fixture(scope="session")
def tiny_images(docker_client, tmp_path_factory):
    """The TINY notebook's step images with kfp in them: (notebook path, step → ref)."""
    from cellpipe import api

    directory = tmp_path_factory.mktemp("kfp-images")
    path = write_nb(directory, *TINY, name=TINY_NAME)
    requirements = directory / "requirements.txt"
    requirements.write_text(f"kfp=={importlib.metadata.version('kfp')}\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELLPIPE_BASE_IMAGE", BASE_IMAGE)
        images = api.build_images(path, requirements=requirements)
    yield path, {step: image.ref for step, image in images.items()}
    # only what this session built: other tests share the daemon
    built = [image.ref for image in images.values() if image.status == "built"]
    built += sorted({image.deps_ref for image in images.values() if image.deps_status == "built"})
    for ref in built:
        try:
            docker_client.images.remove(ref)
        except Exception as exc:  # still used by a container another test runs
            print(f"kept image {ref}: {exc}")
