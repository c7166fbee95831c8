"""``cellpipe tune``: search parameters for the best metric (Optuna), show and list studies."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from cellpipe.cli.main import errors_to_messages, main
from cellpipe.cli.run_commands import parse_params, root_option
from cellpipe.cli.tracking_output import announce, track_options, track_value, tracking_warnings

_STATE_STYLE = {"RUNNING": "yellow", "COMPLETE": "green", "FAIL": "red", "WAITING": "dim",
                "PRUNED": "magenta"}
_LIVE_ROWS = 25  # the live table shows the newest trials; --show shows them all
_SETTING_KEYS = {"objective", "direction", "space", "trials", "sampler", "seed"}


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trials_table(study: Any, trials: list[Any], limit: int | None = None) -> Any:
    """A rich table of trials: number, state, each tuned parameter, the objective, run."""
    from rich.table import Table

    names = list(study.settings.get("space") or {})
    best = study.best_trial
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("#", "state", *names, study.objective, "time", "run", ""):
        table.add_column(column, no_wrap=column != "",
                         justify="right" if column in ("#", study.objective, "time") else "left")
    shown = trials[-limit:] if limit else trials
    for trial in shown:
        style = _STATE_STYLE.get(trial.state, "")
        state = f"[{style}]{trial.state.lower()}[/]" if style else trial.state.lower()
        if best is not None and trial.number == best.number:
            state += " [bold green]★[/]"
        value = "" if trial.value is None else _fmt(trial.value)
        table.add_row(str(trial.number), state,
                      *[_fmt(trial.params[n]) if n in trial.params else "" for n in names],
                      value, f"{trial.duration:.1f}s" if trial.duration is not None else "",
                      trial.run_id or "", (trial.reason or "")[:70])
    if limit and len(trials) > limit:
        table.caption = f"… and {len(trials) - limit} earlier trials (cellpipe tune --show)"
    return table


class LiveTrials:
    """The live view of a tuning session: its trials as they start and end, the best so far.

    On a terminal a rich table redrawn in place; otherwise one line per finished trial.
    """

    def __init__(self, live: bool) -> None:
        self.trials: dict[int, Any] = {}
        self.study: Any = None
        self.started = time.monotonic()
        self.live = None
        if live:
            from rich.live import Live

            self.live = Live(refresh_per_second=4, transient=False)

    def render(self) -> Any:
        """The header (study, best so far) over the table of trials."""
        from rich.console import Group
        from rich.text import Text

        study = self.study
        done = sum(t.state not in ("RUNNING", "WAITING") for t in self.trials.values())
        header = f"study {study.name}: {study.objective} ({study.direction}), {done} trials " \
            f"done, {time.monotonic() - self.started:.0f}s"
        best = study.best_trial
        if best is not None:
            header += f"; best {_fmt(best.value)} (trial {best.number}: " + ", ".join(
                f"{k}={_fmt(v)}" for k, v in best.params.items()) + ")"
        rows = sorted(self.trials.values(), key=lambda t: t.number)
        return Group(Text(header, style="bold"), trials_table(study, rows, _LIVE_ROWS))

    def __call__(self, study: Any, trial: Any) -> None:
        """``on_trial``: a trial started or ended."""
        self.study = study
        self.trials[trial.number] = trial
        if self.live is not None:
            self.live.update(self.render())
        elif trial.state != "RUNNING":
            values = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
            outcome = f"{study.objective}={_fmt(trial.value)}" if trial.value is not None \
                else (trial.reason or "")
            click.echo(f"  trial {trial.number} {trial.state.lower()}: {values}: {outcome}"
                       + (f" (run {trial.run_id})" if trial.run_id else ""), err=True)

    def __enter__(self) -> LiveTrials:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)


@main.command()
@click.argument("notebook", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--objective", metavar="METRIC", help="The metric to optimize (one of the "
              "notebook's metrics cell).")
@click.option("--maximize/--minimize", "maximize", default=None,
              help="Which way the metric is better [maximize].")
@click.option("-p", "--param", "space", multiple=True, metavar="NAME=SPACE",
              help="A parameter's range: uniform(LOW, HIGH), loguniform(LOW, HIGH), "
              "int(LOW, HIGH[, STEP]), logint(LOW, HIGH) or choice(A, B, ...).")
@click.option("--space", "space_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A YAML file: NAME: SPACE lines, or settings as in the notebook's "
              "metadata.cellpipe.tune (objective, direction, space, trials, sampler, seed).")
@click.option("--set", "fixed", multiple=True, metavar="NAME=VALUE",
              help="An untuned parameter's value for every trial.")
@click.option("--trials", type=click.IntRange(min=1), help="Finished trials wanted [20; a "
              "grid: all its points].")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials at once (each a run of its own).")
@click.option("--sampler", metavar="NAME", help="tpe, random, grid or cmaes [tpe].")
@click.option("--seed", type=int, help="Seed the sampler: the same trials in the same order.")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Start no trial after this long.")
@click.option("--study", "study_name", metavar="NAME",
              help="Name the study [NOTEBOOK-OBJECTIVE-TIME].")
@click.option("--resume", metavar="STUDY", help="Go on with a study (its interrupted trial "
              "first) until it has --trials finished trials.")
@click.option("--show", metavar="STUDY", help="Show a study: trials, parameter importances, "
              "and its optimization-history plot (PNG).")
@click.option("--list", "list_", is_flag=True, help="List the studies.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="With --show: write the plot here [.cellpipe/tune/STUDY/history.png].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="With --show or --list: a table, or JSON for tools.")
@click.option("--workers", type=click.IntRange(min=1), help="Steps at most at once per run.")
@click.option("--no-cache", is_flag=True, help="Run every step of every trial.")
@track_options
@root_option
@errors_to_messages
def tune(notebook: Path | None, objective: str | None, maximize: bool | None,
         space: tuple[str, ...], space_file: Path | None, fixed: tuple[str, ...],
         trials: int | None, parallel: int, sampler: str | None, seed: int | None,
         timeout: float | None, study_name: str | None, resume: str | None, show: str | None,
         list_: bool, output: Path | None, fmt: str, workers: int | None, no_cache: bool,
         track: str | None, no_track: bool, root: Path | None) -> None:
    """Tune NOTEBOOK's parameters for the best value of a metric (Optuna, locally).

    Each trial is a run; steps that read no tuned parameter come from the cache, so the
    data is loaded and cleaned once. The study is kept in .cellpipe/tune/studies.db:
    Ctrl-C keeps the finished trials, --resume goes on. Exits 1 if no trial completed.

    \b
    Examples:
      cellpipe tune train.ipynb --objective accuracy -p "C=loguniform(1e-3, 10)" \\
          -p "max_depth=int(2, 8)" --trials 20 --seed 0
      cellpipe tune train.ipynb --objective loss --minimize -p "kernel=choice(rbf, linear)" \\
          --sampler grid
      cellpipe tune train.ipynb --resume train-accuracy-20261203-101500 --trials 40
      cellpipe tune --list
      cellpipe tune --show train-accuracy-20261203-101500
      cellpipe tune train.ipynb --objective accuracy -p "C=loguniform(1e-3, 10)" \\
          --track http://127.0.0.1:5000     # one MLflow run, a nested run per trial
    """
    from cellpipe import api

    runs_root = root or api.default_root(str(notebook) if notebook else None)
    if list_:
        _print_studies(api.list_studies(runs_root), fmt)
        return
    if show:
        _show(api.open_study(show, runs_root), output, fmt)
        return
    if notebook is None:
        if not resume:
            raise click.UsageError("give the NOTEBOOK to tune (or --list, --show STUDY)")
        notebook = Path(api.open_study(resume, runs_root).settings["notebook"])
    config = _read_space_file(space_file) if space_file else None
    direction = None if maximize is None else ("maximize" if maximize else "minimize")
    view = LiveTrials(live=sys.stderr.isatty())
    tracked = track_value(track, no_track)
    announce(notebook, tracked, None)
    try:
        with view, tracking_warnings():
            study = api.tune(notebook, objective, direction, list(space) or None, trials,
                             parallel, sampler, seed, timeout=timeout, study=study_name,
                             resume=resume, parameters=parse_params(fixed) or None,
                             config=config, root=runs_root, cache=not no_cache,
                             workers=workers, on_trial=view, track=tracked)
    except api.TuningInterrupted as stopped:
        done = [t for t in stopped.study.trials_in("COMPLETE", "FAIL") if not t.interrupted]
        click.secho(f"study {stopped.study.name} interrupted: its {len(done)} finished "
                    f"trials are kept; go on with `cellpipe tune {notebook} --resume "
                    f"{stopped.study.name}`", fg="magenta", err=True)
        sys.exit(130)
    _summary(study)
    sys.exit(0 if study.best_trial is not None else 1)


def _summary(study: Any) -> None:
    trials = study.trials
    failed = [t for t in trials if t.state == "FAIL"]
    best = study.best_trial
    click.secho(f"study {study.name}: {len(trials)} trials, {len(failed)} failed",
                bold=True, fg="red" if best is None else None)
    if best is None:
        click.secho("no trial completed: see their reasons with "
                    f"`cellpipe tune --show {study.name}`", fg="red")
        return
    click.secho(f"best {study.objective}: {_fmt(best.value)} (trial {best.number}, run "
                f"{best.run_id})", fg="green", bold=True)
    click.echo("best parameters: " + json.dumps(best.params))
    click.echo(f"show it: cellpipe tune --show {study.name}")


def _show(study: Any, output: Path | None, fmt: str) -> None:
    from rich.console import Console

    from cellpipe.errors import CellpipeError

    importances: dict[str, float] | None = None
    note = None
    try:
        importances = study.importances()
    except CellpipeError as exc:  # fewer than 2 completed trials, or no variation
        note = exc.message
    plot = study.plot_history(output) if study.best_trial is not None else None
    if fmt == "json":
        click.echo(json.dumps({**study.to_dict(), "importances": importances,
                               "importances_note": note,
                               "plot": str(plot) if plot else None}, indent=2, default=str))
        return
    settings = study.settings
    space = ", ".join(f"{k}={v}" for k, v in (settings.get("space") or {}).items())
    click.secho(f"study {study.name}: {study.objective} ({study.direction}) of "
                f"{settings.get('notebook')}", bold=True)
    click.echo(f"space: {space}; sampler {settings.get('sampler')}"
               + (f" (seed {settings['seed']})" if settings.get("seed") is not None else "")
               + f"; {settings.get('trials')} trials wanted")
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(
        trials_table(study, study.trials))
    best = study.best_trial
    if best is not None:
        click.secho(f"best {study.objective}: {_fmt(best.value)} (trial {best.number}, run "
                    f"{best.run_id}): {json.dumps(best.params)}", fg="green")
    if importances is not None:
        click.echo("parameter importances: " + ", ".join(
            f"{name} {share:.2f}" for name, share in importances.items()))
    else:
        click.echo(f"parameter importances: {note}")
    if plot is not None:
        click.echo(f"optimization history: {plot}")
    else:
        click.echo("optimization history: no completed trial to plot")


def _print_studies(studies: list[Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps([vars(s) for s in studies], indent=2))
        return
    if not studies:
        click.echo("no studies yet: start one with `cellpipe tune NOTEBOOK --objective METRIC "
                   "-p NAME=SPACE`")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("study", "notebook", "objective", "trials", "complete", "best", "started"):
        table.add_column(column, no_wrap=True,
                         justify="right" if column in ("trials", "complete", "best") else "left")
    for s in studies:
        table.add_row(s.name, Path(s.notebook).name, f"{s.objective} ({s.direction[:3]})",
                      str(s.trials), str(s.complete),
                      "" if s.best_value is None else _fmt(s.best_value), s.started or "")
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)


def _read_space_file(path: Path) -> dict[str, Any]:
    """A YAML space file as tune settings (a bare NAME: SPACE mapping is the space)."""
    import yaml

    from cellpipe.errors import CellpipeError

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CellpipeError(f"cannot read the search space: {exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise CellpipeError("a space file maps parameter names to ranges", path=str(path),
                            hint='write one `name: "loguniform(1e-3, 10)"` per line')
    if isinstance(data.get("space"), dict) and set(data) <= _SETTING_KEYS:
        return data
    return {"space": data}
