"""cellpipe in the notebook: the ``%%step`` and ``%cellpipe`` magics (``%load_ext cellpipe``)."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics on ``ipython`` (called by ``%load_ext cellpipe``)."""
    from cellpipe_kernel.magics import register

    register(ipython)
