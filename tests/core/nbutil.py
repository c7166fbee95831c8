"""Helpers for the analysis and linking tests: in-memory notebooks and short queries."""

from __future__ import annotations

from typing import Any

import nbformat

from cellpipe import api
from cellpipe.core.diagnostics import Diagnostic
from cellpipe.core.pipeline import Pipeline, Step

Cell = Any  # "source" | (tags, source) | ("md", text)


def notebook(*cells: Cell) -> nbformat.NotebookNode:
    """Build a notebook from cells.

    A cell is a source string (untagged code), ``(tags, source)`` where tags is one tag,
    a list of tags or ``""`` for none, or ``("md", text)`` for markdown.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for index, cell in enumerate(cells):
        if isinstance(cell, str):
            new = nbformat.v4.new_code_cell(cell)
        elif cell[0] == "md":
            new = nbformat.v4.new_markdown_cell(cell[1])
        else:
            tags, source = cell
            tags = ([tags] if tags else []) if isinstance(tags, str) else list(tags)
            new = nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {})
        new["id"] = f"cell{index}"
        nb.cells.append(new)
    return nb


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
