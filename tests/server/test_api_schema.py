"""The server's answers against their JSON Schema, and the panel's types against the schema.

``src/cellpipe/server/schema/server-api.v1.schema.json`` is the contract between the server
extension and the side panel: the panel's TypeScript types are generated from it
(``labextension/src/generated/types.ts``, whose header names the sha256 of every schema
file it was made from), and here every route answers through a real Jupyter server
(pytest-jupyter's ``jp_fetch``) and each JSON body is checked against the schema entry of
that route.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from cellpipe import api
from cellpipe.plugins import ENGINES, TARGETS
from tests.conftest import ROOT, write_nb
from tests.plugins.test_plugins import install_example
from tests.server.conftest import SERVER_EXTENSIONS

SCHEMA = ROOT / "src" / "cellpipe" / "server" / "schema" / "server-api.v1.schema.json"
SPEC_SCHEMA = ROOT / "src" / "cellpipe" / "core" / "schema" / "pipeline-spec.v1.schema.json"
TYPES = ROOT / "labextension" / "src" / "generated" / "types.ts"
REGENERATE = "cd labextension && jlpm install && jlpm build:types"
HEADER_LINE = re.compile(r"^ \* sha256 ([0-9a-f]{64})  (\S+)$", re.MULTILINE)

PIPELINE = (
    ("parameters", "scale = 2\nname = 'demo'"),
    ("step:load", "values = [1, 2, 3]\nprint('loaded', len(values))"),
    ("step:train", "import time\ntime.sleep(1.0)\ntotal = sum(values) * scale"),
    ("metrics", "score = total / 10"),
)
UNDEFINED = (("step:load", "values = [1, 2]"), ("step:train", "total = sum(vals)"))
# the failing step is retried once, so that the live answers include a retrying step
FAILING = ((["step:boom", "retries:1"], "x = 1\ny = 2\nraise ValueError('boom here')"),
           ("step:after", "z = x + 1"))
IMAGES = {"load": "registry.local/demo-load:1", "train": "registry.local/demo-train:1"}


# -- the schema and the generated types ------------------------------------------------------


def referenced_files(schema_file: Path) -> set[Path]:
    """The schema file and every file its ``$ref``s name, transitively."""
    found: set[Path] = set()
    todo = [schema_file.resolve()]
    while todo:
        file = todo.pop()
        if file in found:
            continue
        found.add(file)
        stack: list[Any] = [json.loads(file.read_text(encoding="utf-8"))]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and not ref.startswith("#"):
                    todo.append((file.parent / ref.split("#")[0]).resolve())
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return found


def stale_sources(types_file: Path, root: Path, schema_file: Path) -> list[str]:
    """What is wrong with the header of the generated types; empty when they are current."""
    listed = {(root / path).resolve(): digest
              for digest, path in HEADER_LINE.findall(types_file.read_text(encoding="utf-8"))}
    problems = [f"{file.relative_to(root)} is not in the header"
                for file in sorted(referenced_files(schema_file) - set(listed))]
    for file, digest in sorted(listed.items()):
        if not file.is_file():
            problems.append(f"{file.relative_to(root)} is listed but does not exist")
        elif hashlib.sha256(file.read_bytes()).hexdigest() != digest:
            problems.append(f"{file.relative_to(root)} changed since the types were generated")
    return problems


def test_the_generated_types_are_those_of_the_current_schema():
    problems = stale_sources(TYPES, ROOT, SCHEMA)

    assert not problems, (f"{TYPES.relative_to(ROOT)} is stale: {'; '.join(problems)}. "
                          f"Regenerate it: {REGENERATE} (and rebuild the panel: jlpm build:prod)")


def test_a_changed_schema_makes_the_types_stale(tmp_path):
    # the check above must be able to fail: a copy of the files with one schema edited
    for file in (SCHEMA, SPEC_SCHEMA, TYPES):
        copy = tmp_path / file.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(file.read_bytes())
    schema = tmp_path / SCHEMA.relative_to(ROOT)
    types = tmp_path / TYPES.relative_to(ROOT)
    assert stale_sources(types, tmp_path, schema) == []

    data = json.loads(schema.read_text(encoding="utf-8"))
    data["$defs"]["StepError"]["required"] = ["message", "ename"]
    schema.write_text(json.dumps(data), encoding="utf-8")

    assert stale_sources(types, tmp_path, schema) == [
        "src/cellpipe/server/schema/server-api.v1.schema.json changed since the types were "
        "generated"]
    types.write_text(types.read_text(encoding="utf-8").replace(" * sha256 ", " * sha-256 "),
                     encoding="utf-8")
    assert len(stale_sources(types, tmp_path, schema)) == 2  # both files missing from it


def test_the_schema_is_valid_and_the_types_declare_each_of_its_entries():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    types = TYPES.read_text(encoding="utf-8")

    declared = set(re.findall(r"^export (?:interface|type) (\w+)", types, re.MULTILINE))
    assert set(schema["$defs"]) <= declared, set(schema["$defs"]) - declared
    assert schema["title"] in declared


# -- checking answers ------------------------------------------------------------------------


def registry() -> Registry:
    """The server's schema and the spec schema it references, under their file URIs."""
    resources = [(file.as_uri(), Resource.from_contents(json.loads(file.read_text("utf-8"))))
                 for file in referenced_files(SCHEMA)]
    return Registry().with_resources(resources)


REGISTRY = registry()


def problems_with(body: Any, entry: str) -> list[str]:
    """Why ``body`` is not a ``$defs/<entry>`` of the schema (empty when it is one)."""
    validator = Draft202012Validator({"$ref": f"{SCHEMA.as_uri()}#/$defs/{entry}"},
                                     registry=REGISTRY)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in validator.iter_errors(body)]


def check(body: Any, entry: str) -> Any:
    problems = problems_with(body, entry)
    assert not problems, f"not a {entry}: {problems}\n{json.dumps(body, indent=1)[:3000]}"
    return body


def test_the_schema_refuses_what_the_panel_once_assumed():
    # the hand-written types the generated ones replace said a step's error is a string
    detail = {"id": "r", "status": "failed", "engine": "local", "created": 1.0,
              "started": 1.0, "finished": 2.0, "duration": 1.0, "parameters": {},
              "metrics": {}, "notebook": "nb.ipynb", "live": False,
              "steps": {"boom": {"status": "failed", "error": {"message": "cell 1: boom"}}}}
    assert problems_with(detail, "RunDetail") == []

    detail["steps"]["boom"]["error"] = "ValueError: boom"
    assert problems_with(detail, "RunDetail") == [
        "steps/boom/error: 'ValueError: boom' is not of type 'object'"]
    del detail["steps"]["boom"]["error"]
    detail["steps"]["boom"]["store"] = "/tmp/artifacts"  # run.json's internals stay out
    assert problems_with(detail, "RunDetail") == [
        "steps/boom: Additional properties are not allowed ('store' was unexpected)"]
    assert problems_with({"ok": True}, "Analysis")  # the rest is required


@pytest.fixture
def answer(jp_fetch):
    """``(status, JSON body)`` of a request to a cellpipe route; errors don't raise."""

    async def call(*parts: str, method: str = "GET", body: Any = None,
                   params: dict[str, Any] | None = None, **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            kwargs["body"] = json.dumps(body)
        response = await jp_fetch("cellpipe", *parts, method=method, params=params or {},
                                  raise_error=False, **kwargs)
        assert response.headers["Content-Type"].startswith("application/json"), response.body
        return response.code, json.loads(response.body)

    return call


async def followed(answer, run_id: str, path: str, timeout: float = 90) -> list[dict[str, Any]]:
    """Every state GET /cellpipe/runs/<id> answers, long-polled until the run has ended."""
    deadline = time.monotonic() + timeout
    params: dict[str, Any] = {"path": path, "wait": 10}
    states = []
    while True:
        code, run = await answer("runs", run_id, params=params)
        assert code == 200, run
        states.append(check(run, "RunDetail"))
        if run["status"] != "running":
            return states
        assert time.monotonic() < deadline, run
        params["since"] = run.get("version", 0)


# -- every route, answered by the real server --------------------------------------------


async def test_analysis_of_a_pipeline_and_of_a_notebook_that_fails_lint(answer, jp_root_dir):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")
    write_nb(jp_root_dir, *UNDEFINED, name="undefined.ipynb")

    code, body = await answer("analyze", params={"path": "pipeline.ipynb"})
    assert code == 200
    check(body, "Analysis")
    assert body["ok"] is True and body["pipeline"]["name"] == "pipeline"
    assert body["edges"] and body["parameters"] and body["metrics"]

    code, body = await answer("analyze", params={"path": "undefined.ipynb"})
    assert code == 200
    check(body, "Analysis")
    assert body["ok"] is False and body["pipeline"] is None and body["diagnostics"]


async def test_compile_answers_and_refusals(answer, jp_root_dir):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")
    write_nb(jp_root_dir, *UNDEFINED, name="undefined.ipynb")

    for request in ({"path": "pipeline.ipynb", "target": "spec"},
                    {"path": "pipeline.ipynb", "target": "argo", "images": IMAGES}):
        code, body = await answer("compile", method="POST", body=request)
        assert code == 200, body
        check(body, "Compiled")

    code, body = await answer("compile", method="POST",
                              body={"path": "undefined.ipynb", "target": "spec"})
    assert code == 422
    check(body, "ErrorBody")
    assert body["diagnostics"] and body["hint"]
    code, body = await answer("compile", method="POST",
                              body={"path": "pipeline.ipynb", "target": "argoo"})
    assert code == 400
    assert check(body, "ErrorBody")["hint"] == "did you mean 'argo'?"


async def test_a_run_its_live_states_the_list_and_a_cached_rerun(answer, jp_root_dir):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")
    path = {"path": "pipeline.ipynb"}

    code, started = await answer("runs", method="POST", body={**path, "parameters": {"scale": 3}})
    assert code == 202
    check(started, "RunStarted")
    states = await followed(answer, started["id"], "pipeline.ipynb")

    assert states[0]["live"] is True and "version" in states[0]
    final = states[-1]
    assert final["status"] == "succeeded" and final["live"] is False
    assert final["steps"]["train"]["outputs"]["total"] == {"type": "builtins.int", "size": 2}
    code, listed = await answer("runs", params=path)
    assert code == 200
    assert check(listed, "RunList")["runs"][0]["metrics"] == {"score": 1.8}

    code, again = await answer("runs", method="POST", body=path)
    assert code == 202
    [*_, rerun] = await followed(answer, check(again, "RunStarted")["id"], "pipeline.ipynb")
    assert rerun["steps"]["load"]["status"] == "cached"
    assert rerun["steps"]["load"]["cached_from"] == started["id"]
    code, listed = await answer("runs", params=path)
    assert [run["id"] for run in check(listed, "RunList")["runs"]] == [again["id"], started["id"]]


SLOW = [
    ("", "import time"),
    ("step:load", "rows = list(range(4))"),
    ("step:train", "time.sleep(120)\ntotal = sum(rows)"),
]


async def test_cancel_stops_a_running_run_and_keeps_what_finished(answer, jp_root_dir):
    write_nb(jp_root_dir, *SLOW, name="slow.ipynb")
    path = {"path": "slow.ipynb"}
    code, started = await answer("runs", method="POST", body=path)
    assert code == 202, started
    run_id = check(started, "RunStarted")["id"]
    deadline = time.monotonic() + 60
    while True:  # until the slow step runs
        code, state = await answer("runs", run_id, params={**path, "wait": 5})
        if state["steps"]["train"]["status"] == "running":
            break
        assert time.monotonic() < deadline, state
    asked = time.monotonic()
    code, body = await answer("runs", run_id, "cancel", method="POST", body={}, params=path)
    assert code == 202, body
    assert check(body, "Cancelling") == {"id": run_id, "status": "cancelling"}
    final = (await followed(answer, run_id, "slow.ipynb"))[-1]
    assert time.monotonic() - asked < 20  # not the 120 s the step sleeps
    assert final["status"] == "cancelled"
    assert final["steps"]["load"]["status"] == "succeeded"
    assert final["steps"]["train"]["status"] == "cancelled"

    # a run that has ended cannot be cancelled; an unknown one is 404
    code, body = await answer("runs", run_id, "cancel", method="POST", body={}, params=path)
    assert code == 409 and "is not running (it is cancelled)" in check(body, "ErrorBody")["message"]
    code, body = await answer("runs", "nope", "cancel", method="POST", body={}, params=path)
    assert code == 404, body


async def test_a_failed_step_carries_its_error_as_an_object(answer, jp_root_dir):
    write_nb(jp_root_dir, *FAILING, name="failing.ipynb")

    code, started = await answer("runs", method="POST", body={"path": "failing.ipynb"})
    assert code == 202
    states = await followed(answer, check(started, "RunStarted")["id"], "failing.ipynb")

    boom = states[-1]["steps"]["boom"]
    assert boom["status"] == "failed" and boom["attempts"] == 2
    error = boom["error"]
    assert error["ename"] == "ValueError" and error["evalue"] == "boom here"
    assert (error["cell"], error["line"]) == (0, 3)
    assert error["message"] == "cell 1, line 3: ValueError: boom here"
    assert "Traceback" in error["traceback"]
    assert states[-1]["steps"]["after"]["status"] == "skipped"
    code, latest = await answer("runs", "latest", params={"path": "failing.ipynb"})
    assert code == 200
    assert check(latest, "RunDetail")["steps"]["boom"]["error"] == error


@pytest.mark.parametrize("jp_server_config",
                         [{**SERVER_EXTENSIONS, "CellpipeApp": {"run_start_timeout": 0.0}}])
async def test_a_run_slow_to_start_is_answered_without_an_id(answer, jp_root_dir):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")

    code, started = await answer("runs", method="POST", body={"path": "pipeline.ipynb"})

    assert code == 202
    assert check(started, "RunStarted")["id"] is None and started["message"]
    deadline = time.monotonic() + 60
    while not (runs := (await answer("runs", params={"path": "pipeline.ipynb"}))[1]["runs"]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await followed(answer, runs[0]["id"], "pipeline.ipynb")  # let it end before the server


@pytest.mark.parametrize(
    ("method", "parts", "request_body", "params", "status"),
    [
        ("GET", ("analyze",), None, {}, 400),
        ("GET", ("analyze",), None, {"path": "../outside.ipynb"}, 403),
        ("GET", ("analyze",), None, {"path": "missing.ipynb"}, 404),
        ("GET", ("runs", "20990101-000000-abcdef"), None, {"path": "pipeline.ipynb"}, 404),
        ("GET", ("runs", "latest", "steps", "load", "log"), None, {"path": "pipeline.ipynb"},
         404),
        ("GET", ("runs", "x"), None, {"path": "pipeline.ipynb", "wait": "soon"}, 400),
        ("POST", ("runs",), {"path": "pipeline.ipynb", "parameters": {"scael": 3}}, {}, 400),
        ("POST", ("runs",), {"path": "undefined.ipynb"}, {}, 422),
        ("POST", ("submit",), {"path": "pipeline.ipynb", "target": "argo"}, {}, 403),
    ],
)
async def test_refusals_are_error_bodies(answer, jp_root_dir, method, parts, request_body,
                                         params, status):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")
    write_nb(jp_root_dir, *UNDEFINED, name="undefined.ipynb")

    code, body = await answer(*parts, method=method, body=request_body, params=params)

    assert code == status, body
    check(body, "ErrorBody")


async def test_a_request_without_the_token_is_refused_by_jupyter_server(answer, jp_root_dir):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")

    code, body = await answer("analyze", params={"path": "pipeline.ipynb"},
                              headers={"Authorization": ""})

    assert code == 403
    check(body, "ErrorBody")


async def test_plugins_answers_the_built_in_engines_and_targets(answer):
    code, body = await answer("plugins")

    assert code == 200, body
    check(body, "Plugins")
    assert body["engines"][:2] == ["local", "docker"]
    assert body["targets"][:3] == ["spec", "argo", "kfp"]
    assert body["submit_targets"] == body["targets"][1:]
    assert body["submit_enabled"] is False
    # each target says what reaches its cluster, as its class declares it
    assert set(body["connection"]) == set(body["submit_targets"])
    fields = {target: {f["name"]: f["required"] for f in listed}
              for target, listed in body["connection"].items()}
    assert fields["argo"] == {"namespace": False}
    assert fields["kfp"] == {"host": True, "experiment": False, "namespace": False}


@pytest.fixture
def example_plugins(tmp_path, monkeypatch):
    """The example target (folder) and engine (named-local) of tests/plugins, registered
    through a distribution's entry points for this process (the server under test)."""
    monkeypatch.syspath_prepend(str(install_example(tmp_path / "site")))
    for plugins in (ENGINES, TARGETS):
        plugins.reset()
    yield
    for plugins in (ENGINES, TARGETS):
        plugins.reset()


@pytest.mark.parametrize("jp_server_config",
                         [{**SERVER_EXTENSIONS, "CellpipeApp": {"submit_enabled": True}}])
async def test_plugins_answers_registered_ones_after_the_built_in_ones(
        answer, jp_root_dir, tmp_path, example_plugins):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")

    code, body = await answer("plugins")

    assert code == 200, body
    assert check(body, "Plugins") == {
        "engines": ["local", "docker", "named-local"],
        "targets": ["spec", "argo", "kfp", "katib", "folder"],
        "submit_targets": ["argo", "kfp", "katib", "folder"],
        "submit_enabled": True,
        "connection": {
            "argo": [field.to_dict() for field in api.target_connection("argo")],
            "kfp": [field.to_dict() for field in api.target_connection("kfp")],
            "katib": [field.to_dict() for field in api.target_connection("katib")],
            # the example declares nothing: what every target was given before declarations
            "folder": [{"name": "host", "required": False,
                        "description": "where the target's cluster is reached", "example": ""},
                       {"name": "experiment", "required": False,
                        "description": "what the run is filed under", "example": ""},
                       {"name": "namespace", "required": False,
                        "description": "the Kubernetes namespace of the run", "example": ""}]}}
    # and what the panel then asks of a plugin target is answered within the schema
    code, compiled = await answer("compile", method="POST", body={
        "path": "pipeline.ipynb", "target": "folder", "images": IMAGES})
    assert code == 200, compiled
    assert check(compiled, "Compiled")["target"] == "folder"
    (tmp_path / "cluster").mkdir()
    code, submitted = await answer("submit", method="POST", body={
        "path": "pipeline.ipynb", "target": "folder", "images": IMAGES,
        "host": str(tmp_path / "cluster")})
    assert code == 200, submitted
    assert check(submitted, "Submitted")["target"] == "folder"


@pytest.mark.parametrize("jp_server_config",
                         [{**SERVER_EXTENSIONS, "CellpipeApp": {"submit_enabled": True}}])
async def test_submit_answers_the_workflow_it_created(answer, jp_root_dir, kube_context):
    write_nb(jp_root_dir, *PIPELINE, name="pipeline.ipynb")

    code, body = await answer("submit", method="POST", body={
        "path": "pipeline.ipynb", "target": "argo", "images": IMAGES})

    assert code == 200, body
    check(body, "Submitted")
