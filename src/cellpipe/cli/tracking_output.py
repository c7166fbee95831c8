"""MLflow tracking in the CLI: ``--track URI`` / ``--no-track``, what is said, ``runs --mlflow``."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click


def track_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--track URI`` and ``--no-track`` (``run``, ``compile``, ``submit``, ``runs``)."""
    command = click.option(
        "--no-track", is_flag=True,
        help="Do not track in MLflow, whatever the metadata or $MLFLOW_TRACKING_URI say.",
    )(command)
    return click.option(
        "--track", metavar="URI",
        help="Track in MLflow at URI (an experiment named after the pipeline) [the "
        "notebook's cellpipe.tracking metadata, else $MLFLOW_TRACKING_URI].",
    )(command)


def track_value(track: str | None, no_track: bool) -> str | bool | None:
    """What ``track=`` the api gets: a URI, False (off) or None (the metadata, the env)."""
    if no_track and track:
        raise click.UsageError("--track and --no-track contradict each other")
    return False if no_track else track


def announce(notebook: Path, track: str | bool | None, split: str | None) -> None:
    """One line on stderr saying where the runs are tracked (nothing when they are not)."""
    from cellpipe import api

    tracking = api.tracking_for(notebook, track, split=split)
    if tracking is not None:
        off = "; --no-track turns it off" if tracking.source != "option" else ""
        click.echo(f"cellpipe: tracking in {tracking.describe()}{off}", err=True)


@contextlib.contextmanager
def tracking_warnings() -> Iterator[None]:
    """Show tracking warnings as the CLI's own lines (yellow, on stderr), once each."""
    from cellpipe import api

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", api.TrackingWarning)
        try:
            yield
        finally:
            seen = set()
            for warning in caught:
                if issubclass(warning.category, api.TrackingWarning):
                    text = str(warning.message)
                    if text not in seen:
                        seen.add(text)
                        click.secho(f"warning: {text}", fg="yellow", err=True)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename,
                                         warning.lineno)


def print_tracked(result: Any) -> None:
    """Where the run was tracked (its MLflow run id), when it was."""
    tracked = result.tracking
    if tracked and tracked.get("run_id"):
        parent = f", child of {tracked['parent_run_id']}" if tracked.get("parent_run_id") else ""
        click.echo(f"mlflow run: {tracked['run_id']} in experiment {tracked['experiment']!r} "
                   f"at {tracked['uri']}{parent}")


def print_mlflow_runs(notebook: Path | None, track: str | bool | None, split: str | None,
                      fmt: str) -> None:
    """``cellpipe runs NOTEBOOK --mlflow``: the experiment's runs, read back from MLflow."""
    from cellpipe import api

    if notebook is None:
        raise click.UsageError("runs --mlflow needs the NOTEBOOK (its pipeline names the "
                               "experiment)")
    tracking, rows = api.tracked_runs(notebook, track, split=split)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no runs in {tracking.describe()}")
        return
    from rich.console import Console
    from rich.table import Table

    params = sorted({p for r in rows for p in r["params"]})
    metrics = sorted({m for r in rows for m in r["metrics"]})
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("mlflow run", "cellpipe run", "status", "parent", *params, *metrics):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(row["run_id"], row["cellpipe_run_id"] or row["name"] or "",
                      row["status"], (row["parent_run_id"] or "")[:8],
                      *(str(row["params"].get(p, ""))[:24] for p in params),
                      *(f"{row['metrics'][m]:.4g}" if m in row["metrics"] else ""
                        for m in metrics))
    console = Console()
    click.echo(f"{tracking.describe()}: {len(rows)} run(s)")
    (console if console.is_terminal else Console(width=400)).print(table)
