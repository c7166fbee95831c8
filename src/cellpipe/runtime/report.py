"""The step's executed report: its cells with their outputs, as a notebook."""

from __future__ import annotations

import html
import json
import re
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


def report_page(step_dir: Path) -> tuple[str, bool]:
    """The step's report as an HTML page, and whether nbconvert rendered it.

    A step image need not hold nbconvert (``cellpipe[report]``): without it the page is
    :func:`plain_html`, which shows the same cells and outputs, unstyled.
    """
    try:
        rendered = ensure_html(step_dir)
    except ImportError:
        rendered = None
    if rendered is not None:
        return rendered.read_text(encoding="utf-8"), True
    return plain_html(StepLayout(step_dir).report), False


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain_html(report: Path) -> str:
    """A report notebook as a self-contained HTML page, written without nbconvert.

    Sources and text outputs are escaped; PNG images are embedded; an ``text/html``
    output (a DataFrame's table) is kept as the cell displayed it, as Jupyter shows it.
    """
    nb = json.loads(report.read_text(encoding="utf-8"))
    step = (nb.get("metadata", {}).get("cellpipe") or {}).get("step", "")
    body: list[str] = []
    for cell in nb.get("cells", []):
        source = _text(cell.get("source", ""))
        if cell.get("cell_type") != "code":
            body.append(f'<div class="markdown"><pre>{html.escape(source)}</pre></div>')
            continue
        body.append(f'<pre class="source">{html.escape(source)}</pre>')
        for output in cell.get("outputs", []):
            body.append(_output_html(output))
    title = html.escape(f"cellpipe step {step}")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        "<style>body{font-family:sans-serif;margin:2em}pre{padding:.5em;overflow-x:auto}"
        ".source{background:#f5f5f5;border-left:3px solid #888}.error{color:#a00}"
        ".note{color:#666}</style></head><body>\n"
        '<p class="note">Rendered without nbconvert (install cellpipe[report] in the image '
        "for the full report).</p>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _output_html(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f'<pre class="{output.get("name", "stdout")}">' \
               f"{html.escape(_text(output.get('text', '')))}</pre>"
    if kind == "error":
        trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
        return f'<pre class="error">{html.escape(trace)}</pre>'
    data = output.get("data", {})
    if "image/png" in data:
        png = _text(data["image/png"]).replace("\n", "")
        return f'<img alt="figure" src="data:image/png;base64,{png}">'
    if "text/html" in data:
        return f'<div class="html">{_text(data["text/html"])}</div>'
    return f"<pre>{html.escape(_text(data.get('text/plain', '')))}</pre>"
