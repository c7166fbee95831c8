"""``cellpipe build`` and ``requirements``: the steps' images, or what one image needs.

``build`` builds (or reuses) each step's container image and optionally pushes it;
``requirements`` prints what one image for every step must hold.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cellpipe.cli.main import (
    errors_to_messages,
    main,
    notebook_argument,
    output_option,
    split_option,
    write_output,
)
from cellpipe.cli.options import docker_options, print_image


@main.command()
@notebook_argument
@split_option
@docker_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Lines of step, image, built/reused; or the step → image "
              "map as JSON (what `compile --images` reads).")
@errors_to_messages
def build(notebook: Path, split: str | None, base_image: str | None, registry: str | None,
          requirements: Path | None, fmt: str) -> None:
    """Build (or reuse) the container image of every step of NOTEBOOK.

    Each step's image holds the distributions behind its imports at the versions
    installed here, from wheels downloaded on this machine (no network in the build),
    and the step's code. Tags are content hashes: an unchanged step is reused.

    \b
    Examples:
      cellpipe build train.ipynb
      cellpipe build train.ipynb --registry 127.0.0.1:5000/team --base-image my/python:3.11
      cellpipe build train.ipynb --registry 127.0.0.1:5000/team --format json > images.json
    """
    from cellpipe import api

    click.echo(f"building the step images of {notebook}", err=True)
    images = api.build_images(notebook, split=split, base_image=base_image, registry=registry,
                              requirements=requirements, on_image=print_image)
    if fmt == "json":
        click.echo(json.dumps({name: image.ref for name, image in images.items()}, indent=2))
        return
    for image in images.values():
        click.echo(f"{image.step}\t{image.ref}\t{image.status}")


@main.command()
@notebook_argument
@split_option
@output_option
@click.option("--track", metavar="URI", help="The steps log to MLflow at URI: add its client "
              "(mlflow-skinny) [when the notebook's cellpipe.tracking metadata names one].")
@errors_to_messages
def requirements(notebook: Path, split: str | None, output: Path | None,
                 track: str | None) -> None:
    """Print what one image for every step must hold, as a requirements file.

    For `compile`/`submit` without per-step images (`--image`, or the pipeline's base
    image): cellpipe itself, each distribution the steps import at the version installed
    here, and the requirements of the steps' `!pip install` lines; MLflow's client when
    the steps are tracked.

    \b
    Examples:
      cellpipe requirements train.ipynb -o requirements.txt
      # FROM python:3.11-slim / COPY requirements.txt / RUN pip install -r requirements.txt
    """
    from cellpipe import api

    lines = api.image_requirements(notebook, split=split, track=track)
    text = (f"# what every step of {notebook.name} needs in its image (cellpipe requirements)\n"
            + "".join(f"{line}\n" for line in lines))
    write_output(text, output)
