"""Third-party serializers from the ``cellpipe.serializers`` entry point group.

A plugin is an object (or a class, instantiated without arguments) with ``types`` (the
qualified type names it handles), ``format``, ``extension``, ``dump(value, file_path)``
and ``load(file_path)``. Plugins are read once, on the first save or load that needs the
registry; one that fails to load is skipped with a warning naming it.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cellpipe.marshal.formats.base import Format, Written
from cellpipe.marshal.hashing import ALGORITHM, HashingWriter, file_digest

GROUP = "cellpipe.serializers"


class PluginFormat(Format):
    """A plugin serializer, adapted: it writes to a path, so the file is hashed after."""

    def __init__(self, plugin: Any, entry_point: str) -> None:
        self.plugin = plugin
        self.entry_point = entry_point
        self.name = str(plugin.format)
        self.extension = str(plugin.extension).lstrip(".")

    def write(self, value: object, path: str) -> Written:
        """Let the plugin write ``path``, then hash the file."""
        self.plugin.dump(value, path)
        digest, size = file_digest(path)
        return Written(digest, size, ALGORITHM)

    def dump(self, value: object, sink: HashingWriter) -> None:  # pragma: no cover
        """Not used: plugins write to a path (see :meth:`write`)."""
        raise NotImplementedError

    def load(self, path: str) -> object:
        """Let the plugin read ``path``."""
        return self.plugin.load(path)


@dataclass(frozen=True)
class Plugins:
    """The plugins found: formats by name, and format names by the type names they handle."""

    formats: dict[str, PluginFormat]
    types: dict[str, str]


def _check(plugin: Any) -> list[str]:
    types = getattr(plugin, "types", None)
    if isinstance(types, str) or not isinstance(types, Iterable):
        raise TypeError("'types' must be a list of qualified type names")
    names = list(types)
    if not all(isinstance(name, str) and name for name in names):
        raise TypeError("'types' must be a list of qualified type names")
    for attribute in ("format", "extension"):
        value = getattr(plugin, attribute, None)
        if not isinstance(value, str) or not value.strip("."):
            raise TypeError(f"{attribute!r} must be a non-empty string")
    extension = str(plugin.extension).lstrip(".")
    if "/" in extension or "\\" in extension or extension.endswith("meta.json"):
        raise TypeError(f"extension {extension!r} is not a plain file extension")
    for method in ("dump", "load"):
        if not callable(getattr(plugin, method, None)):
            raise TypeError(f"{method!r} must be callable")
    return names


def discover(reserved: Iterable[str], entry_points: Callable[..., Any] | None = None) -> Plugins:
    """Load every plugin of the entry point group, skipping broken ones with a warning.

    Args:
        reserved: Format names taken by the built-in formats.
        entry_points: Replaces ``importlib.metadata.entry_points`` (for tests).

    Returns:
        The plugins that loaded.
    """
    taken = set(reserved)
    formats: dict[str, PluginFormat] = {}
    types: dict[str, str] = {}
    listing = entry_points or importlib.metadata.entry_points
    for entry_point in listing(group=GROUP):
        label = f"{entry_point.name} ({entry_point.value})"
        try:
            plugin = entry_point.load()
            if isinstance(plugin, type):
                plugin = plugin()
            names = _check(plugin)
            adapted = PluginFormat(plugin, label)
            if adapted.name in taken:
                raise ValueError(f"format name {adapted.name!r} is already taken")
        except Exception as exc:
            warnings.warn(
                f"cellpipe: skipping serializer plugin {label}: {type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        taken.add(adapted.name)
        formats[adapted.name] = adapted
        for name in names:
            types.setdefault(name, adapted.name)
    return Plugins(formats, types)
