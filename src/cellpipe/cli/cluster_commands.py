"""``cellpipe submit``, ``status``: a notebook on a cluster target (Argo, KFP, a plugin's)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from cellpipe.cli.main import errors_to_messages, main, notebook_argument, split_option
from cellpipe.cli.options import (
    cluster_options,
    connection_for,
    note_shared_image,
    print_image,
    print_note,
    search_for,
    search_options,
)


@main.command()
@notebook_argument
@split_option
@click.option("--target", required=True, metavar="TARGET",
              help="argo, kfp, katib, or a target an installed package registers.")
@click.option("-p", "--parameter", "params", multiple=True, metavar="NAME=VALUE",
              help="Set a parameter for this run (converted to its declared type); with "
              "--target katib, NAME=SPACE searches it (see `cellpipe compile --help`).")
@search_options
@click.option("--watch", is_flag=True, help="Follow the steps until the run ends.")
@click.option("--timeout", type=float, metavar="SECONDS",
              help="With --watch: give up after this long (exit 124; the run goes on).")
@click.option("--host", metavar="URL", help="KFP: the Kubeflow Pipelines API endpoint.")
@click.option("--experiment", help="KFP: the experiment [the notebook's, or Default].")
@cluster_options
@errors_to_messages
def submit(notebook: Path, split: str | None, target: str, params: tuple[str, ...],
           watch: bool, timeout: float | None, host: str | None, experiment: str | None,
           **options: Any) -> None:
    """Submit NOTEBOOK to a cluster target (Argo, KFP, a plugin's); with --watch, follow it.

    Exits 0 when the run succeeded (or was submitted, without --watch), 1 when it failed,
    124 when --timeout passed first.

    \b
    Examples:
      cellpipe submit train.ipynb --target argo --registry 10.0.0.5:5000/ml --watch
      cellpipe submit train.ipynb --target kfp --host http://kfp.local:8888 --images img.json
      cellpipe submit train.ipynb --target katib -p "C=loguniform(1e-3, 1e2)" \\
          --objective best_accuracy --maximize --images img.json
    """
    from cellpipe import api
    from cellpipe.cli.run_commands import Progress, parse_params

    connection = connection_for(target, {"host": host, "experiment": experiment,
                                           "namespace": options.get("namespace")})
    search = search_for(target, params, options)
    spec = api.compile_spec(notebook, split=split)
    note_shared_image(notebook, split, options)
    values = {} if search is not None else {
        name: api.convert_parameter(spec, name, value)
        for name, value in parse_params(params).items()}
    steps = [] if search is not None else [s.name for s in spec.steps]  # Katib: its trials
    with Progress(steps, live=watch and sys.stderr.isatty()) as progress:
        done = api.submit(notebook, target, connection=connection, watch=watch,
                          timeout=timeout, on_event=progress if watch else None,
                          parameters=values, split=split, on_image=print_image,
                          on_note=print_note, target_options=search, **options)
    click.echo(f"{done.title or f'{target} run {done.name}'}: {done.status}")
    if not watch:
        again = " ".join(f"--{key} {value}" for key, value in connection.items())
        click.echo(f"follow it with: cellpipe status {done.name} --target {target}"
                   + (f" {again}" if again else ""))
        sys.exit(0)
    sys.exit(api.target_exit_code(target, done.status))


@main.command()
@click.argument("name")
@click.option("--target", metavar="TARGET",
              help="argo, kfp, katib, or a target an installed package registers [the target the "
              "run was submitted to from here, else argo].")
@click.option("--namespace", help="Kubernetes namespace [the kubeconfig context's, default].")
@click.option("--host", metavar="URL", help="KFP: the Kubeflow Pipelines API endpoint.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="The .cellpipe folder the run was submitted from [./.cellpipe].")
@errors_to_messages
def status(name: str, target: str | None, namespace: str | None, host: str | None,
           root: Path | None) -> None:
    """Show a submitted run's state and each step's; exits like `submit --watch`.

    A run submitted from here (recorded in .cellpipe/cluster-runs) also shows its metrics
    and where each value lives, read from its object store.

    \b
    Examples:
      cellpipe status tabular-tags-x7k2p
      cellpipe status 3f0c2a9e --target kfp --host http://kfp.local:8888
      cellpipe status tabular-tags-k2x7q --target katib   # its trials and the best one
    """
    from cellpipe import api
    from cellpipe.errors import CellpipeError

    try:
        record: api.ClusterRun | None = api.ClusterRun.attach(name, target, root)
    except CellpipeError:
        record = None  # submitted from elsewhere: the target's own answer only
    target = target or (record.target if record is not None else "argo")
    recorded = dict(record.connection) if record is not None else {}
    connection = connection_for(target, {"host": host or recorded.get("host"),
                                         "namespace": namespace or recorded.get("namespace"),
                                         "experiment": recorded.get("experiment")})
    found = api.target_status(target, name, **connection)
    click.echo(f"{found.title or f'{target} run {found.name}'}: {found.phase}"
               + (f" ({found.message})" if found.message else ""))
    for step, (phase, message) in found.steps.items():
        click.echo(f"  {step:<24} {phase:<10} {message or ''}".rstrip())
    store = found.store or (record.store if record is not None else None)
    metrics = dict(found.outputs)
    if record is not None and record.store is not None:
        try:
            metrics = record.metrics or metrics
        except CellpipeError as exc:
            click.echo(f"cellpipe: cannot read the metrics from {record.store}: {exc.message}",
                       err=True)
    if metrics and not found.optimal:  # a search's metrics are its optimal trial's
        click.echo("metrics: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    if found.optimal:
        values = ", ".join(f"{k}={v}" for k, v in found.optimal.get("parameters", {}).items())
        scores = ", ".join(f"{k}={v}" for k, v in found.optimal.get("metrics", {}).items())
        click.echo(f"optimal trial {found.optimal.get('name', '?')}: {values}"
                   + (f" -> {scores}" if scores else ""))
    if record is not None and record.spec is not None:
        _print_values(record)
    elif store:
        click.echo(f"values: {store} (step/name in the store; reports under "
                   f"{store}/.steps/STEP/)")
    sys.exit(api.target_exit_code(target, found.phase) if found.done else 0)


def _print_values(run: Any) -> None:
    from cellpipe.errors import CellpipeError

    try:
        rows = run.values()
    except CellpipeError as exc:
        click.echo(f"cellpipe: cannot list the values in {run.store}: {exc.message}", err=True)
        return
    if not rows:
        return
    if run.store is None:
        click.echo("values: they stay in the cluster (no object store); submit with "
                   "--storage s3://bucket/prefix to read them back")
        return
    click.echo(f"values (in {run.store}; reports under .steps/STEP/):")
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        click.echo(f"  {row['name']:<{width}}  {row['step']:<16} {row['where']}")


@main.command()
@click.argument("notebook", required=False, metavar="[NOTEBOOK]",
                type=click.Path(dir_okay=False, path_type=Path))
@split_option
@click.option("--target", required=True, metavar="TARGET",
              help="argo, kfp, or a target an installed package registers (if it schedules).")
@click.option("--cron", metavar="'M H DOM MON DOW'",
              help="When to run: five cron fields, e.g. '0 3 * * *' (03:00 every day).")
@click.option("--name", help="The schedule's name [the pipeline's].")
@click.option("--timezone", metavar="ZONE",
              help="Time zone the cron fields are read in, e.g. Europe/Berlin [the cluster's]; "
              "Argo only.")
@click.option("--concurrency-policy", default="Forbid", show_default=True,
              metavar="Allow|Forbid|Replace",
              help="A run falls due while the last one still runs: skip it (Forbid), run both "
              "(Allow), or stop the last one (Replace, Argo only).")
@click.option("--suspend", is_flag=True, help="Create it suspended: no runs until resumed.")
@click.option("-p", "--parameter", "params", multiple=True, metavar="NAME=VALUE",
              help="Set a parameter for every run (converted to its declared type).")
@click.option("--list", "list_", is_flag=True, help="List the schedules on the target.")
@click.option("--delete", metavar="NAME", help="Delete schedule NAME (the runs it started stay).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="How to print the schedules (JSON for tools).")
@click.option("--host", metavar="URL", help="KFP: the Kubeflow Pipelines API endpoint.")
@click.option("--experiment", help="KFP: the experiment [Default].")
@cluster_options
@errors_to_messages
def schedule(notebook: Path | None, split: str | None, target: str, cron: str | None,
             name: str | None, timezone: str | None, concurrency_policy: str, suspend: bool,
             params: tuple[str, ...], list_: bool, delete: str | None, fmt: str,
             host: str | None, experiment: str | None, **options: Any) -> None:
    """Have a cluster target run NOTEBOOK on a schedule; list or delete its schedules.

    On Argo a schedule is a CronWorkflow (Argo 3.6 or later) around the compiled Workflow;
    on Kubeflow Pipelines a recurring run (its cron is read in the scheduler's time zone).

    \b
    Examples:
      cellpipe schedule train.ipynb --target argo --images img.json --cron '0 3 * * *' \\
          --timezone Europe/Berlin -p lr=0.01
      cellpipe schedule --list --target argo --namespace ml
      cellpipe schedule --delete train --target argo --namespace ml
      cellpipe schedule train.ipynb --target kfp --host http://kfp.local:8888 \\
          --images img.json --cron '30 2 * * 1-5'
    """
    from cellpipe import api
    from cellpipe.cli.run_commands import parse_params

    if list_ and delete:
        raise click.UsageError("give --list or --delete NAME, not both")
    if (list_ or delete) and (notebook or cron or params):
        raise click.UsageError(f"{'--list' if list_ else '--delete'} takes no NOTEBOOK, --cron "
                               "or -p")
    if not (list_ or delete) and (notebook is None or not cron):
        raise click.UsageError("give NOTEBOOK and --cron 'M H DOM MON DOW' (or --list, or "
                               "--delete NAME)")
    connection = connection_for(target, {"host": host, "experiment": experiment,
                                           "namespace": options.get("namespace")})
    if list_:
        _print_schedules(api.list_schedules(target, **connection), target, fmt)
        return
    if delete:
        gone = api.unschedule(target, delete, **connection)
        click.echo(f"deleted {gone.title or f'{target} schedule {gone.name}'}")
        return
    assert notebook is not None and cron is not None
    api.check_schedule(cron, name=name, timezone=timezone,  # fail before compiling
                       concurrency_policy=concurrency_policy, suspend=suspend)
    values: dict[str, Any] = {}
    if params:
        spec = api.compile_spec(notebook, split=split)
        values = {key: api.convert_parameter(spec, key, value)
                  for key, value in parse_params(params).items()}
    made = api.schedule(notebook, target, cron=cron, parameters=values, connection=connection,
                        name=name, timezone=timezone, concurrency_policy=concurrency_policy,
                        suspend=suspend, split=split, on_image=print_image, **options)
    if fmt == "json":
        click.echo(json.dumps(made.to_dict(), indent=1))
        return
    click.echo(f"{made.title or f'{target} schedule {made.name}'}: {_when(made)}")
    again = "".join(f" --{key} {value}" for key, value in connection.items()
                    if key != "experiment")
    click.echo(f"list with: cellpipe schedule --list --target {target}{again}")
    click.echo(f"delete with: cellpipe schedule --delete {made.name} --target {target}{again}")


def _when(found: Any) -> str:
    """``0 3 * * * (Europe/Berlin), Forbid[, suspended]``."""
    zone = f" ({found.timezone})" if found.timezone else ""
    return (f"{found.cron}{zone}, concurrency {found.concurrency_policy}"
            + (", suspended" if found.suspended else ""))


def _print_schedules(found: list[Any], target: str, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps([item.to_dict() for item in found], indent=1))
        return
    if not found:
        click.echo(f"no schedules on {target}")
        return
    for item in found:
        ident = f" [{item.id}]" if item.id and item.id != item.name else ""
        last = f", last run {item.last_run}" if item.last_run else ""
        click.echo(f"{item.name}{ident}: {_when(item)}{last}")
