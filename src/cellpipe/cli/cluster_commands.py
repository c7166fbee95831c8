"""``cellpipe submit``, ``status``: a notebook on a cluster target (Argo, KFP, a plugin's)."""

from __future__ import annotations

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
)


@main.command()
@notebook_argument
@split_option
@click.option("--target", required=True, metavar="TARGET",
              help="argo, kfp, or a target an installed package registers.")
@click.option("-p", "--parameter", "params", multiple=True, metavar="NAME=VALUE",
              help="Set a parameter for this run (converted to its declared type).")
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
    """
    from cellpipe import api
    from cellpipe.cli.run_commands import Progress, parse_params

    connection = connection_for(target, {"host": host, "experiment": experiment,
                                           "namespace": options.get("namespace")})
    spec = api.compile_spec(notebook, split=split)
    note_shared_image(notebook, split, options)
    values = {name: api.convert_parameter(spec, name, value)
              for name, value in parse_params(params).items()}
    with Progress([s.name for s in spec.steps], live=watch and sys.stderr.isatty()) as progress:
        done = api.submit(notebook, target, connection=connection, watch=watch,
                          timeout=timeout, on_event=progress if watch else None,
                          parameters=values, split=split, on_image=print_image, **options)
    click.echo(f"{done.title or f'{target} run {done.name}'}: {done.status}")
    if not watch:
        again = " ".join(f"--{key} {value}" for key, value in connection.items())
        click.echo(f"follow it with: cellpipe status {done.name} --target {target}"
                   + (f" {again}" if again else ""))
        sys.exit(0)
    sys.exit(api.target_exit_code(target, done.status))


@main.command()
@click.argument("name")
@click.option("--target", default="argo", show_default=True, metavar="TARGET",
              help="argo, kfp, or a target an installed package registers.")
@click.option("--namespace", help="Kubernetes namespace [the kubeconfig context's, default].")
@click.option("--host", metavar="URL", help="KFP: the Kubeflow Pipelines API endpoint.")
@errors_to_messages
def status(name: str, target: str, namespace: str | None, host: str | None) -> None:
    """Show a submitted run's state and each step's; exits like `submit --watch`.

    \b
    Examples:
      cellpipe status tabular-tags-x7k2p
      cellpipe status 3f0c2a9e --target kfp --host http://kfp.local:8888
    """
    from cellpipe import api

    connection = connection_for(target, {"host": host, "namespace": namespace})
    found = api.target_status(target, name, **connection)
    click.echo(f"{found.title or f'{target} run {found.name}'}: {found.phase}"
               + (f" ({found.message})" if found.message else ""))
    for step, (phase, message) in found.steps.items():
        click.echo(f"  {step:<24} {phase:<10} {message or ''}".rstrip())
    if found.outputs:
        click.echo("metrics: " + ", ".join(f"{k}={v}" for k, v in found.outputs.items()))
    sys.exit(api.target_exit_code(target, found.phase) if found.done else 0)
