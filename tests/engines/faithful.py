"""The central check of cellpipe: a pipeline ends with the values the notebook ends with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from cellpipe import api
from tests.engines.compare import assert_same

_DUMP = """
import cloudpickle as _cp, types as _types
_names = {names!r}
with open({path!r}, "wb") as _f:
    _cp.dump({{n: globals()[n] for n in _names if n in globals()}}, _f)
"""


def notebook_values(path: Path, names: list[str], tmp: Path) -> dict[str, Any]:
    """Execute the notebook top to bottom with nbclient; return the named values at its end."""
    import cloudpickle
    import nbclient

    nb = nbformat.read(path, as_version=4)
    dump = tmp / f"{path.stem}.values.pkl"
    nb.cells.append(nbformat.v4.new_code_cell(_DUMP.format(names=names, path=str(dump))))
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    with open(dump, "rb") as handle:
        values: dict[str, Any] = cloudpickle.load(handle)
    return values


def final_names(spec: dict[str, Any]) -> list[str]:
    """Every value some step leaves behind (what the notebook ends with, as far as steps go)."""
    return sorted({name for step in spec["steps"] for name in step["writes"]})


def assert_faithful(path: Path, tmp: Path, **run_options: Any) -> Any:
    """Run ``path`` both ways and compare every value the notebook ends with."""
    spec = api.compile_spec(path)
    names = final_names(spec)
    expected = notebook_values(path, names, tmp)
    run = api.run(path, root=tmp / ".cellpipe", **run_options)
    assert run.status == "succeeded", json.dumps(run.steps, indent=1, default=str)[:4000]
    never = set(names) - set(expected)
    assert not never, f"names the notebook never made: {never}"
    for name in names:
        assert_same(expected[name], run.load(name), name)
    return run
