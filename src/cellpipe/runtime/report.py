"""The step's executed report: its cells with their outputs, as a notebook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.core.layout import StepLayout

if TYPE_CHECKING:
    from cellpipe.runtime.request import StepRequest
    from cellpipe.runtime.shell import CellRun


def write_report(path: Path, request: StepRequest, cells: list[CellRun]) -> None:
    """Write ``report.ipynb``: every cell that ran, with its outputs, errors included.

    The notebook (format 4.5) is written as the JSON it is: no nbformat import on a step's
    path (it loads a schema library that costs seconds to import in some environments).
    """
    notebook = request.spec.notebook.path
    nb_cells: list[dict[str, Any]] = [{
        "cell_type": "markdown", "id": "cellpipe-step", "metadata": {},
        "source": f"# Step `{request.step}`\n\nExecuted by cellpipe from `{notebook}`.",
    }]
    for run in cells:
        nb_cells.append({
            "cell_type": "code",
            "execution_count": run.execution_count,
            "id": f"cell-{run.index}",
            "metadata": {"cellpipe": {"cell": run.index}},
            "outputs": [_jsonable(o) for o in run.outputs],
            "source": run.source,
        })
    nb = {
        "cells": nb_cells,
        "metadata": {
            "cellpipe": {"step": request.step, "notebook": notebook or None,
                         "parameters": dict(request.parameters)},
            "kernelspec": {"display_name": "Python 3", "language": "python",
                           "name": "python3"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False, default=str)
    write_text_atomic(path, text + "\n", durable=False)  # a record to look at, not state


def _jsonable(output: dict[str, Any]) -> dict[str, Any]:
    # Display data may hold values JSON cannot (bytes of images are already base64 text).
    result: dict[str, Any] = json.loads(json.dumps(output, default=str))
    return result


def render_html(report: Path) -> Path:
    """Render a report notebook to HTML next to it (nbconvert; imported only here)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(report, as_version=4))
    target = report.with_suffix(".html")
    write_text_atomic(target, body, durable=False)  # rendered again if lost
    return target


def ensure_html(step_dir: Path) -> Path | None:
    """The step's ``report.html``, rendered now if it is missing or older than its notebook.

    None when the step left no report. Raises ImportError without nbconvert.
    """
    files = StepLayout(step_dir)
    report, target = files.report, files.report_html
    if not report.is_file():
        return target if target.is_file() else None
    if target.is_file() and target.stat().st_mtime_ns >= report.stat().st_mtime_ns:
        return target
    return render_html(report)
