"""Helpers for the analysis and linking tests: in-memory notebooks and short queries."""

from __future__ import annotations

from typing import Any

import nbformat

from cellpipe import api
from cellpipe.core.diagnostics import Diagnostic
from cellpipe.core.pipeline import Pipeline, Step
from tests.conftest import make_nb

Cell = Any  # "source" | (tags, source) | ("md", text)


def notebook(*cells: Cell) -> nbformat.NotebookNode:
    """Build a notebook from cells (see :func:`tests.conftest.make_nb`)."""
    return make_nb(*cells)


def analyze(*cells: Cell) -> Pipeline:
    """Analyze a notebook built from ``cells``."""
    return api.analyze(notebook(*cells))


def step(pipeline: Pipeline, name: str) -> Step:
    """The step called ``name``."""
    return pipeline.step(name)


def reads(pipeline: Pipeline, name: str) -> dict[str, str]:
    """Variable → producing step, for step ``name``."""
    return dict(pipeline.step(name).reads)


def edges(pipeline: Pipeline) -> set[tuple[str, str]]:
    """The DAG's edges as (source, target) pairs."""
    return {(e.source, e.target) for e in pipeline.edges}


def found(pipeline: Pipeline, code: str) -> list[Diagnostic]:
    """Diagnostics with ``code``."""
    return [d for d in pipeline.diagnostics if d.code == code]


def codes(pipeline: Pipeline) -> list[str]:
    """Codes of all diagnostics, sorted."""
    return sorted(d.code for d in pipeline.diagnostics)


def errors(pipeline: Pipeline) -> list[tuple[str, int | None, int | None, str | None]]:
    """``(code, cell, line, variable)`` of every error."""
    return [(d.code, d.cell, d.line, d.variable) for d in pipeline.errors]
