"""``cellpipe run``, ``runs``, ``show`` and ``logs``: running notebooks and looking at runs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from cellpipe.cli.main import errors_to_messages, main, notebook_argument, split_option
from cellpipe.cli.options import connection_for, docker_options, print_image
from cellpipe.cli.tracking_output import (
    announce,
    print_mlflow_runs,
    print_tracked,
    track_options,
    track_value,
    tracking_warnings,
)

_STATE_STYLE = {
    "pending": "dim", "running": "yellow", "retrying": "yellow", "succeeded": "green",
    "cached": "cyan", "failed": "red bold", "skipped": "dim", "blocked": "red",
    "cancelled": "magenta",
}


def parse_params(values: tuple[str, ...]) -> dict[str, str]:
    """``-p NAME=VALUE`` options as a dict of strings (typed later against the spec)."""
    parsed = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="-p")
        parsed[name.strip()] = value
    return parsed


def _read_params_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    from cellpipe.errors import CellpipeError

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CellpipeError(f"cannot read parameters: {exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise CellpipeError("a parameters file maps names to values", path=str(path),
                            hint="write one `name: value` per line")
    return data


root_option = click.option("--root", type=click.Path(file_okay=False, path_type=Path),
                           help="The .cellpipe directory [beside the notebook, or ./.cellpipe].")


class Progress:
    """A live table of step states (rich), or plain lines when not on a terminal."""

    def __init__(self, steps: list[str], live: bool) -> None:
        self.steps = steps
        self.state = {s: ("pending", "") for s in steps}
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.live = None
        if live:
            from rich.live import Live

            self.live = Live(self.render(), refresh_per_second=8, transient=False)

    def render(self) -> Any:
        """The table of every step's state, elapsed time and message."""
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("step")
        table.add_column("state")
        table.add_column("elapsed", justify="right")
        table.add_column("")
        now = time.monotonic()
        for step in self.steps:
            status, message = self.state[step]
            elapsed = ""
            if step in self.started:
                elapsed = f"{self.ended.get(step, now) - self.started[step]:.1f}s"
            table.add_row(step, f"[{_STATE_STYLE.get(status, '')}]{status}[/]", elapsed,
                          message[:80])
        return table

    def __call__(self, event: Any) -> None:
        """Take one step event: the table (or a plain line) shows it."""
        if event.step not in self.state:  # a step (a Katib trial) the run made as it went
            self.steps.append(event.step)
        if event.status == "running" and event.step not in self.started:
            self.started[event.step] = time.monotonic()
        if event.status not in ("running", "retrying"):
            self.ended[event.step] = time.monotonic()
        self.state[event.step] = (event.status, event.message)
        if self.live is not None:
            self.live.update(self.render())
        else:
            suffix = f" ({event.message})" if event.message else ""
            timing = f" {event.elapsed:.2f}s" if event.elapsed else ""
            click.echo(f"  {event.step}: {event.status}{timing}{suffix}", err=True)

    def __enter__(self) -> Progress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)


@main.command()
@notebook_argument
@click.option("-p", "--parameter", "params", multiple=True, metavar="NAME=VALUE",
              help="Set a parameter (converted to its declared type). With --sweep, "
              "comma-separated values form a grid.")
@click.option("-f", "--parameters-file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file of parameter values (papermill's -f).")
@split_option
@click.option("--step", "steps", multiple=True, metavar="STEP",
              help="Run only this step (repeatable); its inputs come from the cache.")
@click.option("--from", "start", metavar="STEP", help="Run this step and everything after it.")
@click.option("--to", "stop", metavar="STEP", help="Run this step and everything before it.")
@click.option("--resume", metavar="RUN", help="Complete a failed or cancelled run in place.")
@click.option("--workers", type=click.IntRange(min=1), help="Steps at most at once [CPU count].")
@click.option("--no-cache", is_flag=True, help="Run every step, even unchanged ones.")
@click.option("--sweep", is_flag=True, help="Run the grid of comma-separated -p values.")
@click.option("--engine", default="local", show_default=True, metavar="ENGINE",
              help="local (steps as local processes), docker (each in a container from its "
              "own image, built or reused first), or an engine a package registers.")
@docker_options
@click.option("--network", default="none", show_default=True,
              help="Docker network of the step containers (e.g. host); --engine docker.")
@click.option("--runtime", type=click.Choice(["ipython", "kernel"]), default="ipython",
              show_default=True, help="Run each step in an IPython shell in its process, or "
              "as a notebook in a Jupyter kernel (papermill) for code that needs one.")
@root_option
@track_options
@errors_to_messages
def run(notebook: Path, params: tuple[str, ...], parameters_file: Path | None,
        split: str | None, steps: tuple[str, ...], start: str | None, stop: str | None,
        resume: str | None, workers: int | None, no_cache: bool, sweep: bool,
        engine: str, base_image: str | None, registry: str | None,
        requirements: Path | None, network: str, runtime: str, root: Path | None,
        track: str | None, no_track: bool) -> None:
    """Run NOTEBOOK as a pipeline on this machine; exits 1 if a step failed.

    \b
    Examples:
      cellpipe run train.ipynb -p lr=0.01 -p epochs=20
      cellpipe run train.ipynb -f params.yaml --workers 2
      cellpipe run train.ipynb --from features        # features and what follows
      cellpipe run train.ipynb --resume 20261124-101500-1a2b3c
      cellpipe run train.ipynb -p lr=0.1,0.01 -p depth=3,5 --sweep
      cellpipe run train.ipynb --engine docker --base-image python:3.11-slim
      cellpipe run train.ipynb --track http://127.0.0.1:5000   # an MLflow run
    """
    from cellpipe import api

    values: dict[str, Any] = _read_params_file(parameters_file)
    raw = parse_params(params)
    spec = api.compile_spec(notebook, split=split)
    names = [s.name for s in spec.steps]
    options: dict[str, Any] = {
        "split": split, "workers": workers, "cache": not no_cache, "step": steps,
        "start": start, "stop": stop, "resume": resume, "engine": engine, "runtime": runtime,
        "root": _root(notebook, root), "track": track_value(track, no_track)}
    announce(notebook, options["track"], split)
    if engine == "docker":
        options.update({"base_image": base_image, "registry": registry,
                        "requirements": requirements, "network": network,
                        "on_image": print_image})
    if sweep:
        grid = {name: [api.convert_parameter(spec, name, v) for v in value.split(",")]
                for name, value in raw.items()}
        fixed = {k: v for k, v in values.items() if k not in grid}
        runs = []
        with tracking_warnings(), api.sweep_tracking(notebook, grid, track=options["track"],
                                                     split=split) as parent:
            for combo in api.sweep_grid(grid):
                click.echo(f"== {', '.join(f'{k}={v!r}' for k, v in combo.items())}", err=True)
                with Progress(names, live=sys.stderr.isatty()) as progress, \
                        api.sweep_child(parent, combo):
                    runs.append(api.run(notebook, {**fixed, **combo}, on_event=progress,
                                        **options))
        _print_runs_table(runs, list(grid))
        if parent is not None and parent.run_id:
            click.echo(f"mlflow parent run: {parent.run_id} ({len(parent.children)} nested "
                       f"runs) in {parent.tracking.describe()}")
        sys.exit(0 if all(r.status == "succeeded" for r in runs) else 1)
    values.update(raw)
    try:
        with tracking_warnings(), Progress(names, live=sys.stderr.isatty()) as progress:
            result = api.run(notebook, values, on_event=progress, **options)
    except KeyboardInterrupt:
        click.secho("run cancelled: its steps were stopped; finished steps are kept "
                    "(complete it with --resume RUN; see `cellpipe runs`)", fg="magenta",
                    err=True)
        sys.exit(130)
    _summary(result)
    sys.exit(0 if result.status == "succeeded" else 1)


def _summary(result: Any) -> None:
    color = {"succeeded": "green", "failed": "red", "cancelled": "magenta"}.get(result.status)
    click.secho(f"run {result.id} {result.status} in {result.data.get('duration', 0):.2f}s",
                fg=color, bold=True)
    for name, state in result.steps.items():
        if state["status"] == "failed":
            click.secho(f"  {name}: {state.get('error', {}).get('message', 'failed')}", fg="red")
            click.echo(f"    log: cellpipe logs {result.id} {name}")
        elif state["status"] == "blocked":
            click.secho(f"  {name}: blocked: {state.get('message', '')}", fg="red")
    if result.metrics:
        click.echo("metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result.metrics.items()))
    print_tracked(result)
    click.echo(f"run directory: {result.path}")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_runs_table(runs: list[Any], param_names: list[str] | None = None) -> None:
    """Runs side by side: the parameters that differ between them, then every metric."""
    from rich.console import Console
    from rich.table import Table

    metric_names = sorted({m for r in runs for m in r.metrics})
    if param_names is None:
        every = sorted({p for r in runs for p in r.parameters})
        param_names = [p for p in every
                       if len({json.dumps(r.parameters.get(p), default=str) for r in runs}) > 1]
    data = {r.id: _data_digest(r) for r in runs}
    show_data = len(set(data.values()) - {""}) > 1  # the runs saw different data files
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    columns = ["run", "notebook", "status", "duration", *param_names, *metric_names]
    if show_data:
        columns.insert(4, "data")
    for column in columns:
        table.add_column(column, no_wrap=True,
                         justify="left" if column in ("run", "notebook", "status") else "right")
    for r in runs:
        row = [r.id, Path(r.data.get("notebook", "")).name, r.status,
               f"{r.data.get('duration', 0):.1f}s"]
        if show_data:
            row.append(data[r.id])
        row += [_fmt(r.parameters.get(p, ""))[:24] for p in param_names]
        row += [_fmt(r.metrics.get(m, "")) for m in metric_names]
        table.add_row(*row)
    console = Console()
    # On a terminal rich fits the width; piped output keeps every column whole.
    (console if console.is_terminal else Console(width=400)).print(table)


def _data_digest(run: Any) -> str:
    """A short digest of the external files a run's steps read ("" when none)."""
    import hashlib

    seen = sorted((path, f.get("digest") or f.get("sha256")) for state in run.steps.values()
                  for path, f in state.get("files", {}).items() if f.get("from") == "external")
    if not seen:
        return ""
    return hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:8]


def _root(notebook: Path | None, root: Path | None) -> Path:
    from cellpipe.api import default_root

    return root or default_root(str(notebook) if notebook else None)


@main.command()
@click.argument("notebook", required=False, type=click.Path(dir_okay=False, path_type=Path))
@root_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--mlflow", is_flag=True, help="List NOTEBOOK's runs tracked in MLflow (its "
              "experiment, read back from the server) instead of the local ones.")
@click.option("--track", metavar="URI", help="With --mlflow: the tracking server [the "
              "notebook's cellpipe.tracking metadata, else $MLFLOW_TRACKING_URI].")
@split_option
@errors_to_messages
def runs(notebook: Path | None, root: Path | None, fmt: str, mlflow: bool, track: str | None,
         split: str | None) -> None:
    """List runs with their parameters and metrics side by side (of NOTEBOOK, if given).

    \b
    Examples:
      cellpipe runs train.ipynb
      cellpipe runs train.ipynb --mlflow --track http://127.0.0.1:5000
    """
    from cellpipe import api

    if mlflow:
        print_mlflow_runs(notebook, track, split, fmt)
        return

    found = api.list_runs(_root(notebook, root))
    if notebook is not None:
        found = [r for r in found if Path(r.data.get("notebook", "")).name == notebook.name]
    if fmt == "json":
        click.echo(json.dumps([{"id": r.id, **{k: r.data.get(k) for k in (
            "notebook", "status", "duration", "parameters", "metrics")}} for r in found],
            indent=2))
        return
    if not found:
        click.echo("no runs yet: start one with `cellpipe run NOTEBOOK`")
        return
    _print_runs_table(found)


@main.command()
@click.argument("run_id", metavar="RUN")
@root_option
@click.option("--notebook", type=click.Path(dir_okay=False, path_type=Path),
              help="Find the runs beside this notebook.")
@click.option("--values", "values", is_flag=True,
              help="List every name the notebook ends with: kind, type, size, producer.")
@errors_to_messages
def show(run_id: str, root: Path | None, notebook: Path | None, values: bool) -> None:
    """Show a run: status, parameters, metrics, and every step with why it ran."""
    from cellpipe import api

    result = api.open_run(run_id, _root(notebook, root))
    if values:
        _print_values(result)
        return
    _summary(result)
    click.echo("parameters: " + json.dumps(result.parameters))
    for name, state in result.steps.items():
        style = _STATE_STYLE.get(state["status"], "").split()[0] or None
        line = f"  {name:<24} " + click.style(f"{state['status']:<10}", fg=style if style in (
            "green", "red", "yellow", "cyan", "magenta") else None)
        if "duration" in state:
            line += f" {state['duration']:>7.2f}s"
        reason = state.get("reason") or state.get("message") or ""
        click.echo(f"{line}  {reason}")
        for path, seen in sorted(state.get("files", {}).items()):
            shown = seen.get("digest") or seen.get("sha256") or ""
            click.echo(f"      reads {path}  {shown[:12]}  ({seen['from']})")
    for warning in result.warnings:
        click.secho(f"warning [{warning['step']}]: {warning['message']}", fg="yellow")


@main.command()
@click.option("--stop", is_flag=True, help="Ask them to exit (after their running steps).")
@errors_to_messages
def servers(stop: bool) -> None:
    """List the warm servers local steps fork from (or --stop them).

    A server preloads a notebook's installed modules and stays CELLPIPE_WARM_IDLE seconds
    (default 120) after its last step, so the next run of the same environment starts warm.
    """
    from cellpipe import api

    if stop:
        click.echo(f"asked {api.stop_warm_servers()} warm server(s) to exit")
        return
    found = api.warm_servers()
    if not found:
        click.echo("no warm server is running")
        return
    click.echo(f"{'pid':>8} {'steps':>5} {'idle s':>7}  socket")
    for server in found:
        click.echo(f"{server['pid']:>8} {server['steps']:>5} {server['idle_seconds']:>7.1f}  "
                   f"{server['socket']}")


@main.command()
@click.argument("run_id", metavar="RUN")
@root_option
@click.option("--notebook", type=click.Path(dir_okay=False, path_type=Path),
              help="Find the runs beside this notebook.")
@errors_to_messages
def verify(run_id: str, root: Path | None, notebook: Path | None) -> None:
    """Check every artifact of a run in full (size and digest); exit 1 if one is damaged."""
    from cellpipe import api

    result = api.open_run(run_id, _root(notebook, root))
    rows = result.verify()
    for row in rows:
        if not row["ok"]:
            click.secho(f"  {row['step']}/{row['name']}: {row['problem']}", fg="red")
    damaged = [row for row in rows if not row["ok"]]
    total = sum(row["size"] for row in rows)
    algorithms = ", ".join(sorted({row["algorithm"] for row in rows})) or "none"
    click.echo(f"run {result.id}: {len(rows) - len(damaged)} of {len(rows)} artifacts intact "
               f"({total / 1e6:.1f} MB, {algorithms})")
    if damaged:
        raise SystemExit(1)


def _print_values(result: Any) -> None:
    """The names a run can load (and those it cannot, with why), as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("name", "kind", "type", "size", "from"):
        table.add_column(column, no_wrap=column != "from",
                         justify="right" if column == "size" else "left")
    for row in result.values():
        size = row.get("size")
        where = row.get("note") or row.get("step") or row.get("source") or (
            json.dumps(row["value"]) if "value" in row else "")
        table.add_row(row["name"], row["kind"], str(row.get("type") or ""),
                      _size(size) if isinstance(size, int) else "", str(where)[:80])
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


@main.command()
@click.argument("run_id", metavar="RUN")
@click.argument("step")
@root_option
@click.option("--notebook", type=click.Path(dir_okay=False, path_type=Path),
              help="Find the runs beside this notebook.")
@click.option("--target", default="local", show_default=True, metavar="TARGET",
              help="local, or the cluster target the run was submitted to (argo, kfp, a "
              "plugin's): RUN is then its name there.")
@click.option("--namespace", help="A cluster run's Kubernetes namespace.")
@click.option("--host", metavar="URL", help="KFP: the Kubeflow Pipelines API endpoint.")
@errors_to_messages
def logs(run_id: str, step: str, root: Path | None, notebook: Path | None, target: str,
         namespace: str | None, host: str | None) -> None:
    """Print what STEP printed in run RUN (`latest` for the newest local run)."""
    from cellpipe import api

    if target != "local":
        connection = connection_for(target, {"host": host, "namespace": namespace})
        click.echo(api.target_logs(target, run_id, step, **connection), nl=False)
        return
    click.echo(api.open_run(run_id, _root(notebook, root)).log(step), nl=False)
