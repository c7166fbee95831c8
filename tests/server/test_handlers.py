"""The server extension's routes, through a real Jupyter server (pytest-jupyter's jp_fetch).

Notebooks are written under the server's root; runs are real local runs started through
POST /cellpipe/runs and followed through the routes the side panel polls.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tornado import web

from cellpipe import api
from cellpipe.server.base import error_response
from cellpipe.server.handlers import same_notebook
from tests.conftest import write_nb
from tests.server.conftest import SERVER_EXTENSIONS

PIPELINE = (
    ("parameters", "scale = 2"),
    ("step:load", "values = [1, 2, 3]\nprint('loaded', len(values))"),
    ("step:train", "import time\ntime.sleep(1.0)\ntotal = sum(values) * scale\n"
                   "print('total is', total)"),
    ("metrics", "score = total / 10"),
)
UNDEFINED = (("step:load", "values = [1, 2]"), ("step:train", "total = sum(vals)"))
FAILING = (("step:boom", "x = 1\nraise ValueError('boom here')"), ("step:after", "y = x + 1"))
IMAGES = {"load": "registry.local/demo-load:1", "train": "registry.local/demo-train:1"}
SUBMIT_ON = {**SERVER_EXTENSIONS, "CellpipeApp": {"submit_enabled": True}}


@pytest.fixture
def fetch(jp_fetch):
    """``(status, body)`` of a request; JSON bodies are decoded, errors don't raise."""

    async def call(*parts: str, method: str = "GET", body: Any = None,
                   params: dict[str, Any] | None = None, **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
        response = await jp_fetch("cellpipe", *parts, method=method, params=params or {},
                                  raise_error=False, **kwargs)
        text = response.body.decode()
        kind = response.headers.get("Content-Type", "")
        return response.code, json.loads(text) if kind.startswith("application/json") else text

    return call


@pytest.fixture
def pipeline_nb(jp_root_dir: Path) -> str:
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")
    return "pipeline.ipynb"


@pytest.fixture
def undefined_nb(jp_root_dir: Path) -> str:
    (jp_root_dir / "work").mkdir()
    write_nb(jp_root_dir / "work", *UNDEFINED, name="undefined.ipynb")
    return "work/undefined.ipynb"


async def finished(fetch, run_id: str, path: str, timeout: float = 90) -> dict[str, Any]:
    """Long-poll GET /cellpipe/runs/<id> until the run has ended."""
    deadline = time.monotonic() + timeout
    params: dict[str, Any] = {"path": path, "wait": 10}
    while True:
        code, run = await fetch("runs", run_id, params=params)
        assert code == 200, run
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline, run
        params["since"] = run.get("version", 0)


# -- GET /cellpipe/analyze -----------------------------------------------------------------


async def test_analyze_gives_steps_edges_parameters_and_metrics(fetch, pipeline_nb):
    code, body = await fetch("analyze", params={"path": pipeline_nb})

    assert code == 200, body
    assert body["ok"] is True
    assert [s["name"] for s in body["steps"]] == ["load", "train"]
    load, train = body["steps"]
    assert load["cells"] == [{"index": 1, "id": "c01"}]
    assert [c["index"] for c in train["cells"]] == [2, 3]  # the metrics cell joins train
    assert train["upstream"] == ["load"]
    assert train["parameters"] == ["scale"]
    assert train["metrics"] == ["score"]
    assert body["edges"] == [{"from": "load", "to": "train", "variables": ["values"],
                              "explicit": False}]
    assert body["parameters"] == [{"name": "scale", "type": "int", "default": 2, "cell": 0,
                                   "line": 1}]
    assert body["metrics"] == [{"name": "score", "step": "train"}]
    assert [d for d in body["diagnostics"] if d["severity"] == "error"] == []
    assert body["pipeline"]["name"] == "pipeline"


async def test_analyze_reports_lint_errors_instead_of_failing(fetch, undefined_nb):
    code, body = await fetch("analyze", params={"path": undefined_nb})

    assert code == 200, body
    assert body["ok"] is False and body["pipeline"] is None
    [error] = [d for d in body["diagnostics"] if d["severity"] == "error"]
    assert error["variable"] == "vals" and error["cell"] == 1 and error["cell_id"] == "c01"
    assert "did you mean 'values'" in error["hint"]
    assert [s["name"] for s in body["steps"]] == ["load", "train"]


async def test_analyze_with_a_target_adds_what_a_cluster_run_breaks_on(fetch, jp_root_dir):
    write_nb(jp_root_dir, ("step:load", "import pandas as pd\n"
                                        "train = pd.read_csv('data/train.csv')"),
             name="kaggle.ipynb")

    code, body = await fetch("analyze", params={"path": "kaggle.ipynb", "target": "kfp"})
    assert code == 200, body
    [external] = [d for d in body["diagnostics"] if d["code"] == "CP601"]
    assert (external["cell"], external["line"], external["step"]) == (0, 2, "load")
    assert body["ok"] is True and body["pipeline"] is not None  # a warning, not strict

    code, body = await fetch("analyze", params={"path": "kaggle.ipynb"})
    assert code == 200 and not [d for d in body["diagnostics"] if d["code"].startswith("CP6")]

    code, body = await fetch("analyze", params={"path": "kaggle.ipynb", "target": "kpf"})
    assert code == 400, body
    assert "'kpf' is none" in body["message"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "missing query argument 'path'"),
        ({"path": "../outside.ipynb"}, 403, "leaves the server's root directory"),
        ({"path": "work/../../outside.ipynb"}, 403, "leaves the server's root directory"),
        ({"path": "/etc/passwd"}, 403, "must be relative to the server's root directory"),
        ({"path": "missing.ipynb"}, 404, "no notebook 'missing.ipynb'"),
    ],
)
async def test_analyze_refuses_bad_paths(fetch, pipeline_nb, params, status, message):
    code, body = await fetch("analyze", params=params)

    assert code == status, body
    assert message in body["message"]


# -- POST /cellpipe/analyze: the notebook as the editor has it ------------------------------


async def test_analyze_post_answers_for_the_content_not_the_saved_file(fetch, pipeline_nb,
                                                                      jp_root_dir):
    import nbformat

    saved = nbformat.read(jp_root_dir / pipeline_nb, as_version=4)
    code, same = await fetch("analyze", method="POST", params={"path": pipeline_nb},
                             body={"content": saved})
    code_get, from_file = await fetch("analyze", params={"path": pipeline_nb})
    assert code == code_get == 200, same
    assert same == from_file  # the same answer as GET for the same notebook

    # an edit not saved: a cell that reads a name nobody defines
    saved.cells[2].source = "total = sum(valuez) * scale"
    code, edited = await fetch("analyze", method="POST", params={"path": pipeline_nb},
                               body={"content": saved})
    assert code == 200, edited
    assert edited["ok"] is False
    [error] = [d for d in edited["diagnostics"] if d["severity"] == "error"]
    assert (error["variable"], error["cell"]) == ("valuez", 2)
    assert "did you mean 'values'" in error["hint"]
    # the file on disk is untouched, and GET still answers for it
    assert (await fetch("analyze", params={"path": pipeline_nb}))[1]["ok"] is True

    # a notebook not saved yet (a new file in an existing folder) is analyzed too
    code, fresh = await fetch("analyze", method="POST", params={"path": "Untitled1.ipynb"},
                              body={"content": saved})
    assert code == 200 and fresh["ok"] is False, fresh


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"content": {"metadata": {}}}, 400, "not a Jupyter notebook (no 'cells')"),
    ({"content": "{}"}, 400, "field 'content' must be an object"),
    ({}, 400, "missing field 'content'"),
    ({"content": {"cells": []}, "extra": 1}, 400, "extra"),
    ("not json", 400, "not JSON"),
])
async def test_analyze_post_refuses_a_body_that_is_not_a_notebook(fetch, pipeline_nb, body,
                                                                  status, words):
    code, answer = await fetch("analyze", method="POST", params={"path": pipeline_nb},
                               body=body)
    assert code == status, answer
    assert words in answer["message"]


@pytest.mark.parametrize("jp_server_config", [
    {**SERVER_EXTENSIONS, "CellpipeApp": {"analyze_max_bytes": 2000}}])
async def test_analyze_post_refuses_a_body_over_the_limit(fetch, pipeline_nb, jp_root_dir):
    import nbformat

    nb = nbformat.read(jp_root_dir / pipeline_nb, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="x" * 5000)]
    code, answer = await fetch("analyze", method="POST", params={"path": pipeline_nb},
                               body={"content": nb})
    assert code == 413, answer
    assert "; the limit is 2.0 KiB" in answer["message"]
    assert "without their outputs" in answer["hint"]


async def test_a_file_that_is_not_a_notebook_is_a_bad_request(fetch, jp_root_dir):
    (jp_root_dir / "notes.ipynb").write_text("not json", encoding="utf-8")

    code, body = await fetch("analyze", params={"path": "notes.ipynb"})

    assert code == 400, body
    assert body["message"].startswith("notes.ipynb: ")  # relative to the root, as asked


# -- POST /cellpipe/compile ----------------------------------------------------------------


async def test_compile_spec_argo_and_kfp(fetch, pipeline_nb):
    code, spec = await fetch("compile", method="POST",
                             body={"path": pipeline_nb, "target": "spec"})
    assert code == 200, spec
    assert spec["target"] == "spec"
    assert [s["name"] for s in json.loads(spec["text"])["steps"]] == ["load", "train"]

    code, argo = await fetch("compile", method="POST", body={
        "path": pipeline_nb, "target": "argo", "images": IMAGES, "namespace": "ml"})
    assert code == 200, argo
    workflow = yaml.safe_load(argo["text"])
    assert workflow["kind"] == "Workflow" and workflow["metadata"]["namespace"] == "ml"
    assert IMAGES["train"] in argo["text"]

    # no images at all: one shared image, the code carried in the document
    code, shared = await fetch("compile", method="POST", body={
        "path": pipeline_nb, "target": "argo", "image": "ml/notebook:2"})
    assert code == 200, shared
    containers = [t["container"] for t in yaml.safe_load(shared["text"])["spec"]["templates"]
                  if "container" in t]
    assert {c["image"] for c in containers} == {"ml/notebook:2"} and len(containers) == 2
    assert all(c["command"][1] == "/cellpipe/step/start.py" for c in containers)
    # the notes `cellpipe compile` prints: the shared image and what it must hold, and that
    # no artifacts are kept without a repository; with the repository given, only the first
    assert shared["notes"][0].startswith("cellpipe: no --registry/--images: every step runs "
                                         "ml/notebook:2")
    assert "cellpipe" in shared["notes"][0].split("must hold", 1)[1]
    assert any("no artifact repository or object store" in n for n in shared["notes"][1:])
    code, kept = await fetch("compile", method="POST", body={
        "path": pipeline_nb, "target": "argo", "image": "ml/notebook:2",
        "artifact_repository": "repos:minio"})
    assert code == 200, kept
    assert len(kept["notes"]) == 1
    assert yaml.safe_load(kept["text"])["spec"]["artifactRepositoryRef"] == {
        "configMap": "repos", "key": "minio"}

    code, kfp = await fetch("compile", method="POST",
                            body={"path": pipeline_nb, "target": "kfp", "images": IMAGES})
    assert code == 200, kfp
    assert IMAGES["load"] in kfp["text"] and "pipelineInfo" in kfp["text"]
    assert kfp["notes"] == [] and spec["notes"] == []


async def test_compile_reads_an_image_map_file_under_the_root(fetch, pipeline_nb, jp_root_dir):
    (jp_root_dir / "images.json").write_text(json.dumps(IMAGES), encoding="utf-8")

    code, argo = await fetch("compile", method="POST", body={
        "path": pipeline_nb, "target": "argo", "images": "images.json"})

    assert code == 200, argo
    assert IMAGES["load"] in argo["text"]


async def test_compile_of_a_notebook_with_an_undefined_name_is_422_with_diagnostics(
    fetch, undefined_nb
):
    code, body = await fetch("compile", method="POST",
                             body={"path": undefined_nb, "target": "spec"})

    assert code == 422, body
    assert body["message"].startswith("work/undefined.ipynb: the notebook has 1 problem(s)")
    assert body["hint"]
    [diagnostic] = body["diagnostics"]
    assert diagnostic["severity"] == "error" and diagnostic["variable"] == "vals"
    assert diagnostic["cell"] == 1 and diagnostic["line"] == 1


@pytest.mark.parametrize(
    ("body", "status", "message", "hint"),
    [
        ({"target": "spec"}, 400, "missing field 'path' in the request body", None),
        ({"path": "pipeline.ipynb"}, 400, "missing field 'target' in the request body", None),
        ({"path": "pipeline.ipynb", "target": "argoo"}, 400, "unknown target 'argoo'",
         "did you mean 'argo'?"),
        ({"path": "pipeline.ipynb", "target": 3}, 400, "field 'target' must be a string", None),
        ({"path": "pipeline.ipynb", "target": "spec", "registy": "r"}, 400,
         "unknown field 'registy'", "did you mean 'registry'?"),
        ({"path": "pipeline.ipynb", "target": "argo", "images": {"load": "x:1"}}, 400,
         "no image for step(s) train", None),
        ({"path": "pipeline.ipynb", "target": "argo", "images": "nowhere.json"}, 404,
         "no image map 'nowhere.json'", None),
        ({"path": "../pipeline.ipynb", "target": "spec"}, 403, "leaves the server's root", None),
        ("{not json", 400, "the request body is not JSON", None),
        ("[1, 2]", 400, "the request body must be a JSON object", None),
    ],
)
async def test_compile_refuses_bad_requests(fetch, pipeline_nb, body, status, message, hint):
    code, answer = await fetch("compile", method="POST", body=body)

    assert code == status, answer
    assert message in answer["message"]
    if hint:
        assert hint in answer["hint"]


async def test_a_docker_daemon_out_of_reach_is_503_not_the_requests_fault(
        fetch, pipeline_nb, monkeypatch, tmp_path):
    """Compiling for Argo with --registry builds the step images: without a daemon there,
    the answer is 503 with the daemon's address and how to start it."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    code, answer = await fetch("compile", method="POST", body={
        "path": pipeline_nb, "target": "argo", "registry": "127.0.0.1:1/cellpipe"})

    assert code == 503, answer
    assert "cannot reach the Docker daemon" in answer["message"]
    assert "start the daemon" in answer["hint"]


async def test_the_plugins_route_lists_the_engines_and_targets_from_the_registry(
        fetch, pipeline_nb, tmp_path, monkeypatch):
    from cellpipe.plugins import ENGINES, TARGETS
    from tests.plugins.test_plugins import install_example

    code, body = await fetch("plugins")
    assert code == 200, body
    assert body["engines"][:2] == ["local", "docker"]
    assert body["targets"][:3] == ["spec", "argo", "kfp"]
    assert body["submit_targets"][:2] == ["argo", "kfp"]
    assert [f["name"] for f in body["connection"]["argo"]] == ["namespace"]
    assert [(f["name"], f["required"]) for f in body["connection"]["kfp"]] == [
        ("host", True), ("experiment", False), ("namespace", False)]
    monkeypatch.syspath_prepend(str(install_example(tmp_path / "site")))
    for registry in (ENGINES, TARGETS):
        registry.reset()
    try:
        code, body = await fetch("plugins")
        assert "folder" in body["targets"] and "named-local" in body["engines"]
        # a plugin that declares no connection takes what every target was given before
        assert [(f["name"], f["required"]) for f in body["connection"]["folder"]] == [
            ("host", False), ("experiment", False), ("namespace", False)]
        code, answer = await fetch("compile", method="POST", body={
            "path": pipeline_nb, "target": "folder",
            "images": {"load": "r/load:1", "train": "r/train:1"}})
        assert code == 200, answer
        assert json.loads(answer["text"])["steps"][0]["image"] == "r/load:1"
    finally:
        for registry in (ENGINES, TARGETS):
            registry.reset()


def test_each_error_class_says_how_the_server_answers_it():
    from cellpipe.errors import (
        CellpipeError,
        MissingDependencyError,
        PipelineError,
        ServiceUnavailableError,
    )
    from cellpipe.server.base import error_response

    assert error_response(CellpipeError("bad field"))[0] == 400
    assert error_response(PipelineError("no pipeline", []))[0] == 422
    assert error_response(MissingDependencyError.for_extra("x", "y", "z"))[0] == 500
    assert error_response(ServiceUnavailableError("no daemon"))[0] == 503


# -- POST and GET /cellpipe/runs, the run, its steps' logs and reports --------------------


async def test_a_run_started_from_the_panel_runs_and_reports(fetch, jp_fetch, pipeline_nb,
                                                            jp_root_dir):
    write_nb(jp_root_dir, *PIPELINE, name="other.ipynb")
    response = await jp_fetch("cellpipe", "runs", method="POST", body=json.dumps(
        {"path": pipeline_nb, "parameters": {"scale": 3}}))
    assert response.code == 202
    run_id = json.loads(response.body)["id"]
    assert run_id and (jp_root_dir / ".cellpipe" / "runs" / run_id / "run.json").exists()
    assert response.headers["Location"].endswith(
        f"/cellpipe/runs/{run_id}?path={pipeline_nb}")

    # while it runs, the state comes from the live registry, and a long poll returns on change
    code, live = await fetch("runs", run_id, params={"path": pipeline_nb})
    assert code == 200, live
    assert live["live"] is True and live["status"] == "running"
    assert set(live["steps"]) == {"load", "train"}  # pending steps too
    began = time.monotonic()
    code, changed = await fetch("runs", run_id, params={
        "path": pipeline_nb, "wait": 30, "since": live["version"]})
    assert code == 200 and time.monotonic() - began < 20
    assert changed.get("version") != live["version"] or changed["live"] is False

    run = await finished(fetch, run_id, pipeline_nb)
    assert run["status"] == "succeeded", run
    assert run["live"] is False
    assert run["parameters"] == {"scale": 3}
    assert run["metrics"] == {"score": 1.8}
    assert {name: s["status"] for name, s in run["steps"].items()} == {
        "load": "succeeded", "train": "succeeded"}
    assert run["steps"]["train"]["duration"] >= 1.0
    assert run["steps"]["train"]["outputs"]["total"] == {"type": "builtins.int", "size": 2}
    assert "store" not in run["steps"]["train"]  # run.json's internals stay out

    code, listed = await fetch("runs", params={"path": pipeline_nb})
    assert code == 200, listed
    [summary] = listed["runs"]
    assert summary["id"] == run_id and summary["status"] == "succeeded"
    assert summary["metrics"] == {"score": 1.8} and summary["parameters"] == {"scale": 3}
    assert summary["duration"] > 0
    code, others = await fetch("runs", params={"path": "other.ipynb"})
    assert (code, others) == (200, {"runs": []})  # same .cellpipe, another notebook

    code, log = await fetch("runs", run_id, "steps", "train", "log",
                            params={"path": pipeline_nb})
    assert code == 200 and "total is 18" in log
    response = await jp_fetch("cellpipe", "runs", run_id, "steps", "train", "report",
                              params={"path": pipeline_nb})
    assert response.headers["Content-Type"].startswith("text/html")
    assert "sandbox allow-scripts" in response.headers["Content-Security-Policy"]
    report = response.body.decode()
    assert "<html" in report and "total is 18" in report
    # rendered when first asked for, and kept: the run itself renders no HTML
    assert (jp_root_dir / ".cellpipe" / "runs" / run_id / "steps" / "train" / "report.html"
            ).is_file()


async def test_a_failed_run_shows_the_failure_and_the_missing_logs(fetch, jp_root_dir):
    write_nb(jp_root_dir, *FAILING, name="failing.ipynb")
    code, started = await fetch("runs", method="POST", body={"path": "failing.ipynb"})
    assert code == 202, started

    run = await finished(fetch, started["id"], "failing.ipynb")

    assert run["status"] == "failed"
    assert run["steps"]["boom"]["status"] == "failed"
    assert run["steps"]["after"]["status"] == "skipped"
    assert "boom" in run["steps"]["after"]["message"]
    path = {"path": "failing.ipynb"}
    code, log = await fetch("runs", started["id"], "steps", "boom", "log", params=path)
    assert code == 200 and "boom here" in log
    code, body = await fetch("runs", started["id"], "steps", "after", "log", params=path)
    assert code == 404 and "has no log yet" in body["message"]
    code, body = await fetch("runs", started["id"], "steps", "after", "report", params=path)
    assert code == 404 and body["message"] == "step 'after' has no report yet"
    code, body = await fetch("runs", started["id"], "steps", "bom", "log", params=path)
    assert code == 404 and "has no step 'bom'" in body["message"]
    assert body["hint"] == "did you mean 'boom'?"
    code, latest = await fetch("runs", "latest", params=path)
    assert code == 200 and latest["id"] == started["id"]


@pytest.mark.parametrize("jp_server_config",
                         [{**SERVER_EXTENSIONS, "CellpipeApp": {"run_start_timeout": 0.0}}])
async def test_a_run_slow_to_start_is_answered_without_id_and_listed_when_it_starts(
    fetch, pipeline_nb
):
    code, started = await fetch("runs", method="POST", body={"path": pipeline_nb})
    assert code == 202, started
    assert started["id"] is None and "still starting" in started["message"]

    deadline = time.monotonic() + 60
    while not (listed := (await fetch("runs", params={"path": pipeline_nb}))[1]["runs"]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    run = await finished(fetch, listed[0]["id"], pipeline_nb)
    assert run["status"] == "succeeded" and run["parameters"] == {"scale": 2}


@pytest.mark.parametrize(
    ("body", "status", "message", "hint"),
    [
        ({"path": "pipeline.ipynb", "parameters": {"scael": 3}}, 400,
         "the notebook has no parameter 'scael'", "did you mean 'scale'?"),
        ({"path": "pipeline.ipynb", "parameters": {"scale": "many"}}, 400,
         "parameter 'scale' is an int", None),
        ({"path": "pipeline.ipynb", "parameters": [3]}, 400,
         "field 'parameters' must be an object", None),
        ({"path": "pipeline.ipynb", "engine": "podman"}, 400, "unknown engine 'podman'", None),
        ({"engine": "local"}, 400, "missing field 'path'", None),
        ({"path": "nope.ipynb"}, 404, "no notebook 'nope.ipynb'", None),
    ],
)
async def test_starting_a_run_refuses_bad_requests(fetch, pipeline_nb, body, status, message,
                                                   hint):
    code, answer = await fetch("runs", method="POST", body=body)

    assert code == status, answer
    assert message in answer["message"]
    if hint:
        assert answer["hint"] == hint


async def test_starting_a_run_of_a_notebook_that_is_no_pipeline_is_422(fetch, undefined_nb):
    code, body = await fetch("runs", method="POST", body={"path": undefined_nb})

    assert code == 422, body
    assert [d["variable"] for d in body["diagnostics"]] == ["vals"]


async def test_unknown_runs_and_empty_lists(fetch, pipeline_nb):
    code, body = await fetch("runs", "20990101-000000-abcdef", params={"path": pipeline_nb})
    assert code == 404, body
    assert body["message"] == "no run '20990101-000000-abcdef'"

    code, body = await fetch("runs", "20990101-000000-abcdef", "steps", "load", "log",
                             params={"path": pipeline_nb})
    assert code == 404, body

    assert await fetch("runs", params={"path": pipeline_nb}) == (200, {"runs": []})
    code, body = await fetch("runs", "x", params={"path": pipeline_nb, "wait": "soon"})
    assert code == 400 and "'wait' must be a number" in body["message"]


# -- POST /cellpipe/submit -----------------------------------------------------------------


async def test_submit_is_off_unless_configured(fetch, pipeline_nb):
    code, body = await fetch("submit", method="POST",
                             body={"path": pipeline_nb, "target": "argo", "images": IMAGES})

    assert code == 403, body
    assert body["message"] == "submitting is off; set c.CellpipeApp.submit_enabled = True"


@pytest.mark.parametrize("jp_server_config", [SUBMIT_ON])
async def test_submit_creates_the_argo_workflow(fetch, pipeline_nb, kube_context):

    code, body = await fetch("submit", method="POST", body={
        "path": pipeline_nb, "target": "argo", "images": IMAGES, "parameters": {"scale": 7}})

    assert code == 200, body
    assert body["target"] == "argo" and body["status"] == "Submitted"
    workflow = kube_context.workflow(body["id"], namespace="ml")
    assert workflow["kind"] == "Workflow"
    arguments = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert arguments["scale"] == "7"


@pytest.mark.parametrize("jp_server_config", [SUBMIT_ON])
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"path": "pipeline.ipynb", "target": "spark"}, 400, "unknown target 'spark'"),
        ({"path": "pipeline.ipynb", "target": "kfp", "images": IMAGES}, 400,
         "missing field 'host'"),
        ({"path": "pipeline.ipynb", "target": "argo", "host": "h"}, 400, "unknown field 'host'"),
        ({"target": "argo"}, 400, "missing field 'path'"),
    ],
)
async def test_submit_refuses_bad_requests(fetch, pipeline_nb, body, status, message):
    code, answer = await fetch("submit", method="POST", body=body)

    assert code == status, answer
    assert message in answer["message"]


# -- every route needs the token -----------------------------------------------------------

ROUTES = [
    ("GET", ("analyze",), None),
    ("POST", ("compile",), {"path": "pipeline.ipynb", "target": "spec"}),
    ("GET", ("runs",), None),
    ("POST", ("runs",), {"path": "pipeline.ipynb"}),
    ("GET", ("runs", "latest"), None),
    ("GET", ("runs", "latest", "steps", "load", "log"), None),
    ("GET", ("runs", "latest", "steps", "load", "report"), None),
    ("POST", ("submit",), {"path": "pipeline.ipynb", "target": "argo"}),
]


@pytest.mark.parametrize(("method", "parts", "body"), ROUTES)
async def test_every_route_needs_the_token(fetch, pipeline_nb, jp_root_dir, method, parts,
                                           body):
    code, answer = await fetch(*parts, method=method, body=body,
                               params={"path": pipeline_nb}, headers={"Authorization": ""})

    assert code == 403, answer
    assert not (jp_root_dir / ".cellpipe").exists()  # nothing ran


# -- the pieces ------------------------------------------------------------------------------


async def test_unexpected_errors_are_500_with_the_error_named_and_logged(
    fetch, pipeline_nb, monkeypatch, caplog
):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(api, "lint", broken)

    code, body = await fetch("analyze", params={"path": pipeline_nb})

    assert code == 500, body
    assert body["message"] == "internal error: KeyError: 'boom'"
    assert any(r.exc_info and "/cellpipe/analyze failed" in r.getMessage()
               for r in caplog.records)


def test_tornado_http_errors_keep_their_status_and_message():
    assert error_response(web.HTTPError(405, "no %s here", "PUT")) == (
        405, {"message": "no PUT here"})


def test_runs_of_the_notebook_are_told_by_path(tmp_path):
    notebook = tmp_path / "a.ipynb"

    assert same_notebook(str(notebook), notebook)
    assert same_notebook("a.ipynb", notebook)  # relative, as given to the CLI
    assert not same_notebook(str(tmp_path / "b.ipynb"), notebook)
    assert not same_notebook(None, notebook)
