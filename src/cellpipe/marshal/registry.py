"""Which format a value is written in: a registry keyed by qualified type name.

The lookup never imports a library to find out whether a value is one of its types: it
compares the qualified names of the value's classes with the table below, so numpy is
imported only when a numpy object is saved (or a numpy artifact loaded). Order: a plugin
for the exact type, a built-in format for the exact type, then the value's base classes
(plugins first) for families such as scikit-learn estimators and numpy scalars, then
JSON for plain data that round-trips exactly, and cloudpickle for everything else.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from cellpipe.errors import MissingDependencyError
from cellpipe.marshal.formats.base import Format
from cellpipe.marshal.formats.plain import is_exact_json
from cellpipe.marshal.formats.plugins import Plugins, discover
from cellpipe.marshal.meta import qualified_name

#: Stands for the store's frame format (Arrow IPC locally, Parquet on object stores).
FRAME = "<frame>"

_FORMATS: dict[str, tuple[str, str]] = {
    "json": ("cellpipe.marshal.formats.plain", "JsonFormat"),
    "cloudpickle": ("cellpipe.marshal.formats.pickled", "CloudpickleFormat"),
    "npy": ("cellpipe.marshal.formats.arrays", "NpyFormat"),
    "npy-scalar": ("cellpipe.marshal.formats.arrays", "NpyScalarFormat"),
    "arrow": ("cellpipe.marshal.formats.frames", "ArrowFormat"),
    "parquet": ("cellpipe.marshal.formats.frames", "ParquetFormat"),
    "pandas-pickle": ("cellpipe.marshal.formats.pickled", "PandasPickleFormat"),
    "joblib": ("cellpipe.marshal.formats.estimators", "JoblibFormat"),
}
#: Formats a frame can be asked to be written in by default.
FRAME_FORMATS = ("arrow", "parquet")
#: Optional libraries that come with an extra of cellpipe.
_EXTRAS = {"pyarrow": "arrow", "fsspec": "remote"}
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}

# Exact types only: a subclass (a masked array, a GeoDataFrame) would lose what it adds.
_EXACT: dict[str, str] = {
    "numpy.ndarray": "npy",
    "numpy.memmap": "npy",
    "pandas.DataFrame": FRAME,
    "pandas.core.frame.DataFrame": FRAME,
    "pandas.Series": FRAME,
    "pandas.core.series.Series": FRAME,
}
# Matched anywhere in the base classes.
_FAMILIES: dict[str, str] = {
    "numpy.generic": "npy-scalar",
    "sklearn.base.BaseEstimator": "joblib",
}


class Registry:
    """Chooses formats for values and finds formats by name (built-in or plugin).

    Args:
        entry_points: Replaces ``importlib.metadata.entry_points`` (for tests).
    """

    def __init__(self, entry_points: Callable[..., Any] | None = None) -> None:
        self._entry_points = entry_points
        self._lock = threading.Lock()
        self._plugins: Plugins | None = None
        self._formats: dict[str, Format] = {}

    def reset(self) -> None:
        """Forget the plugins found and the formats built (they are found again on use)."""
        with self._lock:
            self._plugins = None
            self._formats.clear()

    def plugins(self) -> Plugins:
        """Return the plugins, reading the entry points on first use."""
        with self._lock:
            if self._plugins is None:
                self._plugins = discover(_FORMATS, self._entry_points)
            return self._plugins

    def format(self, name: str) -> Format | None:
        """Return the format called ``name``, or None if no built-in or plugin has it."""
        found = self._formats.get(name)
        if found is not None:
            return found
        if name in _FORMATS:
            module_name, class_name = _FORMATS[name]
            # Imports the library behind the format (numpy, pyarrow, joblib) now, not before.
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                raise missing_library(exc, f"the {name!r} format") from exc
            made: Format = getattr(module, class_name)()
        else:
            plugin = self.plugins().formats.get(name)
            if plugin is None:
                return None
            made = plugin
        self._formats[name] = made
        return made

    def choose(self, value: object, *, frame_format: str = "arrow") -> tuple[Format, str | None]:
        """Pick the format to write ``value`` in.

        Args:
            value: The value.
            frame_format: Format for pandas frames and series (``arrow`` or ``parquet``).

        Returns:
            The format (its ``dump`` may still ask for a fallback), and a note if it is
            a fallback already (a frame when pyarrow is not installed).

        Raises:
            MissingDependencyError: The library of the chosen format is not installed.
        """
        plugin_types = self.plugins().types
        names = [qualified_name(kind) for kind in type(value).__mro__]
        chosen = plugin_types.get(names[0]) or _EXACT.get(names[0])
        if chosen is None:
            for name in names[1:]:
                chosen = plugin_types.get(name) or _FAMILIES.get(name)
                if chosen is not None:
                    break
        if chosen is None:
            chosen = "json" if is_exact_json(value) else "cloudpickle"
        elif chosen == FRAME:
            try:
                return self._known(frame_format), None
            except MissingDependencyError as exc:
                return self._known("pandas-pickle"), f"{exc.message} ({exc.hint})"
        return self._known(chosen), None

    def _known(self, name: str) -> Format:
        found = self.format(name)
        if found is None:  # pragma: no cover - only built-in names are passed
            raise LookupError(f"no format {name!r}")
        return found


def missing_library(exc: ModuleNotFoundError, what: str) -> MissingDependencyError:
    """Turn a failed import into the error that says which ``pip install`` fixes it."""
    module = (exc.name or "").split(".")[0] or str(exc)
    extra = _EXTRAS.get(module)
    if extra is not None:
        return MissingDependencyError.for_extra(module, extra, what)
    return MissingDependencyError(
        f"{what} needs the Python package {module!r}, which is not installed",
        hint=f"pip install {_DISTRIBUTIONS.get(module, module)}",
    )


#: The registry stores use unless given another.
REGISTRY = Registry()
