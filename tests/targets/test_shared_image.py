"""One image for every step, no build: `compile --target argo|kfp` works without Docker.

Without ``--registry`` or ``--images`` every step runs one image (``--image``, else the
pipeline's base image) and its code travels in the document: in the KFP component, as
Argo raw input artifacts (the step's spec slice and a start script). The start script
says what to install when the image lacks cellpipe. The Argo workflow is played here as
its executor would (each step in its own pod folder, the raw artifacts written where the
manifest says, the store shared) and must end with the values of a local run; the KFP IR
is loaded back by the kfp SDK and run by kfp.local in tests/targets/kfp/test_local_run.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cellpipe import __version__, api
from cellpipe.core.layout import CARRIED_SPEC, CARRIED_START, CARRIED_STEP_DIR
from tests.conftest import ROOT, SAMPLES, write_nb
from tests.engines.compare import assert_same

GOLDEN = ROOT / "tests" / "golden"
REGEN = os.environ.get("CELLPIPE_REGEN_GOLDEN") == "1"
SAMPLE = SAMPLES / "tabular_tags.ipynb"
NO_DOCKER = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:9"}  # nothing listens there


def _golden(text: str, name: str) -> None:
    golden = GOLDEN / name
    if REGEN:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), (
        f"compiles differently from {name}; regenerate with CELLPIPE_REGEN_GOLDEN=1 if meant")


def test_argo_without_images_carries_each_steps_code_as_raw_artifacts(monkeypatch):
    from hera.workflows import models as hera_models

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("CELLPIPE_BASE_IMAGE", raising=False)
    text = api.compile_target(SAMPLE.relative_to(ROOT), "argo", image="ml/notebook:2.1")
    _golden(text, "argo/tabular_tags.shared.workflow.yaml")
    manifest = yaml.safe_load(text)
    model = hera_models.Workflow.model_validate(manifest)
    assert model.model_dump(by_alias=True, exclude_none=True) == manifest  # nothing lost
    spec = api.compile_spec(SAMPLE.relative_to(ROOT))
    templates = {t["name"]: t for t in manifest["spec"]["templates"] if "container" in t}
    assert len(templates) == len(spec.steps)
    for step in spec.steps:
        template = templates[step.name]
        assert template["container"]["image"] == "ml/notebook:2.1"
        command = template["container"]["command"]
        assert command[:4] == ["python", CARRIED_START, "--spec", CARRIED_SPEC]
        raw = {a["name"]: a for a in template["inputs"]["artifacts"] if "raw" in a}
        carried = api.PipelineSpec.from_json(raw["cellpipe-spec"]["raw"]["data"])
        assert carried == spec.slice(step.name) and raw["cellpipe-spec"]["path"] == CARRIED_SPEC
        assert raw["cellpipe-start"]["path"] == CARRIED_START
        # the code is a file the pod gets, not text pasted into a shell command
        assert not any("\n" in part for part in command)


def test_kfp_without_images_loads_back_with_one_image_for_every_step(monkeypatch):
    from kfp import components

    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("CELLPIPE_BASE_IMAGE", raising=False)
    text = api.compile_target(SAMPLE.relative_to(ROOT), "kfp", image="ml/notebook:2.1")
    _golden(text, "kfp/tabular_tags.shared.yaml")
    pipeline = components.load_component_from_text(text)
    assert pipeline.name == "tabular-tags"
    ir = next(yaml.safe_load_all(text))
    images = {name: executor["container"]["image"]
              for name, executor in ir["deploymentSpec"]["executors"].items()}
    assert set(images.values()) == {"ml/notebook:2.1"}
    assert len(images) == len(api.compile_spec(SAMPLE.relative_to(ROOT)).steps)
    assert "this image has no cellpipe step runtime" in text  # said by the component


def test_the_cli_compiles_for_both_targets_on_a_machine_without_docker(tmp_path):
    for target in ("kfp", "argo"):
        out = tmp_path / f"{target}.yaml"
        done = subprocess.run(
            [sys.executable, "-m", "cellpipe", "compile", str(SAMPLE), "--target", target,
             "-o", str(out)], capture_output=True, text=True, env=NO_DOCKER, check=False)
        assert done.returncode == 0, done.stderr
        note, *notes, wrote = done.stderr.strip().splitlines()
        # Argo without an artifact repository or object store keeps no artifacts, and says so
        assert [n.split(":")[:2] for n in notes] == ([["cellpipe", " argo"]]
                                                    if target == "argo" else [])
        assert note.startswith("cellpipe: no --registry/--images: every step runs ")
        assert f"cellpipe=={__version__}" in note and "scikit-learn==" in note
        assert "pyarrow" in note  # it reads pandas values: the store needs it
        assert "ipython" not in note  # cellpipe's own dependencies come with it
        assert wrote == f"wrote {out} (target {target})"
        assert out.stat().st_size > 1000


def test_requirements_lists_what_the_shared_image_must_hold(tmp_path):
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "cellpipe", "requirements", str(SAMPLE),
                           "-o", str(tmp_path / "requirements.txt")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "requirements.txt").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1] == f"cellpipe=={__version__}"
    assert f"pandas=={version('pandas')}" in lines
    assert f"scikit-learn=={version('scikit-learn')}" in lines
    assert f"ipython=={version('ipython')}" in lines  # the runtime's, pinned too


def test_a_steps_own_image_setting_wins_over_the_shared_image(tmp_path):
    path = write_nb(tmp_path, ("step:prep", "x = 1"), (["step:fit", "image:ml/gpu:1"], "y = x"))
    manifest = yaml.safe_load(api.compile_target(path, "argo", image="ml/cpu:1"))
    images = {t["name"]: t["container"]["image"] for t in manifest["spec"]["templates"]
              if "container" in t}
    assert images == {"prep": "ml/cpu:1", "fit": "ml/gpu:1"}


def _play_carried(tmp_path: Path, manifest: dict, python: tuple[str, ...] = (sys.executable,)
                  ) -> dict:
    """Run each pod as Argo would: its raw artifacts written where the manifest says (the
    carried folder mapped into the pod's folder), the store shared, parameters at their
    workflow defaults. Returns task name → the finished process."""
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    defaults = {p["name"]: p["value"]
                for p in manifest["spec"].get("arguments", {}).get("parameters", [])}
    store, done = tmp_path / "store", {}
    for task in templates["main"]["dag"]["tasks"]:
        template = templates[task["template"]]
        pod = tmp_path / f"pod-{task['name']}"
        carried = pod / "carried"
        carried.mkdir(parents=True)
        for artifact in template["inputs"]["artifacts"]:
            if "raw" in artifact:
                name = artifact["path"].removeprefix(CARRIED_STEP_DIR + "/")
                (carried / name).write_text(artifact["raw"]["data"], encoding="utf-8")
        command: list[str] = []
        for part in template["container"]["command"]:
            command += python if part == "python" else [
                part.replace(CARRIED_STEP_DIR, str(carried))]
        for option, value in (("--store", store), ("--step-dir", pod / "step"),
                              ("--outputs-dir", pod / "outputs")):
            command[command.index(option) + 1] = str(value)
        for name, value in defaults.items():
            command = [part.replace(f"{{{{inputs.parameters.{name}}}}}", value)
                       for part in command]
        done[task["name"]] = subprocess.run(command, cwd=pod, capture_output=True, text=True,
                                            check=False)
    return done


def test_the_argo_workflow_of_a_shared_image_ends_with_the_values_of_a_local_run(tmp_path):
    from cellpipe.marshal import open_store

    path = write_nb(
        tmp_path, "import json\nimport numpy as np", ("parameters", "n = 5\nscale = 2.0"),
        ("step:make", "values = np.arange(n) * scale"),
        ("step:total", "total = float(values.sum())\nsummary = json.dumps({'total': total})"),
        name="shared.ipynb")
    local = api.run(path, root=tmp_path / ".cellpipe")
    assert local.status == "succeeded"
    manifest = yaml.safe_load(api.compile_target(path, "argo", image="any/image:1"))
    done = _play_carried(tmp_path / "argo", manifest)
    assert all(d.returncode == 0 for d in done.values()), {k: d.stderr for k, d in done.items()}
    store = open_store(str(tmp_path / "argo" / "store"))
    for step, name in (("make", "values"), ("total", "total"), ("total", "summary")):
        assert_same(local.load(name), store.load(step, name), name)


def test_an_image_without_cellpipe_says_what_to_install(tmp_path):
    """The start script run by a Python that has no cellpipe (this venv's base Python,
    isolated): exit 2 and the pip line, not Python's bare ModuleNotFoundError."""
    base = getattr(sys, "_base_executable", sys.executable)
    probe = subprocess.run([base, "-I", "-c", "import cellpipe"], capture_output=True,
                           check=False)
    if probe.returncode == 0:
        pytest.skip(f"{base} has cellpipe installed: no Python without it to start with")
    path = write_nb(tmp_path, ("step:a", "x = 1"))
    manifest = yaml.safe_load(api.compile_target(path, "argo", image="python:3.11-slim"))
    done = _play_carried(tmp_path / "argo", manifest, python=(base, "-I"))
    (started,) = done.values()
    assert started.returncode == 2
    assert "this image has no cellpipe step runtime" in started.stderr
    assert f"pip install 'cellpipe=={__version__}'" in started.stderr
    assert "Traceback" not in started.stderr
