"""scikit-learn estimators through joblib, unless they hold notebook-defined code.

joblib (like pickle) stores classes and functions by reference: a custom transformer or a
``FunctionTransformer(func=...)`` defined in the notebook would be written as
``__main__.name``, which a step process that never ran that cell cannot find. So a quick
pickling pass without output looks for such references first, and an estimator that has
any goes to cloudpickle, which stores them by value.
"""

from __future__ import annotations

import pickle
import sys
import types
from typing import Any

import joblib  # type: ignore[import-untyped,unused-ignore]

from cellpipe.marshal.formats.base import Format, Unsuitable
from cellpipe.marshal.hashing import HashingWriter


def defined_dynamically(obj: Any) -> bool:
    """Whether a class or function cannot be found again by its module and name.

    True for anything defined in ``__main__`` (notebook cells), inside a function
    (``<locals>``), as a lambda, or in a module that is not imported.
    """
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module_name or not qualname or module_name == "__main__" or "<" in qualname:
        return True
    found: Any = sys.modules.get(module_name)
    if found is None:
        return True
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            return True
    return found is not obj


class _Discard:
    def write(self, data: Any) -> int:
        return memoryview(data).nbytes


class _DynamicCode(Exception):
    def __init__(self, obj: Any) -> None:
        super().__init__(f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}")


class _Probe(pickle.Pickler):
    """Pickles into nothing (large buffers out of band, so nothing is copied)."""

    def __init__(self) -> None:
        super().__init__(_Discard(), protocol=5, buffer_callback=lambda _buffer: None)

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (type, types.FunctionType)) and defined_dynamically(obj):
            raise _DynamicCode(obj)
        return NotImplemented


def dynamic_reference(value: object) -> str | None:
    """Name the first notebook-defined class or function ``value`` refers to, if any.

    Raises:
        Unsuitable: pickle refuses the value (cloudpickle may still take it).
    """
    try:
        _Probe().dump(value)
    except _DynamicCode as found:
        return str(found)
    except Exception as exc:
        raise Unsuitable(f"joblib cannot pickle it: {exc}", "cloudpickle") from exc
    return None


class JoblibFormat(Format):
    """scikit-learn estimators (anything derived from ``sklearn.base.BaseEstimator``)."""

    name = "joblib"
    extension = "joblib"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Write the estimator with ``joblib.dump``."""
        found = dynamic_reference(value)
        if found is not None:
            raise Unsuitable(
                f"it uses notebook-defined code ({found}), which joblib would store by name",
                "cloudpickle",
            )
        joblib.dump(value, sink)

    def load(self, path: str) -> object:
        """Read the estimator with ``joblib.load``."""
        return joblib.load(path)
