"""A tiny target and a tiny engine, as a package outside cellpipe would write them (see
README, "Adding a target or an engine").

The target's "cluster" is a folder: compiling gives a JSON document of the steps, their
images and order; submitting writes it into the folder named by ``connection["host"]``.
The engine is the local one under another name. The tests register both through entry
points of a distribution they put on ``sys.path``; nothing in cellpipe names them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from cellpipe.core.spec import PipelineSpec
from cellpipe.engines.local import LocalEngine
from cellpipe.errors import CellpipeError
from cellpipe.targets.base import Document, RunStatus, Submission
from cellpipe.targets.cluster import ClusterSettings


class FolderTarget:
    """Compile to a JSON list of steps; "submit" into a folder."""

    name: ClassVar[str] = "folder"
    description: ClassVar[str] = "a JSON plan written into a folder"

    def compile(self, spec: PipelineSpec, images: Mapping[str, str],
                settings: ClusterSettings, options: Mapping[str, Any]) -> Document:
        plan = {"pipeline": spec.pipeline.name, "namespace": settings.namespace,
                "steps": [{"name": s.name, "image": images[s.name], "after": list(s.upstream)}
                          for s in spec.steps]}
        return Document(text=json.dumps(plan, indent=1) + "\n", data=plan, suffix=".json")

    def submit(self, document: Document, *, parameters: Mapping[str, Any], watch: bool,
               timeout: float | None, on_event: Callable[[Any], None] | None,
               connection: Mapping[str, Any]) -> Submission:
        folder = Path(self._folder(connection))
        name = f"{document.data['pipeline']}-{len(list(folder.glob('*.json')))}"
        (folder / f"{name}.json").write_text(
            json.dumps({**document.data, "parameters": dict(parameters)}), encoding="utf-8")
        return Submission(name, "Succeeded" if watch else "Submitted")

    def status(self, name: str, connection: Mapping[str, Any]) -> RunStatus:
        path = Path(self._folder(connection)) / f"{name}.json"
        return RunStatus(name, "Succeeded", True) if path.is_file() else RunStatus(
            name, "Unknown", False, message=f"no {path}")

    def logs(self, name: str, step: str, connection: Mapping[str, Any]) -> str:
        return f"{name}/{step}: nothing printed\n"

    def exit_code(self, status: str) -> int:
        return 0 if status in ("Succeeded", "Submitted") else 1

    @staticmethod
    def _folder(connection: Mapping[str, Any]) -> str:
        if not connection.get("host"):
            raise CellpipeError("the folder target needs --host FOLDER")
        return str(connection["host"])


class NamedLocalEngine(LocalEngine):
    """The local engine, registered under another name."""

    name = "named-local"
