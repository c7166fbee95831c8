"""The central check of cellpipe: a pipeline ends with the values the notebook ends with.

Every name the notebook ends with when run top to bottom with nbclient (the user's names:
not IPython's) is compared with what ``Run.load`` answers for it: step outputs, parameters,
imports, notebook functions and classes. A name the pipeline says it cannot give must say
why, and only for the documented reasons (a cell marked skip; a value nobody reads later
that cannot be saved, which the notebook could not pickle either).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from cellpipe import api
from tests.engines.compare import assert_same

_DUMP = """
import cloudpickle as _cp
_hidden = set(get_ipython().user_ns_hidden) | {{"In", "Out", "get_ipython", "exit", "quit"}}
_found = {{}}
for _n, _v in list(globals().items()):
    if _n.startswith("_") or _n in _hidden:
        continue
    if isinstance(_v, type(_cp)):
        _found[_n] = ("module", _v.__name__)
        continue
    try:
        _found[_n] = ("value", _cp.dumps(_v))
    except Exception:
        _found[_n] = ("unpicklable", type(_v).__module__ + "." + type(_v).__qualname__)
with open({path!r}, "wb") as _f:
    _cp.dump(_found, _f)
"""


@dataclass(frozen=True)
class Module:
    """A module the notebook ends with (compared by the import that replays it)."""

    name: str


@dataclass(frozen=True)
class Unpicklable:
    """A value the notebook ends with that cannot be pickled (an open file, a generator)."""

    type_name: str


def notebook_values(path: Path, tmp: Path) -> dict[str, Any]:
    """Execute the notebook top to bottom with nbclient; return every user name at its end."""
    import cloudpickle
    import nbclient

    nb = nbformat.read(path, as_version=4)
    dump = tmp / f"{path.stem}.values.pkl"
    nb.cells.append(nbformat.v4.new_code_cell(_DUMP.format(path=str(dump))))
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    with open(dump, "rb") as handle:
        found: dict[str, tuple[str, Any]] = cloudpickle.load(handle)
    import sys

    # values of the notebook's own modules (beside it) are pickled by reference
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    values: dict[str, Any] = {}
    for name, (kind, data) in found.items():
        if kind == "unpicklable":
            values[name] = Unpicklable(data)
            continue
        if kind == "module":
            values[name] = Module(data)
            continue
        try:
            values[name] = cloudpickle.loads(data)
        except Exception as exc:  # pickled in the kernel, cannot be read here
            values[name] = Unpicklable(f"{type(exc).__name__}: {exc}")
    return values


def final_names(spec: api.PipelineSpec) -> list[str]:
    """Every value some step leaves behind (what the notebook ends with, as far as steps go)."""
    return sorted({name for step in spec.steps for name in step.writes if name.isidentifier()})


def assert_faithful(path: Path, tmp: Path, **run_options: Any) -> Any:
    """Run ``path`` both ways and compare every name the notebook ends with."""
    expected = notebook_values(path, tmp)
    run = api.run(path, root=tmp / ".cellpipe", **run_options)
    assert run.status == "succeeded", json.dumps(run.steps, indent=1, default=str)[:4000]
    rows = {row["name"]: row for row in run.values()}
    loadable = set(run.names())
    compared = 0
    for name, value in sorted(expected.items()):
        row = rows.get(name)
        if row is not None and row["kind"] == "skip":
            continue  # documented: not part of the pipeline
        if isinstance(value, Unpicklable):
            assert name not in loadable and row is not None and "not kept" in row.get(
                "note", ""), f"{name}: the notebook ends with {value}; the run: {row}"
            continue
        if isinstance(value, Module):
            # Replayed by its import (the module may live on a path only the steps had).
            assert row is not None and row["kind"] == "import", f"{name}: {row}"
            top = value.name.split(".")[0]
            assert top in row["source"] or name in row["source"], f"{name}: {row}"
            continue
        assert name in loadable or row is None, f"{name}: {row}"
        assert_same(value, run.load(name), name)
        compared += 1
    assert compared, "no value compared"
    return run
