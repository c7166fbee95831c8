"""``cellpipe submit``, ``status``: running a notebook on Argo Workflows or Kubeflow Pipelines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from cellpipe.cli.main import errors_to_messages, main, notebook_argument, split_option
from cellpipe.cli.options import cluster_options, print_image

EXIT_TIMEOUT = 124


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
    """Submit NOTEBOOK to Argo Workflows or Kubeflow Pipelines; with --watch, follow it.

    Exits 0 when the run succeeded (or was submitted, without --watch), 1 when it failed,
    124 when --timeout passed first.

    \b
    Examples:
      cellpipe submit train.ipynb --target argo --registry 10.0.0.5:5000/ml --watch
      cellpipe submit train.ipynb --target kfp --host http://kfp.local:8888 --images img.json
    """
    from cellpipe import api
    from cellpipe.cli.run_commands import Progress, parse_params

    api.load_target(target)  # an unknown one is refused before anything is compiled
    spec = api.compile_spec(notebook, split=split)
    values = {name: api.convert_parameter(spec, name, value)
              for name, value in parse_params(params).items()}
    names = [s.name for s in spec.steps]
    if target not in ("argo", "kfp"):  # a plugin's target: the generic submission
        connection = {"host": host, "experiment": experiment,
                      "namespace": options.get("namespace")}
        name, state = api.submit(notebook, target, connection=connection, watch=watch,
                                 timeout=timeout, parameters=values, split=split,
                                 on_image=print_image, **options)
        click.echo(f"{target} run {name}: {state}")
        sys.exit(api.target_exit_code(target, state) if watch else 0)
    if target == "kfp":
        if not host:
            raise click.UsageError("--target kfp needs --host URL (the KFP API endpoint)")
        options.pop("namespace", None)
        run_id, state = api.submit_kfp(notebook, host=host, experiment=experiment, watch=watch,
                                       timeout=timeout, parameters=values, split=split,
                                       on_image=print_image, **options)
        click.echo(f"KFP run {run_id}: {state}")
        sys.exit(_kfp_exit(state, watch))
    with Progress(names, live=watch and sys.stderr.isatty()) as progress:
        name, phase = api.submit_argo(notebook, watch=watch, timeout=timeout,
                                      on_event=progress if watch else None,
                                      parameters=values, split=split, on_image=print_image,
                                      **options)
    from cellpipe.api import argo_exit_code as exit_code

    click.echo(f"workflow {name}: {phase}")
    if not watch:
        click.echo(f"follow it with: cellpipe status {name}"
                   + (f" --namespace {options['namespace']}" if options.get("namespace") else ""))
        sys.exit(0)
    sys.exit(exit_code(phase))


def _kfp_exit(state: str, watch: bool) -> int:
    if not watch:
        return 0
    upper = state.upper()
    if upper == "SUCCEEDED":
        return 0
    if upper in ("TIMEOUT", "TIMED_OUT"):
        return EXIT_TIMEOUT
    return 1


@main.command()
@click.argument("name")
@click.option("--namespace", help="Kubernetes namespace [the kubeconfig context's, default].")
@errors_to_messages
def status(name: str, namespace: str | None) -> None:
    """Show an Argo workflow's phase and each step's state; exits like `submit --watch`."""
    from cellpipe import api
    from cellpipe.api import argo_exit_code as exit_code

    found = api.argo_status(name, namespace=namespace)
    click.echo(f"workflow {found.name}: {found.phase}"
               + (f" ({found.message})" if found.message else ""))
    for step, (phase, message) in found.steps.items():
        click.echo(f"  {step:<24} {phase:<10} {message or ''}".rstrip())
    if found.outputs:
        click.echo("metrics: " + ", ".join(f"{k}={v}" for k, v in found.outputs.items()))
    running = found.phase in ("Pending", "Running", "")
    sys.exit(0 if running else exit_code(found.phase))
