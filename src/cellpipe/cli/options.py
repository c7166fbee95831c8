"""Options and output shared by several commands (kept apart from ``main`` to avoid cycles)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click


def docker_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say how step images are made (``build`` and ``run --engine docker``)."""
    for option in reversed([
        click.option("--base-image", metavar="IMAGE",
                     help="Base image of the steps [$CELLPIPE_BASE_IMAGE, the notebook's "
                     "docker_image, python:3.11-slim]; a step's image: tag wins."),
        click.option("--registry", metavar="HOST:PORT/PREFIX",
                     help="Tag step images under this registry prefix and push them."),
        click.option("--requirements", type=click.Path(dir_okay=False, path_type=Path),
                     help="Requirements file whose lines win over the pins found from "
                     "the steps' imports."),
    ]):
        command = option(command)
    return command


def print_image(image: Any) -> None:
    """One line per step image: which, and whether it was built, reused or pushed."""
    deps = f"deps {image.deps_status}"
    pushed = f", {image.pushed}" if image.pushed else ""
    color = "green" if image.status == "built" else "cyan"
    click.echo(f"  {image.step:<20} " + click.style(f"{image.status:<7}", fg=color)
               + f" {image.ref}  ({deps}{pushed}, {image.seconds:.1f}s)", err=True)


def print_note(note: str) -> None:
    """What compiling has to say about the document (on stderr)."""
    click.echo(f"cellpipe: {note}", err=True)


def cluster_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where step images come from and how the cluster runs them (``compile``, ``submit``)."""
    for option in reversed([
        click.option("--images", type=click.Path(dir_okay=False, path_type=Path),
                     help="Step → image map (JSON/YAML) from `cellpipe build --format json`; "
                     "else --registry builds and pushes the images."),
        click.option("--image", metavar="IMAGE",
                     help="One image for every step, no build: it must hold cellpipe and "
                     "the steps' libraries (`cellpipe requirements NB`); the code travels "
                     "in the pipeline. The default without --registry/--images, with the "
                     "pipeline's base image."),
        click.option("--namespace", help="Kubernetes namespace [the metadata's, the "
                     "kubeconfig context's, default]."),
        click.option("--storage", metavar="URL",
                     help="Keep data in an S3-compatible store (s3://bucket/prefix) instead "
                     "of a workflow volume."),
        click.option("--volume-size", help="Size of the workflow volume [1Gi]."),
        click.option("--storage-class", help="Storage class of the workflow volume."),
        click.option("--access-mode", help="Access mode of the workflow volume "
                     "[ReadWriteOnce]."),
        click.option("--service-account", help="Service account the pods run as."),
        click.option("--artifact-repository", metavar="default|CONFIGMAP[:KEY]",
                     help="Argo: keep the steps' reports, figures and models as artifacts in "
                     "the controller's repository (default) or the one a ConfigMap names."),
        click.option("--caching/--no-caching", default=None,
                     help="KFP: let the cluster reuse unchanged steps [KFP's default]."),
    ]):
        command = option(command)
    from cellpipe.cli.tracking_output import track_options

    return track_options(docker_options(command))


def connection_for(target: str, given: Mapping[str, str | None]) -> dict[str, str]:
    """The ``connection`` keys ``target`` declares, from the options given.

    A usage error names a required one that is missing (before anything is compiled or
    asked); an unknown target is refused with the names there are.
    """
    from cellpipe import api

    fields = api.target_connection(target)
    for field in fields:
        if field.required and not given.get(field.name):
            example = f", e.g. --{field.name} {field.example}" if field.example else ""
            raise click.UsageError(f"--target {target} needs --{field.name} "
                                   f"({field.description}{example})")
    return {field.name: value for field in fields
            if (value := given.get(field.name)) is not None}


def note_shared_image(notebook: Path, split: str | None, cluster: Mapping[str, Any]) -> None:
    """Say (on stderr) which image every step runs when none is built, and what it needs."""
    if cluster.get("registry") or cluster.get("images"):
        return
    from cellpipe import api

    note = api.shared_image_note(notebook, api.compile_spec(notebook, split=split), cluster)
    if note:
        click.echo(note, err=True)


def search_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """A parameter search for a target that runs one (``--target katib``).

    Defaults come from the notebook's ``metadata.cellpipe.tune``; ``-p`` is added by the
    command (``NAME=SPACE`` for such a target).
    """
    for option in reversed([
        click.option("--objective", metavar="METRIC",
                     help="Katib: the metric to optimize (one the metrics cell declares)."),
        click.option("--maximize", "direction", flag_value="maximize", default=None,
                     help="Katib: look for the largest objective."),
        click.option("--minimize", "direction", flag_value="minimize",
                     help="Katib: look for the smallest objective."),
        click.option("--trials", type=int, metavar="N",
                     help="Katib: how many trials in all [the metadata's, 12]."),
        click.option("--parallel", type=int, metavar="K",
                     help="Katib: how many trials run at once [the metadata's, 3]."),
        click.option("--max-failed", type=int, metavar="N",
                     help="Katib: failed trials that fail the experiment [3]."),
        click.option("--sampler", metavar="NAME",
                     help="Katib: tpe, random, grid, cmaes or bayesianoptimization [tpe]."),
    ]):
        command = option(command)
    return command


SEARCH_KEYS = ("objective", "direction", "trials", "parallel", "max_failed", "sampler")


def search_for(target: str, params: tuple[str, ...], options: dict[str, Any]
               ) -> dict[str, Any] | None:
    """The search to give ``target`` (``target_options``), or None for one that runs once.

    Pops the search options from ``options``; ``-p`` entries are the space (and fixed
    values) for a searching target. A search option given to any other target is a usage
    error.
    """
    from cellpipe import api

    search = {key: options.pop(key, None) for key in SEARCH_KEYS}
    if target != "spec" and api.target_searches(target):
        return {**search, "space": list(params) or None}
    given = ["--maximize/--minimize" if key == "direction" else f"--{key.replace('_', '-')}"
             for key, value in search.items() if value is not None]
    if given:
        raise click.UsageError(f"{', '.join(given)}: only for a target that searches "
                               f"parameters (--target katib), not {target}")
    return None
