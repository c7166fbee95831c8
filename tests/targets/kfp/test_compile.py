"""The KFP target's compiler: IR YAML from the kfp SDK, golden, deterministic, complete.

The golden IR lives in tests/golden/kfp/; regenerate it on purpose with
``CELLPIPE_REGEN_GOLDEN=1 python -m pytest tests/targets/kfp/test_compile.py``.
The last test is about ``submit_kfp``: no KFP API server can run here, so only its error
path is tested, against a closed port on 127.0.0.1.
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.targets.carried import missing_runtime_message
from cellpipe.targets.kfp.compile import VOLUME_PATH, compile_kfp
from cellpipe.targets.kfp.submit import submit_kfp
from tests.conftest import ROOT, SAMPLES, make_nb

pytest.importorskip("kfp", reason="kfp is installed by `.[kfp]`")

GOLDEN = ROOT / "tests" / "golden" / "kfp"
REGEN = os.environ.get("CELLPIPE_REGEN_GOLDEN") == "1"
SAMPLE = "sample_notebooks/tabular_tags.ipynb"
KFP_TYPES = {"int": "NUMBER_INTEGER", "float": "NUMBER_DOUBLE", "str": "STRING",
             "bool": "BOOLEAN", "list": "LIST", "dict": "STRUCT"}

# The same program in a fresh process, for the byte-identity test.
COMPILE_SCRIPT = """
import sys
from cellpipe import api
from cellpipe.targets.kfp.compile import compile_kfp
spec = api.compile_spec(sys.argv[1])
images = {s.name: "registry.example/cellpipe/" + s.name + ":golden" for s in spec.steps}
sys.stdout.write(compile_kfp(spec, images))
"""


def _images(spec):
    return {s.name: f"registry.example/cellpipe/{s.name}:golden" for s in spec.steps}


def _documents(text):
    documents = list(yaml.safe_load_all(text))
    platform = documents[1]["platforms"]["kubernetes"] if len(documents) > 1 else None
    return documents[0], platform


def _sample(monkeypatch):
    monkeypatch.chdir(ROOT)  # the notebook's relative path is part of the IR
    spec = api.compile_spec(SAMPLE)
    return spec, compile_kfp(spec, _images(spec))


def _executor(ir, task):
    component = ir["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    label = ir["components"][component]["executorLabel"]
    return ir["deploymentSpec"]["executors"][label]["container"]


def test_sample_ir_matches_the_golden_file(monkeypatch):
    _, text = _sample(monkeypatch)
    golden = GOLDEN / "tabular_tags.yaml"
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file; run with CELLPIPE_REGEN_GOLDEN=1 to create {golden}"
    assert text == golden.read_text(encoding="utf-8"), (
        "the KFP IR changed; if that is intended, regenerate with CELLPIPE_REGEN_GOLDEN=1")


def test_ir_is_byte_identical_across_processes_and_hash_seeds():
    outputs = [
        subprocess.run([sys.executable, "-c", COMPILE_SCRIPT, SAMPLE], cwd=ROOT, check=True,
                       capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "12345")
    ]
    assert outputs[0] == outputs[1]
    assert b"sdkVersion: kfp-" in outputs[0]


def test_one_component_per_step_in_its_image_with_the_dag_of_the_spec(monkeypatch):
    spec, text = _sample(monkeypatch)
    ir, platform = _documents(text)
    assert platform is None  # no cluster metadata: nothing Kubernetes-specific
    assert ir["pipelineInfo"]["name"] == "tabular-tags"
    tasks = ir["root"]["dag"]["tasks"]
    assert set(tasks) == {s.name for s in spec.steps}
    for step in spec.steps:
        task = tasks[step.name]
        assert sorted(task.get("dependentTasks", [])) == sorted(step.upstream), step.name
        container = _executor(ir, step.name)
        assert container["image"] == f"registry.example/cellpipe/{step.name}:golden"
        assert container["command"][:2] == ["sh", "-ec"]
        # no network at run time: the program KFP starts installs nothing (its last part is
        # the component's source, which may name the pip line in its missing-runtime error)
        assert "pip install" not in " ".join(container["command"][:-1])
        assert "pip install" not in container["command"][-1].replace(
            repr(missing_runtime_message()), "")
        # the data: one Dataset input per producer, one Dataset output
        inputs = task.get("inputs", {}).get("artifacts", {})
        producers = {a["taskOutputArtifact"]["producerTask"] for a in inputs.values()}
        assert producers == set(step.reads.values())
        outputs = ir["components"][task["componentRef"]["name"]]["outputDefinitions"]
        kinds = {name: a["artifactType"]["schemaTitle"] for name, a in outputs["artifacts"].items()}
        assert kinds["data"] == "system.Dataset"
        assert ("metrics" in kinds) == bool(step.metrics)
        # the parameters it reads, from the pipeline's
        params = task.get("inputs", {}).get("parameters", {})
        assert {k: v["componentInputParameter"] for k, v in params.items()} == {
            name: name for name in step.parameters}
        assert task["cachingOptions"] == {"enableCache": True}
    assert ir["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]["metrics"][
        "artifactType"]["schemaTitle"] == "system.Metrics"


def test_the_component_embeds_the_steps_spec_slice_and_calls_the_runtime(monkeypatch):
    spec, text = _sample(monkeypatch)
    ir, _ = _documents(text)
    source = _executor(ir, "train-logreg")["command"][3]
    function = next(node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef))
    assert function.name == "train_logreg"
    assert [a.arg for a in function.args.args] == ["C", "split_data", "data", "report", "figures"]
    constants = {node.targets[0].id: ast.literal_eval(node.value)
                 for node in function.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant)}
    assert constants["_step"] == "train-logreg"
    assert json.loads(constants["_spec"]) == spec.slice("train-logreg").to_dict()
    assert "from cellpipe.runtime.__main__ import main" in source


def test_pipeline_parameters_have_the_notebooks_types_and_defaults(monkeypatch):
    spec, text = _sample(monkeypatch)
    ir, _ = _documents(text)
    declared = ir["root"]["inputDefinitions"]["parameters"]
    assert set(declared) == {p.name for p in spec.parameters}
    for parameter in spec.parameters:
        entry = declared[parameter.name]
        assert entry["parameterType"] == KFP_TYPES[parameter.type], parameter.name
        assert entry["defaultValue"] == parameter.default_copy, parameter.name


def test_settings_and_cluster_metadata_reach_the_tasks():
    nb = make_nb(
        "import math",
        ("parameters", "k = 2\nopts = {'a': 1}\nflag = True\nname = 'x'\nthreshold = None"),
        (["step:load", "cpu:0.5", "memory:512Mi", "timeout:60"],
         "xs = [1, 4, 9]\nprint(flag, name, opts, threshold)"),
        (["step:roots", "gpu:1", "retries:2", "cache:off"],
         "roots = [math.sqrt(x) * k for x in xs]"),
        ("step:total", "total = sum(roots)"),
        ("metrics", "total"),
        metadata={"cellpipe": {"cluster": {
            "secrets": [{"env": "API_TOKEN", "secret": "api-credentials", "key": "token"}],
            "node_selector": {"pool": "cpu"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "labels": {"team": "fraud"}, "annotations": {"owner": "ana"},
            "volume": {"size": "10Gi", "storage_class": "standard"},
            "steps": {"roots": {"node_selector": {"pool": "gpu"}}}}}},
    )
    spec = api.compile_spec(nb)
    ir, platform = _documents(compile_kfp(spec, {s.name: "img:" + s.name
                                                 for s in spec.steps}))
    tasks = ir["root"]["dag"]["tasks"]
    declared = ir["root"]["inputDefinitions"]["parameters"]
    assert declared["opts"] == {"defaultValue": {"a": 1}, "isOptional": True,
                                "parameterType": "STRUCT"}
    assert declared["threshold"] == {"isOptional": True, "parameterType": "STRING"}
    assert declared["flag"]["parameterType"] == "BOOLEAN"
    load = _executor(ir, "load")["resources"]
    assert (load["resourceCpuLimit"], load["resourceMemoryLimit"]) == ("500m", "512Mi")
    accelerator = _executor(ir, "roots")["resources"]["accelerator"]
    assert (accelerator["resourceType"], accelerator["resourceCount"]) == ("nvidia.com/gpu", "1")
    assert tasks["roots"]["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["roots"]["cachingOptions"] == {}  # cache:off
    assert tasks["total"]["cachingOptions"] == {"enableCache": True}
    # Kubernetes: secrets as env, node selectors (the step's wins), tolerations, pod
    # metadata, the timeout, and a volume created for the run, mounted, deleted after
    executors = platform["deploymentSpec"]["executors"]
    for step in ("load", "roots", "total"):
        config = executors[f"exec-{step}"]
        assert config["secretAsEnv"][0]["secretName"] == "api-credentials"
        assert config["secretAsEnv"][0]["keyToEnv"] == [{"envVar": "API_TOKEN",
                                                         "secretKey": "token"}]
        assert config["nodeSelector"]["labels"] == {"pool": "gpu" if step == "roots" else "cpu"}
        assert config["tolerations"] == [{"effect": "NoSchedule", "key": "gpu",
                                          "operator": "Exists"}]
        assert config["podMetadata"] == {"annotations": {"owner": "ana"},
                                         "labels": {"team": "fraud"}}
        assert config["pvcMount"][0]["mountPath"] == VOLUME_PATH
        assert {"name": "CELLPIPE_VOLUME", "value": VOLUME_PATH} in _executor(ir, step)["env"]
    assert executors["exec-load"]["activeDeadlineSeconds"] == "60"
    assert tasks["createpvc"]["inputs"]["parameters"]["size"]["runtimeValue"]["constant"] == "10Gi"
    assert tasks["createpvc"]["cachingOptions"] == {}
    assert set(tasks["deletepvc"]["dependentTasks"]) == {"createpvc", "load", "roots", "total"}


def test_caching_can_be_turned_off_for_every_step():
    spec = api.compile_spec(SAMPLES / "tabular_tags.ipynb")
    ir, _ = _documents(compile_kfp(spec, _images(spec), caching=False))
    assert {json.dumps(t["cachingOptions"]) for t in ir["root"]["dag"]["tasks"].values()} == {
        "{}"}


def test_a_step_without_an_image_is_a_clear_error():
    spec = api.compile_spec(SAMPLES / "tabular_tags.ipynb")
    images = _images(spec)
    del images["evaluate"]
    with pytest.raises(CellpipeError, match="no image for step") as info:
        compile_kfp(spec, images)
    assert info.value.step == "evaluate"
    assert "cellpipe build" in str(info.value.hint)


def test_a_memory_kfp_cannot_take_names_the_step():
    nb = make_nb(("parameters", "k = 1"), (["step:big", "memory:1.5Gi"], "x = k"))
    spec = api.compile_spec(nb)
    with pytest.raises(CellpipeError, match="Kubeflow Pipelines cannot take") as info:
        compile_kfp(spec, {"big": "img:big"})
    assert info.value.step == "big"


def test_submit_to_an_unreachable_host_is_a_clear_error(tmp_path):
    """No KFP API server can run here: only the error path is tested (a closed port)."""
    package = tmp_path / "pipeline.yaml"
    spec = api.compile_spec(SAMPLES / "tabular_tags.ipynb")
    package.write_text(compile_kfp(spec, _images(spec)), encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    host = f"http://127.0.0.1:{port}"
    with pytest.raises(CellpipeError, match="cannot reach the Kubeflow Pipelines API") as info:
        submit_kfp(package, host, experiment="e", arguments={"C": 0.5}, watch=True, timeout=5)
    assert host in str(info.value)
    assert "port-forward" in str(info.value.hint)
    with pytest.raises(CellpipeError, match="no compiled pipeline"):
        submit_kfp(tmp_path / "missing.yaml", host, experiment=None, arguments={},
                   watch=False, timeout=None)


def test_the_ir_does_not_depend_on_hera_being_imported_first(tmp_path):
    """hera registers a process-wide YAML string style on import; the IR must not change."""
    script = (
        "import sys, json\n"
        "from cellpipe import api\n"
        "from cellpipe.targets.kfp.compile import compile_kfp\n"
        "if sys.argv[1] == 'hera':\n"
        "    import hera.workflows  # noqa\n"
        f"spec = api.compile_spec({str(SAMPLES / 'tabular_tags.ipynb')!r})\n"
        "images = {s.name: 'r/x:1' for s in spec.steps}\n"
        "sys.stdout.write(compile_kfp(spec, images))\n"
    )
    outputs = []
    for mode in ("hera", "plain"):
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                              text=True, cwd=ROOT, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
