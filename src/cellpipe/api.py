"""The façade every front end (CLI, magics, server) calls. Returns values; never prints."""

from __future__ import annotations

import gc
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellpipe.core.annotations import parse_cell as parse_cell
from cellpipe.core.atomic import write_text_atomic as write_text_atomic
from cellpipe.core.diagnostics import Diagnostic as Diagnostic
from cellpipe.core.diagnostics import did_you_mean as did_you_mean
from cellpipe.core.layout import RunLayout as RunLayout  # public here: where a run's files are
from cellpipe.core.layout import StepLayout as StepLayout
from cellpipe.core.layout import default_root as default_root
from cellpipe.core.notebook import Notebook, read_notebook
from cellpipe.core.notebook import NotebookLike as NotebookLike
from cellpipe.core.notebook import notebook_from_dict as notebook_from_dict
from cellpipe.core.pipeline import Pipeline, link
from cellpipe.core.plan import Plan, plan_notebook
from cellpipe.core.spec import PARAMETERS_GLOBAL as PARAMETERS_GLOBAL
from cellpipe.core.spec import Parameter as Parameter
from cellpipe.core.spec import PipelineSpec as PipelineSpec
from cellpipe.core.spec import StepSpec as StepSpec
from cellpipe.core.spec import build_spec as build_spec
from cellpipe.core.spec import spec_to_json as spec_to_json
from cellpipe.errors import CellpipeError, PipelineError, ToolNotFoundError
from cellpipe.targets.base import RunStatus as RunStatus
from cellpipe.targets.base import Schedule as Schedule
from cellpipe.targets.base import ScheduleOptions as ScheduleOptions

GRAPH_FORMATS = ("mermaid", "dot", "svg")


@dataclass(frozen=True)
class LintReport:
    """What ``lint`` found.

    Attributes:
        pipeline: The analyzed pipeline (steps, edges, parameters, metrics).
        diagnostics: Findings in notebook order, errors first within a cell.
        strict: Whether warnings count as errors.
        target: The cluster target the notebook was also checked for, if any.
    """

    pipeline: Pipeline
    diagnostics: tuple[Diagnostic, ...]
    strict: bool = False
    target: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing blocks the pipeline (no errors; no warnings when strict)."""
        blocking = {"error", "warning"} if self.strict else {"error"}
        return not any(d.severity in blocking for d in self.diagnostics)

    def to_dict(self) -> dict[str, Any]:
        """The pipeline's JSON view, also when lint fails: ``cellpipe lint --format json``.

        The server's ``GET /cellpipe/analyze`` answers the same object (plus the spec's
        ``pipeline``), described by the server schema's ``Analysis``.
        """
        pipeline = self.pipeline
        return {
            "notebook": pipeline.notebook.path,
            "ok": self.ok,
            "steps": [
                {
                    "name": step.name,
                    "cells": [{"index": index, "id": cell_id} for index, cell_id in step.cells],
                    "upstream": list(step.upstream),
                    "settings": dict(step.settings),
                    "parameters": list(step.parameters),
                    "metrics": list(step.metrics),
                    "reads": dict(step.reads),
                    "writes": list(step.writes),
                    "setup": list(step.setup),
                    "random_state": step.random_state or None,
                }
                for step in pipeline.steps
            ],
            "edges": [
                {"from": e.source, "to": e.target, "variables": list(e.variables),
                 "explicit": e.explicit}
                for e in pipeline.edges
            ],
            "parameters": [
                {"name": p.name, "type": p.type, "default": p.default, "cell": p.cell,
                 "line": p.line}
                for p in pipeline.parameters
            ],
            "metrics": [{"name": name, "step": step} for name, step in pipeline.metrics],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


def load_notebook(notebook: NotebookLike) -> Notebook:
    """Accept a path, an nbformat node or dict, or a :class:`Notebook`."""
    if isinstance(notebook, Notebook):
        return notebook
    if isinstance(notebook, (str, Path)):
        return read_notebook(notebook)
    return notebook_from_dict(dict(notebook))


def analyze(notebook: NotebookLike, *, split: str | None = None) -> Pipeline:
    """Read, plan and link a notebook. Problems are in ``Pipeline.diagnostics``."""
    return _plan_and_link(notebook, split)[1]


def _plan_and_link(notebook: NotebookLike, split: str | None) -> tuple[Plan, Pipeline]:
    nb = load_notebook(notebook)
    with _collector_paused():
        plan = plan_notebook(nb, split)
        return plan, link(nb, plan)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a notebook is analyzed.

    Analysis keeps every cell's syntax tree alive and makes no cyclic garbage; with the
    collector on, its full passes rescan that growing heap and per-cell time rises with
    notebook size (measured: 519 µs/cell at 2000 cells paused vs 691 running; see
    benchmarks/README.md). Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def lint(
    notebook: NotebookLike,
    *,
    split: str | None = None,
    strict: bool = False,
    environment: bool = True,
    target: str | None = None,
) -> LintReport:
    """Analyze a notebook and return its diagnostics, sorted by cell, line and severity.

    With ``environment`` (the default), imports are also checked against the installed
    distributions that step images are built from (CP501). With ``target`` (a cluster
    target: ``argo``, ``kfp``, a plugin's), also what a run there would break on that a
    local run would not (CP601–CP606), against the notebook's ``cellpipe.cluster`` settings.

    Raises:
        CellpipeError: ``target`` is no cluster target, or the cluster settings are malformed.
    """
    plan, pipeline = _plan_and_link(notebook, split)
    ids = {c.index: c.id for c in pipeline.notebook.cells}
    diagnostics = list(pipeline.diagnostics)
    if environment:
        diagnostics += _environment_diagnostics(pipeline)
    if target is not None:
        diagnostics += _cluster_diagnostics(pipeline, plan, target)
    ordered = sorted(
        diagnostics,
        key=lambda d: (
            d.cell if d.cell is not None else -1,
            d.line or 0,
            _SEVERITY_ORDER[d.severity],
            d.code,
        ),
    )
    with_ids = tuple(d if d.cell is None else _with_cell_id(d, ids.get(d.cell)) for d in ordered)
    return LintReport(pipeline, with_ids, strict, target)


def _cluster_diagnostics(pipeline: Pipeline, plan: Plan, target: str) -> list[Diagnostic]:
    """CP601–CP606: what a run on ``target`` breaks on, with the notebook's cluster settings."""
    from cellpipe.cluster_api import cluster_target_names
    from cellpipe.core.cluster_lint import ClusterFacts, cluster_diagnostics
    from cellpipe.core.spec.build import cluster_metadata
    from cellpipe.targets.cluster import ClusterMetadata, cluster_settings

    names = cluster_target_names()
    if target not in names:
        raise CellpipeError(
            f"lint --target checks a run on a cluster target; {target!r} is none",
            hint=did_you_mean(target, set(names)) or f"use {' or '.join(names)}",
        )
    notebook = pipeline.notebook
    steps = tuple(step.name for step in pipeline.steps)
    path = None if notebook.path == "<memory>" else notebook.path
    settings = cluster_settings(ClusterMetadata(cluster_metadata(notebook.metadata), steps,
                                                path))
    placed = frozenset(name for name in steps
                       if settings.node_selector_for(name) or settings.tolerations_for(name))
    return cluster_diagnostics(pipeline, plan, ClusterFacts(placed, settings.require_limits))


def _environment_diagnostics(pipeline: Pipeline) -> list[Diagnostic]:
    """CP501: imports that no installed distribution provides (images would lack them)."""
    from cellpipe.engines.docker.requirements import unmapped_imports

    steps = [(step.name, [(index, source) for (index, _), source
                          in zip(step.cells, step.sources, strict=True)])
             for step in pipeline.steps]
    path = pipeline.notebook.path
    notebook_dir = None if path == "<memory>" else Path(path).resolve().parent
    found = []
    for item in unmapped_imports(steps, notebook_dir):
        where = (f"is found at {item.found_at} but belongs to no installed distribution"
                 if item.found_at else "is not installed here")
        found.append(Diagnostic(
            "warning", "CP501",
            f"import {item.module!r} {where}: step images will not contain it",
            cell=item.cell, line=item.line, step=item.step,
            hint=f"install the distribution that provides {item.module!r}, put "
            f"{item.module}.py beside the notebook, or list it in the notebook metadata's "
            "cellpipe.requirements",
        ))
    return found


def _with_cell_id(diagnostic: Diagnostic, cell_id: str | None) -> Diagnostic:
    from dataclasses import replace

    return replace(diagnostic, cell_id=cell_id)


def compile_spec(
    notebook: NotebookLike, *, split: str | None = None, strict: bool = False
) -> PipelineSpec:
    """Compile a notebook to its typed :class:`PipelineSpec` (``to_dict()`` for its JSON).

    Raises:
        PipelineError: lint found errors (or warnings, when ``strict``); its
            ``diagnostics`` lists them.
    """
    report = lint(notebook, split=split, strict=strict, environment=False)
    if not report.ok:
        blocking = [
            d
            for d in report.diagnostics
            if d.severity == "error" or (strict and d.severity == "warning")
        ]
        raise PipelineError(
            f"the notebook has {len(blocking)} problem(s) to fix before it can be a pipeline",
            blocking,
            path=report.pipeline.notebook.path,
            hint="run `cellpipe lint` on it for the details",
        )
    from cellpipe.core.spec import build_spec

    return build_spec(report.pipeline)


def render_graph(notebook: NotebookLike, fmt: str = "mermaid", *, split: str | None = None) -> str:
    """Render the DAG as ``mermaid`` or ``dot`` text, or ``svg`` through graphviz's ``dot``."""
    from cellpipe.core.graph import to_dot, to_mermaid

    if fmt not in GRAPH_FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}; use one of {', '.join(GRAPH_FORMATS)}")
    pipeline = analyze(notebook, split=split)
    if fmt == "mermaid":
        return to_mermaid(pipeline)
    dot = to_dot(pipeline)
    if fmt == "dot":
        return dot
    return dot_to_svg(dot)


def dot_to_svg(dot: str) -> str:
    """Render dot text to SVG with graphviz's ``dot`` program."""
    program = shutil.which("dot")
    if program is None:
        raise ToolNotFoundError(
            "rendering SVG needs graphviz's `dot` program, which is not installed",
            hint="install graphviz (apt-get install graphviz, brew install graphviz), "
            "or use --format dot / --format mermaid",
        )
    result = subprocess.run(
        [program, "-Tsvg"], input=dot, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ToolNotFoundError(f"graphviz's dot failed: {result.stderr.strip()}")
    return result.stdout


def report_html(step_dir: str | Path) -> Path | None:
    """A step's executed report as HTML, rendered on first use (then kept beside it).

    Runs leave each step's report as ``report.ipynb``; rendering (nbconvert) happens when
    a report is first shown, never on a run's path. None when the step left no report.

    Raises:
        MissingDependencyError: nbconvert is not installed (``cellpipe[report]``).
    """
    from cellpipe.errors import MissingDependencyError
    from cellpipe.runtime.report import ensure_html

    try:
        return ensure_html(Path(step_dir))
    except ImportError as exc:
        raise MissingDependencyError.for_extra("nbconvert", "report",
                                               "Rendering step reports as HTML") from exc


def list_runs(root: str | Path) -> list[Run]:
    """Every run under a ``.cellpipe`` directory, oldest first."""
    from cellpipe.engines.runs import RunsDirectory
    from cellpipe.runs_api import Run

    return [Run(r.id, r.path, r.data) for r in RunsDirectory(root)]


# Running and clusters live in their own modules (what they import is imported on first
# use, so lint and compile stay fast); the front ends reach them here.
from cellpipe.cluster_api import cluster_target_names as cluster_target_names  # noqa: E402
from cellpipe.cluster_api import compile_target as compile_target  # noqa: E402
from cellpipe.cluster_api import engine_names as engine_names  # noqa: E402
from cellpipe.cluster_api import image_requirements as image_requirements  # noqa: E402
from cellpipe.cluster_api import load_target as load_target  # noqa: E402
from cellpipe.cluster_api import read_image_map as read_image_map  # noqa: E402
from cellpipe.cluster_api import shared_image as shared_image  # noqa: E402
from cellpipe.cluster_api import shared_image_note as shared_image_note  # noqa: E402
from cellpipe.cluster_api import submit as submit  # noqa: E402
from cellpipe.cluster_api import target_connection as target_connection  # noqa: E402
from cellpipe.cluster_api import target_connections as target_connections  # noqa: E402
from cellpipe.cluster_api import target_exit_code as target_exit_code  # noqa: E402
from cellpipe.cluster_api import target_logs as target_logs  # noqa: E402
from cellpipe.cluster_api import target_names as target_names  # noqa: E402
from cellpipe.cluster_api import target_searches as target_searches  # noqa: E402
from cellpipe.cluster_api import target_status as target_status  # noqa: E402
from cellpipe.cluster_run import ClusterRun as ClusterRun  # noqa: E402
from cellpipe.compare_api import Comparison as Comparison  # noqa: E402
from cellpipe.compare_api import compare as compare  # noqa: E402
from cellpipe.core.values import convert_parameter as convert_parameter  # noqa: E402
from cellpipe.runs_api import Run as Run  # noqa: E402
from cellpipe.runs_api import build_images as build_images  # noqa: E402
from cellpipe.runs_api import open_run as open_run  # noqa: E402
from cellpipe.runs_api import run as run  # noqa: E402
from cellpipe.runs_api import select_steps as select_steps  # noqa: E402
from cellpipe.runs_api import stop_warm_servers as stop_warm_servers  # noqa: E402
from cellpipe.runs_api import sweep as sweep  # noqa: E402
from cellpipe.runs_api import sweep_grid as sweep_grid  # noqa: E402
from cellpipe.runs_api import warm_servers as warm_servers  # noqa: E402
from cellpipe.schedule_api import check_schedule as check_schedule  # noqa: E402
from cellpipe.schedule_api import list_schedules as list_schedules  # noqa: E402
from cellpipe.schedule_api import schedule as schedule  # noqa: E402
from cellpipe.schedule_api import unschedule as unschedule  # noqa: E402
from cellpipe.tracking.config import Tracking as Tracking  # noqa: E402
from cellpipe.tracking.config import TrackingWarning as TrackingWarning  # noqa: E402
from cellpipe.tracking_api import sweep_child as sweep_child  # noqa: E402
from cellpipe.tracking_api import sweep_tracking as sweep_tracking  # noqa: E402
from cellpipe.tracking_api import tracked_runs as tracked_runs  # noqa: E402
from cellpipe.tracking_api import tracking_for as tracking_for  # noqa: E402
from cellpipe.tune_api import SAMPLERS as SAMPLERS  # noqa: E402
from cellpipe.tune_api import TuningInterrupted as TuningInterrupted  # noqa: E402
from cellpipe.tune_api import tune as tune  # noqa: E402
from cellpipe.tune_study import Study as Study  # noqa: E402
from cellpipe.tune_study import Trial as Trial  # noqa: E402
from cellpipe.tune_study import list_studies as list_studies  # noqa: E402
from cellpipe.tune_study import open_study as open_study  # noqa: E402

# What the front ends (CLI, server, magics) and users may use: everything else is private.
__all__ = [
    "GRAPH_FORMATS",
    "PARAMETERS_GLOBAL",
    "SAMPLERS",
    "ClusterRun",
    "Comparison",
    "Diagnostic",
    "LintReport",
    "NotebookLike",
    "Parameter",
    "PipelineSpec",
    "Run",
    "RunLayout",
    "RunStatus",
    "Schedule",
    "ScheduleOptions",
    "StepLayout",
    "StepSpec",
    "Study",
    "Tracking",
    "TrackingWarning",
    "Trial",
    "TuningInterrupted",
    "analyze",
    "build_images",
    "build_spec",
    "check_schedule",
    "cluster_target_names",
    "compare",
    "compile_spec",
    "compile_target",
    "convert_parameter",
    "default_root",
    "did_you_mean",
    "dot_to_svg",
    "engine_names",
    "image_requirements",
    "lint",
    "list_runs",
    "list_schedules",
    "list_studies",
    "load_notebook",
    "load_target",
    "notebook_from_dict",
    "open_run",
    "open_study",
    "parse_cell",
    "read_image_map",
    "render_graph",
    "report_html",
    "run",
    "schedule",
    "select_steps",
    "shared_image",
    "shared_image_note",
    "spec_to_json",
    "stop_warm_servers",
    "submit",
    "sweep",
    "sweep_child",
    "sweep_grid",
    "sweep_tracking",
    "target_connection",
    "target_connections",
    "target_exit_code",
    "target_logs",
    "target_names",
    "target_searches",
    "target_status",
    "tracked_runs",
    "tracking_for",
    "tune",
    "unschedule",
    "warm_servers",
    "write_text_atomic",
]
