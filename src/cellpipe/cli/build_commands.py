"""``cellpipe build``: each step's container image, built or reused, optionally pushed."""

from __future__ import annotations

from pathlib import Path

import click

from cellpipe.cli.main import _errors_to_messages, main, notebook_argument, split_option
from cellpipe.cli.options import docker_options, print_image


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
