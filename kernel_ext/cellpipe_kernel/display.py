"""What ``%cellpipe lint``, ``graph`` and ``runs`` display: HTML with a plain-text twin."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from IPython.display import SVG, display

from cellpipe import api
from cellpipe.errors import ToolNotFoundError
from cellpipe_kernel.notebook import runs_root


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; ``rows`` hold HTML already escaped."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{cell}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _show(html_text: str, plain_text: str) -> None:
    display({"text/html": html_text, "text/plain": plain_text}, raw=True)


_SEVERITY_COLOR = {"error": "#c62828", "warning": "#b26a00", "info": "#1565c0"}


def _cell_link(notebook: Path, cell_id: str | None, label: str) -> str:
    """A link JupyterLab follows to the cell (``NB.ipynb#cell-id=ID``: it scrolls there)."""
    if not cell_id:
        return html.escape(label)
    href = f"{quote(notebook.name)}#cell-id={quote(str(cell_id))}"
    return (f"<a href='{html.escape(href)}' title='cell id {html.escape(str(cell_id))}'>"
            f"{html.escape(label)}</a>")


def show_lint(report: Any, notebook: Path) -> None:
    """Display lint's diagnostics: an HTML table (cell, line, code, message, fix) and text."""
    counts = {s: sum(d.severity == s for d in report.diagnostics) for s in ("error", "warning")}
    summary = (f"{_plural(len(report.pipeline.steps), 'step')}; "
               f"{_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')}")
    rows = []
    for d in report.diagnostics:
        color = _SEVERITY_COLOR.get(d.severity, "inherit")
        cell = "—" if d.cell is None else f"cell {d.cell + 1}"
        rows.append([
            _cell_link(notebook, d.cell_id, cell),
            "" if d.line is None else str(d.line),
            f"<span style='color:{color}'>{html.escape(d.severity)}</span>",
            f"<code>{html.escape(d.code)}</code>",
            html.escape(d.message),
            html.escape(d.hint or ""),
        ])
    title = f"<p><b>{html.escape(notebook.name)}</b> (as saved): {html.escape(summary)}</p>"
    table = _table(["cell", "line", "", "code", "problem", "how to fix"], rows) if rows else ""
    text = "\n".join([f"{notebook.name}: {summary}", *(d.format() for d in report.diagnostics)])
    _show(title + table, text)


def show_graph(notebook: Path, fmt: str) -> None:
    """Display the DAG: SVG through graphviz, else (or on request) Mermaid; or dot text."""
    if fmt == "svg":
        try:
            display(SVG(api.render_graph(notebook, "svg")))
            return
        except ToolNotFoundError as exc:
            print(f"{exc.message}: showing the graph as Mermaid instead "
                  "(JupyterLab 4 draws it; install graphviz for SVG)")
        fmt = "mermaid"
    text = api.render_graph(notebook, fmt)
    fence = f"```{fmt}\n{text.rstrip()}\n```"
    display({"text/markdown": fence, "text/plain": text}, raw=True)


def show_runs(notebook: Path) -> None:
    """Display this notebook's runs: id, status, duration, parameters that differ, metrics."""
    runs = [r for r in _list_runs(runs_root(notebook))
            if Path(str(r.data.get("notebook", ""))).name == notebook.name]
    if not runs:
        print(f"no runs of {notebook.name} yet: start one with %cellpipe run")
        return
    every = sorted({p for r in runs for p in r.parameters})
    differing = [p for p in every
                 if len({json.dumps(r.parameters.get(p), default=str) for r in runs}) > 1]
    metrics = sorted({m for r in runs for m in r.metrics})
    headers = ["run", "status", "duration", *differing, *metrics]
    rows = [[r.id, r.status, f"{float(r.data.get('duration') or 0):.1f}s",
             *(_value(r.parameters.get(p, "")) for p in differing),
             *(_value(r.metrics.get(m, "")) for m in metrics)] for r in runs]
    text = "\n".join("  ".join(row) for row in [headers, *rows])
    _show(_table(headers, [[html.escape(cell) for cell in row] for row in rows]), text)


def _list_runs(root: Path) -> list[Any]:
    return list(api.list_runs(root)) if root.is_dir() else []


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_COMPARE_TITLES = {"runs": "runs", "parameters": "parameters that differ",
                   "metrics": "metrics (change from the first run)", "steps": "steps"}


def show_comparison(comparison: api.Comparison, metrics: Sequence[str] = (),
                    plot: str | None = None) -> None:
    """Display a comparison: its tables as HTML (with a text twin), then the metric plot.

    The plot is drawn when a run has a numeric metric (or ``metrics`` names some: an
    unknown one raises); ``plot`` also writes it to that file.
    """
    from IPython.display import Image

    # Drawn first: a --metric the runs lack is an error before anything is shown.
    image = None
    if metrics or comparison.numeric_metrics():
        if plot:
            written = comparison.plot(plot, list(metrics) or None)
            image = Image(filename=str(written))
        else:
            image = Image(data=comparison.png(list(metrics) or None))
    parts, text = [], []
    for note in comparison.notes:
        parts.append(f"<p style='color:#b26a00'>note: {html.escape(note)}</p>")
        text.append(f"note: {note}")
    for section, (headers, rows) in comparison.tables().items():
        title = _COMPARE_TITLES[section]
        if section == "parameters":
            same = ", ".join(f"{k}={json.dumps(v, default=repr)}"
                             for k, v in comparison.same_parameters.items())
            line = f"same in every run ({len(comparison.same_parameters)}): {same or '—'}"
            parts.append(f"<p>{html.escape(line)}</p>")
            text.append(line)
        parts.append(f"<p><b>{html.escape(title)}</b>{'' if rows else ': none'}</p>")
        text.append(title + ("" if rows else ": none"))
        if rows:
            parts.append(_table(headers, [[html.escape(cell) for cell in row] for row in rows]))
            text.extend("  ".join(row) for row in [headers, *rows])
    _show("".join(parts), "\n".join(text))
    if image is None:
        print("no numeric metrics to plot")
        return
    display(image)
    if plot:
        print(f"wrote {plot}")
