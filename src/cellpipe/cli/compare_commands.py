"""``cellpipe compare``: runs of the local history side by side, and their metrics plotted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cellpipe.cli.main import errors_to_messages, main
from cellpipe.cli.run_commands import root_option


@main.command()
@click.argument("run_ids", metavar="RUN RUN…", nargs=-1)
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Plot this metric (repeatable) [every numeric one].")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metric-over-runs plot here (PNG).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Tables for people, or JSON for tools.")
@root_option
@click.option("--notebook", type=click.Path(dir_okay=False, path_type=Path),
              help="Find the runs beside this notebook.")
@errors_to_messages
def compare(run_ids: tuple[str, ...], metrics: tuple[str, ...], plot_path: Path | None,
            fmt: str, root: Path | None, notebook: Path | None) -> None:
    """Compare runs: parameters that differ, metrics side by side, which steps reran and why.

    Metrics show each later run's change from the first run. RUN is a run id, a unique
    prefix of one, or `latest`; runs of any engine that keeps a local run record (local,
    docker). Runs of different notebooks are compared by name, with a note.

    \b
    Examples:
      cellpipe compare 20261203-101500-1a2 20261203-101644-9f0
      cellpipe compare RUN1 RUN2 RUN3 --plot metrics.png --metric accuracy
      cellpipe compare RUN1 RUN2 --format json
    """
    from cellpipe import api

    comparison = api.compare(run_ids, root=root, notebook=notebook)
    written = comparison.plot(plot_path, metrics or None) if plot_path else None
    if fmt == "json":
        data = comparison.to_dict()
        if written is not None:
            data["plot"] = str(written)
        click.echo(json.dumps(data, indent=2, default=repr))
        return
    _print(comparison)
    if written is not None:
        click.echo(f"wrote {written} (metrics over the runs, PNG)")


def _print(comparison: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    # On a terminal rich fits the width; piped output keeps every column whole.
    out = console if console.is_terminal else Console(width=400)
    for note in comparison.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    tables = comparison.tables()
    titles = {"runs": "runs", "parameters": "parameters that differ",
              "metrics": "metrics (change from the first run)", "steps": "steps"}
    for section, (headers, rows) in tables.items():
        if section == "parameters":
            same = comparison.same_parameters
            listed = ", ".join(f"{k}={json.dumps(v, default=repr)}" for k, v in same.items())
            out.print(f"[bold]same in every run[/] ({len(same)}): {listed or '—'}",
                      highlight=False)
        if not rows:
            out.print(f"[bold]{titles[section]}[/]: none", highlight=False)
            continue
        table = Table(title=titles[section], title_justify="left", title_style="bold",
                      show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in headers:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        out.print(table, highlight=False)
