"""Options and output shared by several commands (kept apart from ``main`` to avoid cycles)."""

from __future__ import annotations

from collections.abc import Callable
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
