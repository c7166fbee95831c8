"""Process state a step carries on for the next one, and checks of what analysis assumed.

The global random states (numpy's legacy ``RandomState``, Python's ``random``, torch's CPU
generator) are one hidden value, :data:`RANDOM_STATE`: a step that draws restores the state
the step before it left and saves the state it leaves, so seeded notebooks draw the same
numbers as top to bottom. Two checks run around the step's code, so that what static
analysis missed is reported instead of passing silently: a step that drew from the global
state although analysis saw no draw, and an input changed in place although analysis saw
no change.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import sys
from collections.abc import Iterable, Mapping
from typing import Any

# The spec's name of the hidden value, and the artifact name it is stored under (not an
# identifier, so no user variable can collide with it).
RANDOM_STATE = "(random state)"
RANDOM_STATE_ARTIFACT = "random-state"
# What a dynamic step (exec, globals()) exported, by name with each artifact's hash.
DYNAMIC_NAMES = "(dynamic names)"
DYNAMIC_NAMES_ARTIFACT = "dynamic-names"
# Inputs larger than this are not hashed around the step (hashing costs ~0.7 s per GB).
CHECK_LIMIT = 256 * 1024 * 1024


def artifact_name(variable: str) -> str:
    """The artifact a variable is stored under."""
    return {RANDOM_STATE: RANDOM_STATE_ARTIFACT, DYNAMIC_NAMES: DYNAMIC_NAMES_ARTIFACT}.get(
        variable, variable)


def capture_random_state() -> dict[str, Any]:
    """The global random states of the libraries this process has imported."""
    state: dict[str, Any] = {"random": random.getstate()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        state["numpy"] = numpy.random.get_state(legacy=True)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_rng_state"):
        state["torch"] = torch.get_rng_state()
    return state


def restore_random_state(state: Mapping[str, Any]) -> None:
    """Make the global random states what a step before left them."""
    if "random" in state:
        random.setstate(_as_tuples(state["random"]))
    if "numpy" in state:
        import numpy

        numpy.random.set_state(state["numpy"])
    if "torch" in state:
        try:
            import torch
        except ImportError:  # the drawing step here does not use torch either
            return
        torch.set_rng_state(state["torch"])


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples; JSON-like round trips may give lists."""
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


def random_state_digests() -> dict[str, str]:
    """Per library, a digest of its global random state (to tell whether a step drew)."""
    return {name: (value_digest(value) or b"?").hex()
            for name, value in sorted(capture_random_state().items())}


# Objects whose pickled form changes when they are only looked at (a figure draws and
# caches its renderer): not checked, so a plot never reads as a change.
_UNCHECKED_MODULES = ("matplotlib", "seaborn", "plotly", "bokeh", "IPython", "ipywidgets")


def value_digest(value: Any) -> bytes | None:
    """A content digest of a value (None when it cannot be pickled, or is too large).

    pandas objects are hashed by their values, index, columns and dtypes (their pickled
    form also records internal layout, which reading a frame may consolidate). Anything
    else by its pickle: protocol 5 hands large buffers (arrays) out of band, so they are
    hashed where they are, not copied.
    """
    module = type(value).__module__.split(".")[0]
    if module in _UNCHECKED_MODULES:
        return None
    if module == "pandas":
        found = _pandas_digest(value)
        if found is not None:
            return found
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle is a dependency
        cloudpickle = None
    digest = hashlib.sha256()
    buffers: list[pickle.PickleBuffer] = []
    try:
        dumps = cloudpickle.dumps if cloudpickle is not None else pickle.dumps
        data = dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception:
        return None
    total = len(data)
    for buffer in buffers:
        try:
            total += buffer.raw().nbytes
        except BufferError:  # not contiguous: count it as big
            return None
        if total > CHECK_LIMIT:
            return None
    digest.update(data)
    for buffer in buffers:
        digest.update(buffer.raw())
    return digest.digest()


def _pandas_digest(value: Any) -> bytes | None:
    import pandas as pd

    if not isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        return None
    try:
        size = value.memory_usage(deep=False)
        if int(getattr(size, "sum", lambda: size)()) > CHECK_LIMIT:
            return None
        hashed = pd.util.hash_pandas_object(value, index=not isinstance(value, pd.Index))
    except Exception:  # unhashable cells (lists, dicts): by pickle instead
        return None
    digest = hashlib.sha256(memoryview(hashed.to_numpy()).cast("B"))
    digest.update(repr(getattr(value, "dtypes", getattr(value, "dtype", ""))).encode())
    for labels in (getattr(value, "columns", None), getattr(value, "name", None)):
        digest.update(repr(None if labels is None else list(labels) if hasattr(
            labels, "__iter__") and not isinstance(labels, str) else labels).encode())
    return digest.digest()


def digests(namespace: Mapping[str, Any], names: Iterable[str]) -> dict[str, bytes]:
    """Digests of the named values (those that can be hashed)."""
    found: dict[str, bytes] = {}
    for name in names:
        if name in namespace:
            try:
                digest = value_digest(namespace[name])
            except Exception:  # a check must never fail the step
                digest = None
            if digest is not None:
                found[name] = digest
    return found


# IPython's own names in a shell's namespace: never a user's value.
_IPYTHON_NAMES = frozenset({
    "In", "Out", "get_ipython", "exit", "quit", "_", "__", "___", "_i", "_ii", "_iii",
    "_ih", "_oh", "_dh", "__builtin__", "__builtins__", "__name__", "__doc__",
    "__package__", "__loader__", "__spec__",
})


def is_session_name(name: str, hidden: Iterable[str] = ()) -> bool:
    """Whether ``name`` is IPython's or cellpipe's, not the user's."""
    if name in _IPYTHON_NAMES or name in hidden or name.startswith("__cellpipe"):
        return True
    if name.startswith("_i") and name[2:].isdigit():
        return True
    return name.startswith("_") and name[1:].isdigit()
