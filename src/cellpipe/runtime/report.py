"""The step's executed report: its cells with their outputs, as a notebook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.core.atomic import write_text_atomic

if TYPE_CHECKING:
    from cellpipe.runtime.execute import StepRequest, _CellRun


def write_report(path: Path, request: StepRequest, cells: list[_CellRun]) -> None:
    """Write ``report.ipynb``: every cell that ran, with its outputs, errors included."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["cellpipe"] = {
        "step": request.step,
        "notebook": request.spec.get("notebook", {}).get("path"),
        "parameters": dict(request.parameters),
    }
    nb.cells.append(nbformat.v4.new_markdown_cell(
        f"# Step `{request.step}`\n\nExecuted by cellpipe from "
        f"`{request.spec.get('notebook', {}).get('path', '')}`."
    ))
    for run in cells:
        cell = nbformat.v4.new_code_cell(run.source)
        cell.id = f"cell-{run.index}"
        cell.execution_count = run.execution_count
        cell.outputs = [nbformat.from_dict(_jsonable(o)) for o in run.outputs]
        cell.metadata["cellpipe"] = {"cell": run.index}
        nb.cells.append(cell)
    write_text_atomic(path, nbformat.writes(nb))


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
    write_text_atomic(target, body)
    return target


def _render_from_stdin() -> None:
    """``python -m cellpipe.runtime.report``: render each report path read from stdin."""
    import sys

    try:  # warm up (imports, templates) before the first report arrives
        import nbformat
        from nbconvert import HTMLExporter

        HTMLExporter().from_notebook_node(nbformat.v4.new_notebook())
    except ImportError:
        pass
    for line in sys.stdin:
        path = Path(line.strip())
        if not line.strip():
            continue
        try:
            render_html(path)
        except ImportError:
            print("HTML reports need nbconvert: pip install 'cellpipe[report]'", file=sys.stderr)
            return
        except Exception as exc:  # one bad report must not stop the others
            print(f"{path}: cannot render HTML: {type(exc).__name__}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    _render_from_stdin()

