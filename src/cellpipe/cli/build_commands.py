"""``cellpipe build``: each step's container image, built or reused, optionally pushed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cellpipe.cli.main import _errors_to_messages, main, notebook_argument, split_option


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


@main.command()
@notebook_argument
@split_option
@docker_options
@_errors_to_messages
def build(notebook: Path, split: str | None, base_image: str | None, registry: str | None,
          requirements: Path | None) -> None:
    r"""Build (or reuse) the container image of every step of NOTEBOOK.

    Each step's image holds the distributions behind its imports at the versions
    installed here, from wheels downloaded on this machine (no network in the build),
    and the step's code. Tags are content hashes: an unchanged step is reused.

    \b
    Examples:
      cellpipe build train.ipynb
      cellpipe build train.ipynb --registry 127.0.0.1:5000/team --base-image my/python:3.11
    """
    from cellpipe import api

    click.echo(f"building the step images of {notebook}", err=True)
    images = api.build_images(notebook, split=split, base_image=base_image, registry=registry,
                              requirements=requirements, on_image=print_image)
    for image in images.values():
        click.echo(f"{image.step}\t{image.ref}\t{image.status}")
