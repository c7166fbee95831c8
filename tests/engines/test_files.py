"""Files between steps (issue 12): edges from file reads to the steps that write them, and a
cache key that covers the data files, helper modules and libraries a step uses."""

from __future__ import annotations

import os
import time

import nbformat
import pytest

from cellpipe import api
from tests.conftest import make_nb
from tests.engines.faithful import assert_faithful


def write(tmp_path, *cells, name="nb.ipynb"):
    path = tmp_path / name
    nbformat.write(make_nb(*cells), path)
    return path


def test_reads_link_to_the_step_that_wrote_the_file(tmp_path):
    nb = make_nb(
        "import os\nimport joblib\nimport pandas as pd\nOUT = 'out'",
        ("parameters", "region = 'north'"),
        ("step:write", "os.makedirs(OUT, exist_ok=True)\n"
                       "pd.DataFrame({'x': [1]}).to_csv(os.path.join(OUT, f'{region}.csv'))\n"
                       "joblib.dump({'a': 1}, 'model.pkl')"),
        ("step:other", "y = 2"),
        ("step:read", "df = pd.read_csv(f'out/{region}.csv')\nraw = pd.read_csv('data/raw.csv')\n"
                      "with open('model.pkl', 'rb') as f:\n    blob = f.read()"),
        ("step:plot", "import matplotlib.pyplot as plt\nplt.savefig(OUT + '/fig.png')"),
        ("step:unknown", "name = input\nwith open(name.__name__) as g:\n    pass"),
    )
    pipeline = api.analyze(nb)
    read = pipeline.step("read")
    assert dict(read.file_reads) == {"out/*.csv": "write", "data/raw.csv": None,
                                     "model.pkl": "write"}
    assert read.upstream == ("write",)
    [edge] = [e for e in pipeline.edges if e.target == "read"]
    assert edge.files == ("model.pkl", "out", "out/*.csv") and edge.variables == ()
    # writing into the folder another step made keeps their order
    assert pipeline.step("plot").file_order == {"write": ("out",)}
    travel = [d.message for d in pipeline.diagnostics if d.code == "CP311"]
    assert ("step 'read' runs after step 'write' because of files model.pkl, out, out/*.csv; "
            "on Argo and Kubeflow Pipelines they travel from step to step (Argo artifacts with "
            "an object store, else the run's store)") in travel
    [info] = [d for d in pipeline.diagnostics if d.code == "CP310"]
    assert info.step == "unknown" and (info.cell, info.line) == (6, 2)
    spec = api.compile_spec(nb)
    assert spec.step("read").file_reads["data/raw.csv"] is None


@pytest.mark.slow
def test_two_steps_talking_through_files_run_in_order_under_two_workers(tmp_path):
    path = write(
        tmp_path,
        "import time\nimport joblib\nimport pandas as pd",
        ("step:produce", "time.sleep(0.3)\nframe = pd.DataFrame({'v': range(5)})\n"
                         "frame.to_csv('features.csv', index=False)\n"
                         "joblib.dump(frame['v'].sum(), 'total.pkl')"),
        ("step:consume", "features = pd.read_csv('features.csv')\n"
                         "total = joblib.load('total.pkl')\nboth = len(features) + total"),
    )
    for attempt in range(3):
        (tmp_path / "features.csv").unlink(missing_ok=True)
        run = api.run(path, root=tmp_path / ".cellpipe", workers=2, cache=False)
        assert run.status == "succeeded", (attempt, run.steps)
        assert run.load("both") == 15
    assert_faithful(path, tmp_path)


@pytest.mark.slow
def test_the_cache_reruns_exactly_what_a_changed_file_module_or_parameter_touches(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("v\n1\n2\n")
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    path = write(
        tmp_path,
        "import pandas as pd",
        ("parameters", "k = 1"),
        ("step:load", "frame = pd.read_csv('data/train.csv')"),
        ("step:twice", "import helpers\ntwice = helpers.double(frame['v'].sum())"),
        ("step:scaled", "scaled = frame['v'].sum() * k"),
        ("step:config", "settings = open('settings.txt').read()"),
        ("step:declared", "listing = 1"),
    )
    cell = nbformat.read(path, as_version=4)
    cell.cells[-1].metadata["tags"] = ["step:declared", "inputs:extra/*.txt"]
    nbformat.write(cell, path)
    (tmp_path / "settings.txt").write_text("a")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "one.txt").write_text("1")

    def reasons(**params):
        run = api.run(path, params, root=tmp_path / ".cellpipe")
        assert run.status == "succeeded", run.steps
        return {n: (s["status"], s.get("reason", "")) for n, s in run.steps.items()}, run

    first, run = reasons()
    assert all(status == "succeeded" for status, _ in first.values())
    assert run.steps["load"]["files"]["data/train.csv"]["from"] == "external"
    again, _ = reasons()
    assert all(status == "cached" for status, _ in again.values()), again

    (tmp_path / "data" / "train.csv").write_text("v\n1\n2\n3\n")
    changed, _ = reasons()
    assert changed["load"] == ("succeeded", "file data/train.csv changed")
    assert changed["twice"][1] == "input frame changed"
    assert changed["config"][0] == changed["declared"][0] == "cached"

    (tmp_path / "helpers.py").write_text("def double(x):\n    return x + x\n")
    changed, _ = reasons()
    assert changed["twice"] == ("succeeded", "module helpers changed")
    assert {n for n, (s, _) in changed.items() if s == "succeeded"} == {"twice"}

    (tmp_path / "settings.txt").write_text("b")
    (tmp_path / "extra" / "two.txt").write_text("2")
    changed, _ = reasons()
    assert changed["config"] == ("succeeded", "file settings.txt changed")
    assert changed["declared"] == ("succeeded", "file extra/two.txt is new")
    assert {n for n, (s, _) in changed.items() if s == "succeeded"} == {"config", "declared"}

    changed, _ = reasons(k=3)
    assert changed["scaled"] == ("succeeded", "parameter k changed")
    assert {n for n, (s, _) in changed.items() if s == "succeeded"} == {"scaled"}

    edited = nbformat.read(path, as_version=4)  # the notebook: one step's code
    edited.cells[4].source = "scaled = frame['v'].sum() * k * 1.0"
    nbformat.write(edited, path)
    changed, _ = reasons(k=3)
    assert changed["scaled"] == ("succeeded", "its code changed")
    assert {n for n, (s, _) in changed.items() if s == "succeeded"} == {"scaled"}


def test_distribution_versions_and_python_are_part_of_the_key():
    from cellpipe.engines.cache import StepCache, step_key_parts
    from cellpipe.engines.inputs import distribution_versions

    versions = distribution_versions({"sklearn", "pandas", "json"})
    assert {"python", "scikit-learn", "pandas"} <= set(versions)
    step = api.compile_spec(make_nb(("step:a", "x = 1"))).step("a")
    old = step_key_parts(step, {}, {}, "env", distributions={**versions,
                                                             "scikit-learn": "1.5.2"})
    new = step_key_parts(step, {}, {}, "env", distributions=versions)
    import tempfile

    cache = StepCache(tempfile.mkdtemp())
    cache.why("nb.ipynb", "s", old)
    assert cache.why("nb.ipynb", "s", new) == f"scikit-learn 1.5.2 → {versions['scikit-learn']}"


def test_inputs_tag_and_step_option_declare_files():
    nb = make_nb((["step:a", "inputs:data/*.csv", "inputs:config.yaml"], "x = 1"))
    nb.cells.append(nbformat.v4.new_code_cell("%%step b --inputs raw/,more.txt\ny = 2"))
    pipeline = api.analyze(nb)
    assert pipeline.step("a").settings["inputs"] == ["data/*.csv", "config.yaml"]
    assert pipeline.step("b").settings["inputs"] == ["raw/", "more.txt"]
    api.compile_spec(nb)  # the schema accepts it


def test_appending_steps_stay_parallel_and_a_reader_runs_after_all_of_them():
    nb = make_nb(
        ("step:a", "open('log.txt', 'a').write('a')"),
        ("step:b", "with open('log.txt', 'a') as log:\n    log.write('b')"),
        ("step:c", "lines = open('log.txt').read()"),
        ("step:d", "open('log.txt', 'w').write('reset')"),
    )
    pipeline = api.analyze(nb)
    assert pipeline.step("b").upstream == ()
    assert pipeline.step("c").upstream == ("a", "b")
    # overwriting: after the last writer and after every step that read it before
    assert set(pipeline.step("d").upstream) == {"a", "b", "c"}


def run_in_pods(tmp_path, path, steps):
    """Run ``steps`` as cluster pods would: each in its own folder, only the store shared
    (``--carry-files``); return the store."""
    import subprocess
    import sys

    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.compile_spec(path).to_json())
    store = tmp_path / "store"
    for step in steps:
        pod = tmp_path / f"pod-{step}"
        pod.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "cellpipe.runtime", "--spec", str(spec_path), "--step", step,
             "--store", str(store), "--step-dir", str(pod / "step"), "--carry-files"],
            cwd=pod, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    return store


def test_files_travel_through_the_store_between_steps_that_share_no_folder(tmp_path):
    """What a cluster pod does: the producer and the consumer run in different folders
    with only the store in common (``--carry-files``, set by the argo and kfp targets)."""
    import json

    path = write(
        tmp_path,
        "import os\nimport pandas as pd",
        ("step:produce", "os.makedirs('out', exist_ok=True)\n"
                         "pd.DataFrame({'v': [1, 2]}).to_csv('out/features.csv', index=False)"),
        ("step:consume", "total = int(pd.read_csv('out/features.csv')['v'].sum())"),
    )
    store = run_in_pods(tmp_path, path, ("produce", "consume"))
    assert (tmp_path / "pod-consume" / "out" / "features.csv").read_text() == "v\n1\n2\n"
    from cellpipe.marshal import open_store

    assert open_store(str(store)).load("consume", "total") == 3
    result = json.loads((tmp_path / "pod-produce" / "step" / "result.json").read_text())
    assert list(result["files"]) == ["out/features.csv"]


def test_cluster_targets_carry_the_files_of_steps_that_use_them(tmp_path):
    from cellpipe.targets.argo.compile import compile_argo, to_yaml
    from cellpipe.targets.cluster import cluster_settings
    from cellpipe.targets.kfp.compile import compile_kfp

    path = write(tmp_path, "import pandas as pd",
                 ("step:produce", "pd.DataFrame({'v': [1]}).to_csv('f.csv')"),
                 ("step:consume", "x = pd.read_csv('f.csv')"),
                 ("step:alone", "y = 1"))
    spec = api.compile_spec(path)
    images = {s.name: f"img/{s.name}:1" for s in spec.steps}
    workflow = to_yaml(compile_argo(spec, images, cluster_settings(spec)))
    assert workflow.count("--carry-files") == 2  # produce and consume, not alone
    pipeline = compile_kfp(spec, images)
    assert pipeline.count("--carry-files") >= 2
    # the consumer takes the producer's Dataset as an input although it reads no value
    assert "produce_data: Input[Dataset]" in pipeline


def test_declared_inputs_link_to_the_steps_writing_into_them_and_travel(tmp_path):
    """``inputs:out`` on a step whose read analysis cannot see (a glob at run time) links it
    to every earlier step writing into ``out/``; the files travel through the store."""

    from cellpipe.marshal import open_store

    path = write(
        tmp_path,
        "import glob\nimport os",
        ("step:a", "os.makedirs('out', exist_ok=True)\nopen('out/a.txt', 'w').write('1')"),
        ("step:b", "os.makedirs('out', exist_ok=True)\nopen('out/b.txt', 'w').write('22')"),
        (["step:sizes", "inputs:out"],
         "sizes = {p: len(open(p).read()) for p in sorted(glob.glob('out/*.txt'))}"),
        (["step:raw", "inputs:raw/"], "raw = sorted(os.listdir('raw'))"),
    )
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.csv").write_text("x\n1\n")
    pipeline = api.analyze(nbformat.read(path, as_version=4))
    sizes = pipeline.step("sizes")
    assert sizes.upstream == ("a", "b")
    assert dict(sizes.file_reads) == {"out": "b", "out/a.txt": "a", "out/b.txt": "b"}
    assert dict(pipeline.step("raw").file_reads) == {"raw": None}  # external: in the key
    assert_faithful(path, tmp_path, workers=2)

    store = run_in_pods(tmp_path, path, ("a", "b", "sizes"))
    assert open_store(str(store)).load("sizes", "sizes") == {"out/a.txt": 1, "out/b.txt": 2}


def _argo_pipeline(tmp_path):
    from cellpipe.targets.argo.compile import compile_argo
    from cellpipe.targets.cluster import cluster_settings

    nb = make_nb(
        "import joblib\nimport pandas as pd",
        ("parameters", "region = 'north'"),
        ("step:produce", "pd.DataFrame({'v': [1, 2]}).to_csv('features.csv', index=False)\n"
                         "joblib.dump({'w': 3}, 'model.pkl')\n"
                         "pd.DataFrame({'r': [5]}).to_csv(f'by_{region}.csv', index=False)"),
        ("step:consume", "total = int(pd.read_csv('features.csv')['v'].sum())\n"
                         "w = joblib.load('model.pkl')['w']\n"
                         "r = int(pd.read_csv(f'by_{region}.csv')['r'][0])"),
    )
    nb.metadata["cellpipe"] = {"cluster": {
        "storage": "s3://ml-bucket/runs",
        "storage_secret": {"secret": "s3", "access_key": "id", "secret_key": "key"},
        "storage_endpoint": "http://minio.ml:9000"}}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    spec = api.compile_spec(path)
    images = {s.name: f"img/{s.name}:1" for s in spec.steps}
    return path, spec, compile_argo(spec, images, cluster_settings(spec))


def test_with_an_object_store_argo_moves_fixed_files_as_artifacts_in_the_manifest(tmp_path):
    from hera.workflows import models as hera_models

    _, _, manifest = _argo_pipeline(tmp_path)
    hera_models.Workflow.model_validate(manifest)
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    produce, consume = templates["produce"], templates["consume"]
    # the files' artifacts (the UI's report and figures are the steps' others)
    outputs = {a["name"]: a for a in produce["outputs"]["artifacts"]
               if a["name"].startswith("file-")}
    assert set(outputs) == {"file-features-csv", "file-model-pkl"}  # the pattern: the store
    features = outputs["file-features-csv"]
    assert features["path"] == "/home/cellpipe/work/features.csv"
    assert features["optional"] is True
    assert features["s3"] == {
        "bucket": "ml-bucket", "key": "runs/{{workflow.name}}/.files/produce/features.csv.tgz",
        "endpoint": "minio.ml:9000", "insecure": True,
        "accessKeySecret": {"name": "s3", "key": "id"},
        "secretKeySecret": {"name": "s3", "key": "key"}}
    assert {a["name"]: a["path"] for a in consume["inputs"]["artifacts"]} == {
        "file-features-csv": "/home/cellpipe/work/features.csv",
        "file-model-pkl": "/home/cellpipe/work/model.pkl"}
    task = next(t for t in templates["main"]["dag"]["tasks"] if t["name"] == "consume")
    assert {a["name"]: a["from"] for a in task["arguments"]["artifacts"]} == {
        "file-features-csv": "{{tasks.produce.outputs.artifacts.file-features-csv}}",
        "file-model-pkl": "{{tasks.produce.outputs.artifacts.file-model-pkl}}"}
    for template in (produce, consume):
        assert template["container"]["workingDir"] == "/home/cellpipe/work"
        command = template["container"]["command"]
        assert command[command.index("--carry-files") + 1] == "workflow"


def test_the_docker_images_work_where_argo_puts_the_artifacts():
    from cellpipe.engines.docker.context import WORKDIR
    from cellpipe.targets.argo import compile as argo

    assert argo.WORKDIR == WORKDIR


def _play_argo(tmp_path, spec, manifest, tamper=None):
    """Run the workflow as Argo's executor would: each step in its own pod folder with only
    the store in common, the output artifacts copied to the readers' input artifact paths."""
    import shutil
    import subprocess
    import sys

    spec_path = tmp_path / "spec.json"
    spec_path.write_text(spec.to_json())
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    store, done = tmp_path / "store", {}
    outputs: dict[str, str] = {}  # "tasks.X.outputs.artifacts.Y" → the file Argo keeps
    for task in templates["main"]["dag"]["tasks"]:
        template = templates[task["template"]]
        pod = tmp_path / f"pod-{task['name']}"
        pod.mkdir()
        paths = {a["name"]: a["path"] for a in template.get("inputs", {}).get("artifacts", [])}
        for argument in task.get("arguments", {}).get("artifacts", []):
            kept = outputs[argument["from"].strip("{}")]
            target = pod / paths[argument["name"]].removeprefix("/home/cellpipe/work/")
            shutil.copyfile(kept, target)
            if tamper:
                tamper(target)
        command = template["container"]["command"]
        command = [sys.executable if c == "python" else c for c in command]
        command[command.index("--store") + 1] = str(store)
        command[command.index("--spec") + 1] = str(spec_path)
        command[command.index("--step-dir") + 1] = str(pod / "step")
        command[command.index("--outputs-dir") + 1] = str(pod / "outputs")
        command = [c.replace("{{inputs.parameters.region}}", "north") for c in command]
        done[task["name"]] = subprocess.run(command, cwd=pod, capture_output=True, text=True,
                                            check=False)
        if done[task["name"]].returncode != 0:
            continue  # Argo keeps no output artifact of a failed step
        for artifact in template.get("outputs", {}).get("artifacts", []):
            if not artifact["name"].startswith("file-"):
                continue  # the UI's report and figures: no reader takes them
            kept = tmp_path / "argo-artifacts" / task["name"] / artifact["name"]
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pod / artifact["path"].removeprefix("/home/cellpipe/work/"), kept)
            outputs[f"tasks.{task['name']}.outputs.artifacts.{artifact['name']}"] = str(kept)
    return store, done


def test_files_argo_moves_reach_the_reader_and_are_checked_by_sha256(tmp_path):
    from cellpipe.marshal import open_store

    _, spec, manifest = _argo_pipeline(tmp_path)
    (tmp_path / "ok").mkdir()
    store, done = _play_argo(tmp_path / "ok", spec, manifest)
    assert all(d.returncode == 0 for d in done.values()), {k: d.stderr for k, d in done.items()}
    values = open_store(str(store))
    assert (values.load("consume", "total"), values.load("consume", "w"),
            values.load("consume", "r")) == (3, 3, 5)
    # the pattern (f'by_{region}.csv') went through the store; the fixed paths did not
    index = values.load("produce", "files-index")
    assert index["features.csv"]["artifact"] is None and index["by_north.csv"]["artifact"]

    def tamper(target):
        if target.name == "model.pkl":
            target.write_bytes(target.read_bytes() + b"\0")

    (tmp_path / "bad").mkdir()
    _, done = _play_argo(tmp_path / "bad", spec, manifest, tamper=tamper)
    assert done["consume"].returncode == 2
    assert "file model.pkl that step 'produce' wrote has other content here" in \
        done["consume"].stderr

    (tmp_path / "lost").mkdir()
    _, done = _play_argo(tmp_path / "lost", spec, manifest,
                         tamper=lambda target: target.name == "features.csv" and target.unlink())
    assert done["consume"].returncode == 2
    assert "file features.csv that step 'produce' wrote is not here" in done["consume"].stderr


def test_the_distribution_map_is_kept_between_runs_and_rescanned_when_one_is_installed(
        tmp_path, monkeypatch):
    """Scanning every installed distribution costs ~0.7 s in a JupyterLab environment: it is
    kept in the run root's cache, and an install (a new ``*.dist-info`` folder) rescans."""
    from cellpipe.engines import inputs

    site = tmp_path / "site"
    (site / "other-1.0.dist-info").mkdir(parents=True)  # a folder that holds distributions
    monkeypatch.syspath_prepend(str(site))
    cache = tmp_path / "cache" / "distributions.json"
    inputs._DISTRIBUTIONS.clear()
    assert "demodist" not in inputs.distribution_versions({"demodist"}, cache=cache)
    assert cache.is_file()
    inputs._DISTRIBUTIONS.clear()  # a new process: the map comes from the cache
    scans = []
    monkeypatch.setattr(inputs, "_scan_distributions",
                        lambda real=inputs._scan_distributions: scans.append(1) or real())
    inputs.distribution_versions({"pandas"}, cache=cache)
    assert scans == []

    def install(version):
        for old in site.glob("demodist*"):
            import shutil

            shutil.rmtree(old)
        (site / "demodist").mkdir()
        (site / "demodist" / "__init__.py").write_text("")
        info = site / f"demodist-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: demodist\n"
                                       f"Version: {version}\n")
        (info / "top_level.txt").write_text("demodist\n")
        (info / "RECORD").write_text("demodist/__init__.py,,\n")
        os.utime(site, ns=(time.time_ns(), time.time_ns() + int(1e9)))  # coarse clocks

    install("1.0")
    assert inputs.distribution_versions({"demodist"}, cache=cache)["demodist"] == "1.0"
    install("1.1")
    assert inputs.distribution_versions({"demodist"}, cache=cache)["demodist"] == "1.1"
    assert len(scans) == 2
