"""The docker engine on a real daemon: images built offline, steps in containers.

Every test here builds and runs real images (base image from scripts/docker_up.sh). The
small notebooks import only numpy, so they share one dependency layer, built once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import nbformat
import pytest

from cellpipe import api
from tests.conftest import ROOT, make_nb, sample_paths, write_nb
from tests.engines.compare import assert_same
from tests.engines.docker.conftest import REGISTRY
from tests.engines.faithful import final_names

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TINY = [
    ("", "import json\nimport numpy as np"),
    ("parameters", "n = 5\nscale = 2.0"),
    ("step:make", "values = np.arange(n) * scale\nprint('made', values)"),
    ("step:total", "total = float(values.sum())\nprint(json.dumps({'total': total}))"),
    ("metrics", "total"),
]


def _run(path, tmp_path, **options):
    return api.run(path, root=tmp_path / ".cellpipe", **options)


def test_a_small_pipeline_gives_the_same_values_and_records_as_local(tmp_path, docker_env):
    path = write_nb(tmp_path, *TINY)
    local = _run(path, tmp_path, parameters={"n": 7})
    docker = _run(path, tmp_path, parameters={"n": 7}, engine="docker")
    assert docker.status == "succeeded", json.dumps(docker.steps, indent=1)
    assert docker.data["engine"] == "docker"
    assert docker.metrics == local.metrics == {"total": 42.0}
    for name in ("values", "total"):
        assert_same(local.load(name), docker.load(name), name)
    state = docker.steps["make"]
    assert state["container"] and state["image"].startswith("cellpipe/nb-make:")
    assert "made [ 0.  2.  4.  6.  8. 10. 12.]" in docker.log("make")  # logs streamed in
    assert (docker.path / "steps" / "make" / "report.ipynb").exists()
    # same cache as local: an unchanged rerun runs nothing, a new parameter reruns 'make'
    again = _run(path, tmp_path, parameters={"n": 7}, engine="docker")
    assert {s["status"] for s in again.steps.values()} == {"cached"}
    changed = _run(path, tmp_path, parameters={"n": 3}, engine="docker")
    assert changed.steps["make"]["reason"] == "parameter n changed"
    assert changed.metrics == {"total": 6.0}


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_sample_notebooks_give_the_same_values_in_containers(path, tmp_path, docker_env):
    local = _run(path, tmp_path)
    docker = _run(path, tmp_path, engine="docker", cache=False)
    assert docker.status == "succeeded", json.dumps(docker.steps, indent=1)[:4000]
    assert {s.get("image", "")[:9] for s in docker.steps.values()} == {"cellpipe/"}
    assert docker.metrics == pytest.approx(local.metrics, rel=1e-12)
    for name in final_names(api.compile_spec(path)):
        assert_same(local.load(name), docker.load(name), name)


def test_images_hold_no_secrets_or_outputs_and_run_as_non_root(tmp_path, docker_env,
                                                               monkeypatch):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    output = f"OUTPUT-TOKEN-{uuid.uuid4().hex}"
    monkeypatch.setenv("CELLPIPE_TEST_TOKEN", secret)
    (tmp_path / ".netrc").write_text(f"machine example login me password {secret}\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    nb = make_nb(*TINY)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    nb.cells[2].execution_count = 1
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    images = api.build_images(path)
    client = docker_env
    for step, built in images.items():
        image = client.images.get(built.ref)
        config = image.attrs["Config"]
        assert config["User"] == "10001:10001", step
        assert config["WorkingDir"] == "/home/cellpipe/work", step
        assert not any(secret in item for item in config.get("Env") or []), step
        whole = _image_contents(image)
        assert secret.encode() not in whole, f"{step}: the secret is in the image"
        assert output.encode() not in whole, f"{step}: a notebook output is in the image"
        code = {"make": b"values = np.arange(n) * scale", "total": b"float(values.sum())"}
        assert code[step] in whole  # what is searched is really there: the step's code
        shell = client.containers.run(built.ref, entrypoint=["sh", "-c"],
                                      command=["id -u; ls /tmp/cellpipe-wheels 2>&1 || true"],
                                      network_mode="none", remove=True).decode()
        uid, *rest = shell.splitlines()
        assert uid == "10001", step
        assert "No such file" in " ".join(rest), f"{step}: wheels left in the image"


def _image_contents(image) -> bytes:
    """Every file of every layer of ``image`` (``docker save``, layers unpacked), joined."""
    import gzip
    import io
    import tarfile

    parts = []
    with tarfile.open(fileobj=io.BytesIO(b"".join(image.save(named=False)))) as saved:
        for member in saved.getmembers():
            if not member.isfile():
                continue
            blob = saved.extractfile(member).read()
            if blob[:2] == b"\x1f\x8b":
                blob = gzip.decompress(blob)
            try:
                with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                    parts.extend(layer.extractfile(item).read()
                                 for item in layer.getmembers() if item.isfile())
            except tarfile.TarError:
                parts.append(blob)  # the manifest and config JSON
    return b"\n".join(parts)


def test_one_line_change_rebuilds_only_that_steps_code_layer(tmp_path, docker_env):
    path = write_nb(tmp_path, *TINY)
    first = api.build_images(path)
    cells = list(TINY)
    cells[3] = ("step:total", "total = float(values.sum()) + 1.0\n"
                              "print(json.dumps({'total': total}))")
    path = write_nb(tmp_path, *cells)
    second = api.build_images(path)
    assert second["make"].status == "reused" and second["make"].ref == first["make"].ref
    assert second["total"].status == "built" and second["total"].ref != first["total"].ref
    assert second["total"].deps_status == "reused"
    assert second["total"].deps_ref == first["total"].deps_ref
    client = docker_env
    deps_layers = client.images.get(second["total"].deps_ref).attrs["RootFS"]["Layers"]
    step_layers = client.images.get(second["total"].ref).attrs["RootFS"]["Layers"]
    assert step_layers[:-1] == deps_layers  # one new layer on the shared ones
    # the code layer's size: what the step image holds beyond its dependency image
    added = (client.images.get(second["total"].ref).attrs["Size"]
             - client.images.get(second["total"].deps_ref).attrs["Size"])
    assert 0 < added < 1_000_000


def test_push_to_and_pull_from_the_local_registry(tmp_path, docker_env):
    import urllib.request

    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5).close()
    except OSError as exc:
        pytest.skip(f"no registry at {REGISTRY} ({exc}); run `bash scripts/docker_up.sh`")
    prefix = f"{REGISTRY}/cellpipe-test-{uuid.uuid4().hex[:8]}"
    path = write_nb(tmp_path, *TINY)
    pushed = api.build_images(path, registry=prefix)
    assert {i.pushed for i in pushed.values()} == {"pushed"}
    assert all(i.ref.startswith(prefix + "/nb-") for i in pushed.values())
    again = api.build_images(path, registry=prefix)
    assert {(i.status, i.pushed) for i in again.values()} == {("reused", "present")}
    client = docker_env
    ref = pushed["total"].ref
    client.images.remove(ref)
    client.images.pull(ref)
    out = client.containers.run(ref, entrypoint=["python", "-c"],
                                command=["import numpy, cellpipe.runtime; print('ok')"],
                                network_mode="none", remove=True)
    assert out.decode().strip() == "ok"


def test_a_failed_step_resumes_in_place_in_containers(tmp_path, docker_env):
    tmp_path.chmod(0o755)  # the step reads a file beside the notebook, as the image's user
    flag = tmp_path / "ready.flag"
    path = write_nb(
        tmp_path,
        ("step:first", "import numpy as np\na = np.arange(3)"),
        ("step:second", "import os\n"
                        "if not os.path.exists('ready.flag'):\n"
                        "    raise RuntimeError('not ready yet')\n"
                        "b = a * 2"),
    )
    failed = _run(path, tmp_path, engine="docker")
    assert failed.status == "failed"
    assert failed.steps["first"]["status"] == "succeeded"
    assert "not ready yet" in failed.steps["second"]["error"]["message"]
    flag.write_text("ok")
    resumed = _run(path, tmp_path, engine="docker", resume=failed.id)
    assert resumed.id == failed.id and resumed.status == "succeeded"
    assert resumed.steps["first"]["status"] == "succeeded"  # kept, not rerun
    assert list(resumed.load("b")) == [0, 2, 4]


def test_containers_have_no_network_unless_asked(tmp_path, docker_env):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    try:
        path = write_nb(tmp_path, ("step:probe", (
            "import socket\nimport numpy as np\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=3).close()\n"
            "    reached = True\n"
            "except OSError:\n"
            "    reached = False\n")))
        assert _run(path, tmp_path).load("reached") is True
        assert _run(path, tmp_path, engine="docker", cache=False).load("reached") is False
        asked = _run(path, tmp_path, engine="docker", cache=False, network="host")
        assert asked.load("reached") is True
    finally:
        server.close()


def test_limits_timeouts_and_memory_come_from_the_annotations(tmp_path, docker_env):
    path = write_nb(
        tmp_path,
        ("step:slow", "import time\nimport numpy as np\ntime.sleep(60)\nx = 1"),
    )
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].metadata.tags = ["step:slow", "timeout:3"]
    nbformat.write(nb, path)
    run = _run(path, tmp_path, engine="docker")
    assert run.steps["slow"]["status"] == "failed"
    assert run.steps["slow"]["error"]["message"] == "timed out after 3 s"
    assert run.steps["slow"]["duration"] < 30
    client = docker_env
    assert not client.containers.list(all=True, filters={"label": "org.cellpipe.run=" + run.id})

    path = write_nb(tmp_path, ("step:hungry", "import numpy as np\n"
                                              "big = np.ones(400 * 2**20 // 8)\nx = 1"),
                    name="hungry.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].metadata.tags = ["step:hungry", "memory:64Mi"]
    nbformat.write(nb, path)
    run = _run(path, tmp_path, engine="docker")
    assert run.steps["hungry"]["status"] == "failed"
    assert "out of memory" in run.steps["hungry"]["error"]["message"]


def test_cellpipe_build_prints_each_steps_image(tmp_path, docker_env):
    path = write_nb(tmp_path, *TINY)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    first = subprocess.run([sys.executable, "-m", "cellpipe", "build", str(path)],
                           capture_output=True, text=True, env=env, timeout=900)
    assert first.returncode == 0, first.stderr
    lines = [line.split("\t") for line in first.stdout.splitlines()]
    assert [line[0] for line in lines] == ["make", "total"]
    assert all(line[1].startswith("cellpipe/nb-") for line in lines)
    second = subprocess.run([sys.executable, "-m", "cellpipe", "build", str(path)],
                            capture_output=True, text=True, env=env, timeout=900)
    assert [line.split("\t")[2] for line in second.stdout.splitlines()] == ["reused"] * 2


def test_ctrl_c_stops_the_containers_and_keeps_what_finished(tmp_path, docker_env):
    import signal
    import time

    path = write_nb(tmp_path, ("step:fast", "import numpy as np\nx = np.ones(1)"),
                    ("step:slow", "import time\ntime.sleep(120)\ny = x"))
    root = tmp_path / ".cellpipe"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellpipe", "run", str(path), "--root", str(root),
         "--engine", "docker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )
    run_file = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and run_file is None:
        time.sleep(0.3)
        for candidate in root.glob("runs/*/run.json"):
            try:
                state = json.loads(candidate.read_text())["steps"]["slow"]
            except (ValueError, KeyError):
                continue
            if state.get("status") == "running" and state.get("container"):
                run_file = candidate
    assert run_file is not None, "the slow step's container never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run cancelled" in err and "Traceback" not in err
    data = json.loads(run_file.read_text())
    assert data["status"] == "cancelled"
    assert data["steps"]["fast"]["status"] == "succeeded"
    assert data["steps"]["slow"]["status"] == "cancelled"
    left = docker_env.containers.list(all=True, filters={"label": f"org.cellpipe.run={data['id']}"})
    assert not left, "a container outlived the cancelled run"


def test_a_steps_image_tag_names_its_base_image(tmp_path, docker_env, monkeypatch):
    from tests.engines.docker.conftest import BASE_IMAGE

    monkeypatch.setenv("CELLPIPE_BASE_IMAGE", "cellpipe-no-such-base:0")
    path = write_nb(tmp_path, (["step:only", f"image:{BASE_IMAGE}"],
                               "import numpy as np\nx = np.ones(2)"))
    images = api.build_images(path)
    assert images["only"].status in ("built", "reused")
    path = write_nb(tmp_path, ("step:other", "import numpy as np\nx = np.ones(2)"),
                    name="other.ipynb")
    with pytest.raises(Exception, match="cellpipe-no-such-base:0 is not on this machine"):
        api.build_images(path)
