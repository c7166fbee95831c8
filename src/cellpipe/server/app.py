"""The server extension application: settings, routes and the registry of runs."""

from __future__ import annotations

from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Integer

from cellpipe.server.handlers import routes
from cellpipe.server.runs import RunRegistry
from cellpipe.server.studies import StudyRegistry


class CellpipeApp(ExtensionApp):
    """cellpipe's REST API under ``<base_url>/cellpipe/`` (``c.CellpipeApp.*`` configures it)."""

    name = "cellpipe"

    submit_enabled = Bool(
        False,
        help="Allow POST /cellpipe/submit to start pipelines on Argo Workflows or Kubeflow "
        "Pipelines with the server's cluster credentials.",
    ).tag(config=True)

    run_start_timeout = Float(
        30.0,
        help="Seconds POST /cellpipe/runs waits for a run to get its id before answering "
        "without one (the run goes on; it shows up in GET /cellpipe/runs).",
    ).tag(config=True)

    analyze_max_bytes = Integer(
        16 * 2**20,
        help="The largest body POST /cellpipe/analyze takes (the notebook as it is in the "
        "editor); larger ones are answered 413. The panel sends the cells without outputs.",
    ).tag(config=True)

    registry: RunRegistry
    studies: StudyRegistry

    def initialize_settings(self) -> None:
        """Create the registries of the runs and the tuning studies this server starts."""
        self.registry = RunRegistry(self.log)
        self.studies = StudyRegistry(self.log)

    def initialize_handlers(self) -> None:
        """Add the routes (the server puts its ``base_url`` in front of them)."""
        self.handlers.extend(routes())

    async def stop_extension(self) -> None:
        """Say which runs the server leaves behind; stop the tuning studies it runs."""
        for live in self.registry.live():
            self.log.warning("cellpipe: the server stops while run %s of %s is still going; "
                             "its run.json will keep saying 'running'", live.id, live.notebook)
        for study in self.studies.live():
            study.cancel.set()  # no trial starts after this; the running ones are cancelled


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Where jupyter_server finds the extension when ``cellpipe.server.app`` is enabled."""
    return [{"module": "cellpipe.server.app", "app": CellpipeApp}]
