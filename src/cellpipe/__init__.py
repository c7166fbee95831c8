"""cellpipe: turn Jupyter notebooks into pipelines that compute what the notebook computes.

The public entry points live in :mod:`cellpipe.api`; they are re-exported here lazily so
that ``import cellpipe`` stays cheap for the command line.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "analyze", "compare", "compile_spec", "lint", "render_graph", "run",
           "submit", "sweep", "tune"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension behind the JupyterLab side panel (cellpipe.server)."""
    from cellpipe.server.app import CellpipeApp

    return [{"module": "cellpipe.server.app", "app": CellpipeApp}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cellpipe``: the ``%%step`` and ``%cellpipe`` magics (cellpipe_kernel)."""
    from cellpipe_kernel import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    if name in {"analyze", "compile_spec", "lint", "render_graph", "run", "submit", "sweep",
                "open_run", "Run", "ClusterRun", "compare", "Comparison", "tune", "open_study",
                "Study"}:
        from cellpipe import api

        return getattr(api, name)
    raise AttributeError(f"module 'cellpipe' has no attribute {name!r}")
