"""The REST routes of the side panel, under ``<base_url>/cellpipe/``.

Each verb parses its request, calls :mod:`cellpipe.api` once (in a worker thread, so
the server stays responsive while a notebook is analyzed or images are built) and shapes
the answer; failures are answered by :func:`~cellpipe.server.base.maps_errors`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe.server.base import (
    CellpipeHandler,
    RequestError,
    maps_errors,
    resolve_path,
    runs_root,
)

# Options of compile_target that name the images and the cluster resources.
IMAGE_OPTIONS = {"images", "image", "registry", "base_image", "requirements"}
CLUSTER_OPTIONS = {"namespace", "storage", "volume_size", "storage_class", "access_mode",
                   "service_account", "caching", "artifact_repository"}
MAX_WAIT = 60.0  # seconds a long poll of GET /cellpipe/runs/<id> may hold


class AnalyzeHandler(CellpipeHandler):
    """``GET /cellpipe/analyze?path=NB[&target=T]``: steps, data edges, parameters, lint.

    With ``target``, lint also says what a run on that cluster target would break on (CP6xx).
    """

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self) -> None:
        """Analyze the saved notebook; ``ok`` says whether it can run as a pipeline."""
        notebook = self.query_notebook()
        split = self.get_query_argument("split", None)
        target = self.get_query_argument("target", None) or None
        self.reply(await asyncio.to_thread(analysis, notebook, split, target))

    @web.authenticated
    @authorized
    @maps_errors
    async def post(self) -> None:
        """Analyze the notebook as the editor has it: ``{"content": <notebook JSON>}``.

        Answers what ``GET`` answers for the saved file (files the cells read are still
        looked up beside the notebook at ``path``). 413 for a body over
        ``CellpipeApp.analyze_max_bytes``; 400 for a body that is not a notebook.
        """
        limit = self.app.analyze_max_bytes
        size = len(self.request.body or b"")
        if size > limit:
            raise RequestError(413, f"the notebook sent is {_size(size)}; the limit is "
                               f"{_size(limit)}",
                               hint="send the cells without their outputs, or raise "
                               "c.CellpipeApp.analyze_max_bytes")
        notebook = self.query_notebook(must_exist=False)
        body = self.json_body()
        body.check_known({"content"})
        content = body.mapping("content")
        if content is None:
            raise RequestError(400, "missing field 'content' (the notebook's JSON)",
                               hint='send {"content": <the notebook as saved in .ipynb>}')
        parsed = api.notebook_from_dict(content, path=str(notebook))
        split = self.get_query_argument("split", None)
        target = self.get_query_argument("target", None) or None
        self.reply(await asyncio.to_thread(analysis, parsed, split, target))


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"


def analysis(notebook: Path | Any, split: str | None,
             target: str | None = None) -> dict[str, Any]:
    """The panel's view of a notebook: its DAG and diagnostics, even when lint fails.

    ``notebook`` is the saved file's path, or the notebook as the editor has it.
    """
    report = api.lint(notebook, split=split, target=target)
    # what api.compile_spec returns, without analyzing the notebook a second time
    spec = api.build_spec(report.pipeline) if report.ok else None
    return {**report.to_dict(), "pipeline": spec.pipeline.to_dict() if spec else None}


class TargetHandler(CellpipeHandler):
    """Base of the routes that compile for a target: their image and cluster options."""

    def target_options(self, data: dict[str, Any]) -> dict[str, Any]:
        """The ``api.compile_target`` keywords a request gives, checked."""
        images = data.get("images")
        if isinstance(images, str):
            images = str(self.file_field(images, "image map"))
        elif images is not None and not (isinstance(images, dict) and all(
                isinstance(v, str) for v in images.values())):
            raise RequestError(400, "field 'images' must map step names to image references, "
                               "or name an image map file")
        requirements = data.get("requirements")
        if requirements is not None:
            requirements = str(self.file_field(requirements, "requirements file"))
        options: dict[str, Any] = {"images": images, "requirements": requirements}
        for name in ("registry", "image", "base_image", *sorted(CLUSTER_OPTIONS)):
            value = data.get(name)
            if value is not None and not isinstance(value, (str, int, bool)):
                raise RequestError(400, f"field {name!r} must be a string, number or boolean")
            options[name] = value
        return {k: v for k, v in options.items() if v is not None}

    def file_field(self, value: Any, what: str) -> Path:
        """A file named by a body field, relative to the server's root."""
        if not isinstance(value, str):
            raise RequestError(400, f"the {what} must be given as a path")
        return resolve_path(self.root_dir, value, what)


class CompileHandler(TargetHandler):
    """``POST /cellpipe/compile``: the spec, an Argo Workflow or a KFP pipeline, as text."""

    @web.authenticated
    @authorized
    @maps_errors
    async def post(self) -> None:
        """Compile for ``target``; cluster targets need ``images`` or a ``registry``."""
        body = self.json_body()
        body.check_known({"path", "target", "split", *IMAGE_OPTIONS, *CLUSTER_OPTIONS})
        notebook = self.notebook(body.text("path"))
        target = choice(body.text("target"), tuple(api.target_names()), "target")
        options = self.target_options(body.data)
        notes: list[str] = []
        if target != "spec" and not options.get("images") and not options.get("registry"):
            spec = await asyncio.to_thread(api.compile_spec, str(notebook),
                                           split=body.optional_text("split"))
            note = await asyncio.to_thread(api.shared_image_note, notebook, spec, options)
            notes += [note] if note else []
        text = await asyncio.to_thread(api.compile_target, str(notebook), target,
                                       split=body.optional_text("split"),
                                       on_note=notes.append, **options)
        self.reply({"target": target, "text": text, "notes": notes})


class RunsHandler(CellpipeHandler):
    """``GET /cellpipe/runs?path=NB``: the notebook's runs; ``POST``: start one."""

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self) -> None:
        """The notebook's runs, newest first, with status, parameters and metrics."""
        notebook = self.query_notebook()
        runs = await asyncio.to_thread(api.list_runs, runs_root(notebook))
        self.reply({"runs": [run_summary(run.data) for run in reversed(runs)
                             if same_notebook(run.data.get("notebook"), notebook)]})

    @web.authenticated
    @authorized
    @maps_errors
    async def post(self) -> None:
        """Start a run in the background; answer 202 with its id as soon as it has one."""
        body = self.json_body()
        body.check_known({"path", "engine", "parameters", "cache"})
        api_path = body.text("path")
        notebook = self.notebook(api_path)
        run_id = await self.registry.start(
            notebook, runs_root(notebook), body.mapping("parameters") or {},
            engine=body.text("engine", default="local"), cache=body.flag("cache", True),
            timeout=self.app.run_start_timeout,
        )
        if run_id is None:
            self.reply({"id": None, "message": "the run is still starting (building images?); "
                        "it will appear in GET /cellpipe/runs"}, status=202)
            return
        self.set_header("Location", url_path_join(self.base_url, "cellpipe", "runs", run_id)
                        + "?" + urlencode({"path": api_path}))
        self.reply({"id": run_id}, status=202)


def run_summary(data: dict[str, Any]) -> dict[str, Any]:
    """One line of the runs list."""
    summary = {k: data.get(k) for k in ("id", "status", "engine", "created", "started",
                                        "finished", "duration")}
    summary["parameters"] = data.get("parameters", {})
    summary["metrics"] = data.get("metrics", {})
    summary["steps"] = {name: state.get("status") for name, state in
                        data.get("steps", {}).items()}
    if data.get("error"):
        summary["error"] = data["error"]
    return summary


def same_notebook(recorded: Any, notebook: Path) -> bool:
    """Whether a run's recorded notebook path (absolute, or as given to the CLI) is this one."""
    if not isinstance(recorded, str):
        return False
    path = Path(recorded)
    return path.resolve() == notebook.resolve() if path.is_absolute() else (
        path.name == notebook.name)


class RunHandler(CellpipeHandler):
    """``GET /cellpipe/runs/<id>?path=NB[&wait=S[&since=V]]``: one run's state."""

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self, run_id: str) -> None:
        """The run's state; with ``wait``, held until it changes (a long poll).

        ``version`` in the answer counts changes of a live run: pass it back as ``since``
        so that a change between two polls is not missed.
        """
        root = runs_root(self.query_notebook())
        wait = self.query_number("wait", 0.0, MAX_WAIT)
        live = self.registry.get(run_id, root)
        if live is not None and wait > 0:
            since = int(self.query_number("since", live.version, float("inf")))
            await live.changed(since, wait)
            live = self.registry.get(run_id, root)
        if live is not None:
            self.reply(run_detail(live.state(), live=True, version=live.version))
            return
        run = await asyncio.to_thread(open_run, run_id, root)
        live = self.registry.get(run.id, root)  # a prefix or "latest" of a live run
        data = live.state() if live is not None else run.data
        self.reply(run_detail(data, live=live is not None,
                              version=live.version if live is not None else None))


class CancelHandler(CellpipeHandler):
    """``POST /cellpipe/runs/<id>/cancel?path=NB``: stop a run this server started.

    Answers 202 at once: the running steps end (their processes or containers stop), the
    run is recorded ``cancelled`` and the steps that finished stay cached. 409 for a run
    that has already ended, 404 for an unknown one.
    """

    @web.authenticated
    @authorized
    @maps_errors
    async def post(self, run_id: str) -> None:
        """Ask the run to stop; its state shows ``cancelled`` when it has."""
        root = runs_root(self.query_notebook())
        live = self.registry.get(run_id, root)
        if live is None:
            run = await asyncio.to_thread(open_run, run_id, root)
            live = self.registry.get(run.id, root)
            if live is None:
                raise RequestError(409, f"run {run.id} is not running (it is {run.status})",
                                   hint="only a run this server started and that is still "
                                   "going can be cancelled")
        live.cancel.set()
        self.reply({"id": live.id, "status": "cancelling"}, status=202)


# What the panel shows of a step; run.json also keeps cache keys, pids and store paths.
STEP_FIELDS = ("status", "reason", "attempt", "attempts", "started", "finished", "duration",
               "elapsed", "message", "error", "exit_code", "metrics", "cached_from")


def run_detail(data: dict[str, Any], *, live: bool, version: int | None) -> dict[str, Any]:
    """A run's full state: each step's status, duration, message, error and metrics."""
    detail = run_summary(data)
    detail.update(notebook=data.get("notebook"), live=live, steps={
        name: step_view(state) for name, state in data.get("steps", {}).items()})
    if version is not None:
        detail["version"] = version
    return detail


def step_view(state: dict[str, Any]) -> dict[str, Any]:
    """One step of a run: its state, and the values it produced (type and size)."""
    view = {k: state[k] for k in STEP_FIELDS if k in state}
    view["outputs"] = {name: {"type": meta.get("type"), "size": meta.get("size")}
                       for name, meta in state.get("outputs", {}).items()}
    return view


def open_run(run_id: str, root: Path) -> Any:
    """The run ``run_id`` (or a unique prefix, or ``latest``) under ``root``; 404 if none."""
    try:
        return api.open_run(run_id, root)
    except CellpipeError as exc:
        raise RequestError(404, exc.message, hint=exc.hint) from exc


class StepFileHandler(CellpipeHandler):
    """What a step left in its run directory: its log or its HTML report."""

    def step_dir(self, run_id: str, step: str) -> Path:
        """The step's directory in the run; 404 for an unknown run or step."""
        run = open_run(run_id, runs_root(self.query_notebook()))
        if step not in run.steps:
            raise RequestError(404, f"run {run.id} has no step {step!r}",
                               hint=api.did_you_mean(step, set(run.steps))
                               or f"its steps are: {', '.join(run.steps) or 'none'}")
        return api.RunLayout(Path(run.path)).step(step).path


class StepLogHandler(StepFileHandler):
    """``GET /cellpipe/runs/<id>/steps/<step>/log?path=NB``: what the step printed."""

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self, run_id: str, step: str) -> None:
        """The step's log so far, as text."""
        log = api.StepLayout(self.step_dir(run_id, step)).log
        if not log.is_file():
            raise RequestError(404, f"step {step!r} has no log yet", hint="it has not started")
        text = await asyncio.to_thread(log.read_text, encoding="utf-8", errors="replace")
        self.finish(text, set_content_type="text/plain; charset=UTF-8")


class StepReportHandler(StepFileHandler):
    """``GET /cellpipe/runs/<id>/steps/<step>/report?path=NB``: the executed step as HTML."""

    @property
    def content_security_policy(self) -> str:
        """Confine the report's scripts to a unique origin, as Jupyter does for HTML files.

        A report holds the outputs of the notebook's code; sandboxed, they cannot call
        the server with the user's credentials.
        """
        # APIHandler's policy ("default-src 'none'") would also block the report's styles.
        return super(APIHandler, self).content_security_policy + "; sandbox allow-scripts"

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self, run_id: str, step: str) -> None:
        """The step's report, rendered to HTML on first request (nbconvert, off the run)."""
        report = await asyncio.to_thread(api.report_html, self.step_dir(run_id, step))
        if report is None:
            raise RequestError(404, f"step {step!r} has no report yet",
                               hint="a step's report is written when the step ends; try "
                               "again once it has run")
        html = await asyncio.to_thread(report.read_text, encoding="utf-8", errors="replace")
        self.finish(html, set_content_type="text/html; charset=UTF-8")


class SubmitHandler(TargetHandler):
    """``POST /cellpipe/submit``: start the pipeline on Argo Workflows or Kubeflow Pipelines."""

    @web.authenticated
    @authorized
    @maps_errors
    async def post(self) -> None:
        """Compile and submit (off unless ``c.CellpipeApp.submit_enabled = True``)."""
        if not self.app.submit_enabled:
            raise RequestError(403, "submitting is off; set c.CellpipeApp.submit_enabled = True",
                               hint="in jupyter_server_config.py, then restart the server")
        body = self.json_body()
        target = choice(body.text("target"), tuple(api.cluster_target_names()), "target")
        fields = api.target_connection(target)  # what the target says it reads
        known = {"path", "target", "parameters", "split", *IMAGE_OPTIONS, *CLUSTER_OPTIONS}
        body.check_known(known | {field.name for field in fields})
        notebook = self.notebook(body.text("path"))
        options = self.target_options(body.data)
        parameters = body.mapping("parameters")
        split = body.optional_text("split")
        connection: dict[str, Any] = {}
        for field in fields:
            if field.name in CLUSTER_OPTIONS:  # namespace: read and checked with the options
                connection[field.name] = options.get(field.name)
            else:
                connection[field.name] = (body.text(field.name) if field.required
                                          else body.optional_text(field.name))
        done = await asyncio.to_thread(
            api.submit, str(notebook), target, connection=connection, parameters=parameters,
            split=split, **options)
        self.reply({"target": target, "id": done.name, "status": done.status})


class PluginsHandler(CellpipeHandler):
    """``GET /cellpipe/plugins``: the engines and targets this server can use.

    With each cluster target, the ``connection`` fields it reads (``host``, ``namespace``,
    …, as the target class declares them): the panel renders its form from them.
    """

    @web.authenticated
    @authorized
    @maps_errors
    async def get(self) -> None:
        """Built-in ones first, then those installed packages register."""
        connection = await asyncio.to_thread(api.target_connections)  # loads the targets
        self.reply({"engines": api.engine_names(), "targets": api.target_names(),
                    "submit_targets": api.cluster_target_names(),
                    "submit_enabled": bool(self.app.submit_enabled),
                    "connection": {name: [field.to_dict() for field in fields]
                                   for name, fields in connection.items()}})


def choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    """``value`` if it is one of ``allowed``; else 400 naming the field and the choices."""
    if value not in allowed:
        raise RequestError(400, f"unknown {field} {value!r}",
                           hint=api.did_you_mean(value, set(allowed))
                           or f"use {' or '.join(allowed)}")
    return value


def routes() -> list[tuple[str, type[CellpipeHandler]]]:
    """The URL patterns (the extension prefixes the server's ``base_url``)."""
    from cellpipe.server.figures import StepFigureHandler, StepFiguresHandler
    from cellpipe.server.tune_routes import StudyCancelHandler, StudyHandler, TuneHandler

    run = url_path_join("/cellpipe", "runs", "(?P<run_id>[^/]+)")
    step = url_path_join(run, "steps", "(?P<step>[^/]+)")
    study = url_path_join("/cellpipe", "tune", "(?P<study>[^/]+)")
    return [
        (url_path_join("/cellpipe", "analyze"), AnalyzeHandler),
        (url_path_join("/cellpipe", "compile"), CompileHandler),
        (url_path_join("/cellpipe", "runs"), RunsHandler),
        (run, RunHandler),
        (url_path_join(run, "cancel"), CancelHandler),
        (url_path_join(step, "log"), StepLogHandler),
        (url_path_join(step, "report"), StepReportHandler),
        (url_path_join(step, "figures"), StepFiguresHandler),
        (url_path_join(step, "figures", r"(?P<number>[0-9]{1,6})\.png"), StepFigureHandler),
        (url_path_join("/cellpipe", "tune"), TuneHandler),
        (study, StudyHandler),
        (url_path_join(study, "cancel"), StudyCancelHandler),
        (url_path_join("/cellpipe", "submit"), SubmitHandler),
        (url_path_join("/cellpipe", "plugins"), PluginsHandler),
    ]
