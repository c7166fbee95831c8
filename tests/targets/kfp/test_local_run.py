"""The KFP output, run for real: the compiled IR YAML executed by ``kfp.local``.

The pipeline file is loaded back (``kfp.components.load_component_from_file``) and run
with ``SubprocessRunner(use_venv=False)`` (each step in a subprocess of this venv) and with
``DockerRunner`` (each step in its own image, built for real). Both must give the values
and metrics of ``api.run(engine="local")``; values are read from the steps' ``Dataset``
artifact directories, metrics from the ``Metrics`` artifact each run records.

``DockerRunner`` passes the component's command as Docker's CMD; step images have no
ENTRYPOINT (only a CMD), so they run unchanged there as on Kubernetes. The pipeline root is
written by the image's user (uid 10001), so it is made writable for it.
"""

from __future__ import annotations

import json
import time

import pytest

from cellpipe import api
from cellpipe.marshal import open_store
from cellpipe.targets.kfp.compile import compile_kfp
from tests.engines.compare import assert_same
from tests.targets.kfp.conftest import TINY

pytestmark = pytest.mark.filterwarnings(
    # SubprocessRunner warns that a step's image is not used: these steps need none
    "ignore:You may be attemping to run a task that uses custom:RuntimeWarning")

kfp_local = pytest.importorskip("kfp.local", reason="kfp is installed by `.[kfp]`")
kfp_components = pytest.importorskip("kfp.components")

ARGUMENTS = {"n": 7, "weights": [3, 4]}
EXPECTED = {"total": 50.0}  # 2 * (0 + ... + 6) + (0 * 3 + 2 * 4)
FAKE_IMAGES = {"make": "unused/make:1", "weigh": "unused/weigh:1", "total": "unused/total:1"}


def _local_reference(path, tmp_path):
    run = api.run(path, parameters=ARGUMENTS, engine="local", root=tmp_path / ".cellpipe")
    assert run.status == "succeeded"
    assert run.metrics == EXPECTED
    return run


def _run_kfp(path, images, tmp_path, runner, arguments=ARGUMENTS, shared=None):
    """Compile, write, load back and run the pipeline; return its one run directory.

    ``shared``: compile as ``cellpipe compile --target kfp --image SHARED`` does (one image
    for every step, no build) instead of with the per-step ``images``.
    """
    package = tmp_path / "pipeline.yaml"
    text = (api.compile_target(path, "kfp", image=shared) if shared
            else compile_kfp(api.compile_spec(path), images))
    package.write_text(text, encoding="utf-8")
    root = tmp_path / "kfp-root"
    root.mkdir()
    root.chmod(0o777)  # the step images run as uid 10001
    kfp_local.init(runner=runner, pipeline_root=str(root))
    pipeline = kfp_components.load_component_from_file(str(package))
    started = time.monotonic()
    pipeline(**arguments)
    print(f"kfp.local run took {time.monotonic() - started:.1f}s")
    (run_dir,) = root.iterdir()
    return run_dir


def _assert_same_as_local(run_dir, local):
    for step, names in (("make", ["values"]), ("weigh", ["labels", "weighted"]),
                        ("total", ["total"])):
        store = open_store(str(run_dir / step / "data"))
        for name in names:
            assert_same(local.load(name), store.load(step, name), f"{step}.{name}")
    output = json.loads((run_dir / "total" / "executor_output.json").read_text())
    (metrics,) = output["artifacts"]["metrics"]["artifacts"]
    assert metrics["metadata"] == local.metrics == EXPECTED


def test_subprocess_runner_gives_the_values_and_metrics_of_a_local_run(tiny_notebook,
                                                                       tmp_path):
    local = _local_reference(tiny_notebook, tmp_path)
    run_dir = _run_kfp(tiny_notebook, FAKE_IMAGES, tmp_path,
                       kfp_local.SubprocessRunner(use_venv=False))
    _assert_same_as_local(run_dir, local)
    labels = open_store(str(run_dir / "weigh" / "data")).load("weigh", "labels")
    assert labels == ["3", "4"]  # the list's ints stayed ints through KFP's floats


def test_defaults_apply_when_no_argument_is_given(tiny_notebook, tmp_path):
    run_dir = _run_kfp(tiny_notebook, FAKE_IMAGES, tmp_path,
                       kfp_local.SubprocessRunner(use_venv=False), arguments={})
    store = open_store(str(run_dir / "total" / "data"))
    assert store.load("total", "total") == 2.0 * sum(range(5)) + (0 * 1 + 2 * 2)
    weigh = open_store(str(run_dir / "weigh" / "data"))
    assert weigh.load("weigh", "labels") == ["1", "2"]


def test_a_failing_step_fails_the_kfp_run(tmp_path, capfd):
    from tests.conftest import write_nb

    path = write_nb(tmp_path, *TINY[:3], ("step:boom", "raise ValueError('boom at ' + str(n))"),
                    name="kfp_fail.ipynb")
    images = {"make": "unused/make:1", "boom": "unused/boom:1"}
    with pytest.raises(RuntimeError, match="boom"):
        _run_kfp(path, images, tmp_path, kfp_local.SubprocessRunner(use_venv=False))
    log = capfd.readouterr().out
    assert "ValueError: boom at 7" in log
    assert "cellpipe step 'boom' failed (exit code 1: its code raised)" in log


@pytest.mark.docker
@pytest.mark.slow
def test_docker_runner_runs_each_step_in_its_image(tiny_images, tmp_path):
    path, images = tiny_images
    local = _local_reference(path, tmp_path)
    run_dir = _run_kfp(path, images, tmp_path,
                       kfp_local.DockerRunner(network_mode="none"))
    _assert_same_as_local(run_dir, local)
    labels = open_store(str(run_dir / "weigh" / "data")).load("weigh", "labels")
    assert labels == ["3", "4"]
    # written in the containers, by the images' non-root user
    for step in ("make", "weigh", "total"):
        assert (run_dir / step / "data" / step).stat().st_uid == 10001, step


def test_a_shared_image_pipeline_gives_the_values_of_a_local_run(tiny_notebook, tmp_path):
    """Compiled with no images at all (what `cellpipe compile --target kfp` does on a
    machine without Docker): the code travels in the components."""
    local = _local_reference(tiny_notebook, tmp_path)
    run_dir = _run_kfp(tiny_notebook, None, tmp_path, kfp_local.SubprocessRunner(use_venv=False),
                       shared="unused/notebook:1")
    _assert_same_as_local(run_dir, local)


@pytest.mark.docker
@pytest.mark.slow
def test_docker_runner_runs_every_step_in_one_shared_image(tiny_images, tmp_path):
    """One image holding cellpipe, numpy and kfp (here: the first step's built image, which
    has them) runs every step; nothing is built for the pipeline itself."""
    path, images = tiny_images
    local = _local_reference(path, tmp_path)
    run_dir = _run_kfp(path, None, tmp_path, kfp_local.DockerRunner(network_mode="none"),
                       shared=images["make"])
    _assert_same_as_local(run_dir, local)


def test_steps_talking_through_a_file_run_under_kfp_local(tmp_path, monkeypatch):
    """The file edge becomes a Dataset input and the file travels in the producer's Dataset
    (``--carry-files``); the consumer's value is the top-to-bottom one."""
    from tests.conftest import write_nb

    path = write_nb(tmp_path, "import pandas as pd",
                    ("step:produce", "pd.DataFrame({'v': [1, 2, 3]}).to_csv('f.csv', index=False)"),
                    ("step:consume", "total = int(pd.read_csv('f.csv')['v'].sum())"),
                    name="kfp_files.ipynb")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    run_dir = _run_kfp(path, {"produce": "unused/p:1", "consume": "unused/c:1"}, tmp_path,
                       kfp_local.SubprocessRunner(use_venv=False), arguments={})
    produced = open_store(str(run_dir / "produce" / "data"))
    assert list(produced.load("produce", "files-index")) == ["f.csv"]
    assert open_store(str(run_dir / "consume" / "data")).load("consume", "total") == 6
