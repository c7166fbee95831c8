"""Engines and targets by name: built in, or plugins found through entry points.

An engine runs a spec (:class:`cellpipe.engines.scheduler.Engine`); a target compiles a
spec to a cluster's document and submits it (:class:`cellpipe.targets.base.Target`).
Another package adds one with an entry point in the ``cellpipe.engines`` or
``cellpipe.targets`` group naming its class::

    [project.entry-points."cellpipe.targets"]
    mycluster = "mypackage.target:MyClusterTarget"

Built-in names resolve without reading any entry point (the CLI's start stays fast);
listing every name reads them once per process. The CLI's choices, the server's allowed
values and the panel's lists (which ask the server) all come from here.
"""

from __future__ import annotations

import importlib
import threading
from importlib import metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from cellpipe.errors import CellpipeError

if TYPE_CHECKING:
    from cellpipe.engines.scheduler import Engine
    from cellpipe.targets.base import Target

P = TypeVar("P")

__all__ = ["ENGINES", "TARGETS", "PluginRegistry"]


class PluginRegistry(Generic[P]):
    """The plugins of one entry-point group, with the built-in ones first (each a ``P``)."""

    def __init__(self, group: str, kind: str, builtins: dict[str, str]) -> None:
        self.group = group
        self.kind = kind
        self.builtins = dict(builtins)
        self._found: dict[str, metadata.EntryPoint] | None = None
        self._loaded: dict[str, P] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every name: the built-in ones, then the plugins' (sorted)."""
        plugins = sorted(n for n in self._plugins() if n not in self.builtins)
        return [*self.builtins, *plugins]

    def load(self, name: str) -> P:
        """The class registered as ``name``; a clear error naming the choices otherwise."""
        if name in self._loaded:
            return self._loaded[name]
        if name in self.builtins:
            module, _, attribute = self.builtins[name].partition(":")
            found: Any = getattr(importlib.import_module(module), attribute)
        else:
            point = self._plugins().get(name)
            if point is None:
                from cellpipe.core.diagnostics import did_you_mean

                choices = self.names()
                raise CellpipeError(
                    f"unknown {self.kind} {name!r}",
                    hint=did_you_mean(name, set(choices)) or f"use {' or '.join(choices)} "
                    f"(packages add more through the {self.group!r} entry points)")
            try:
                found = point.load()
            except Exception as exc:  # a broken plugin must say which one
                raise CellpipeError(
                    f"the {self.kind} plugin {name!r} ({point.value}) cannot be loaded: "
                    f"{type(exc).__name__}: {exc}",
                    hint=f"fix or uninstall the package that provides it ({self.group!r} "
                    "entry point)") from exc
        self._loaded[name] = cast(P, found)
        return self._loaded[name]

    def reset(self) -> None:
        """Forget what was found (read the entry points again on next use)."""
        with self._lock:
            self._found = None
            self._loaded.clear()

    def _plugins(self) -> dict[str, metadata.EntryPoint]:
        with self._lock:
            if self._found is None:
                self._found = {point.name: point
                               for point in metadata.entry_points(group=self.group)}
            return self._found


ENGINES: PluginRegistry[type[Engine]] = PluginRegistry("cellpipe.engines", "engine", {
    "local": "cellpipe.engines.local.engine:LocalEngine",
    "docker": "cellpipe.engines.docker.engine:DockerEngine",
})
TARGETS: PluginRegistry[type[Target]] = PluginRegistry("cellpipe.targets", "target", {
    "argo": "cellpipe.targets.argo.target:ArgoTarget",
    "kfp": "cellpipe.targets.kfp.target:KfpTarget",
    "katib": "cellpipe.targets.katib.target:KatibTarget",
})
