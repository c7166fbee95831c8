"""The sample notebooks run top to bottom, and what lint claims about them holds there.

Each notebook is executed with nbclient in a real kernel; then the kernel is asked which
names exist. Every value a step claims to write, and every metric, must exist at the end
of the top-to-bottom run (metrics as numbers).
"""

from __future__ import annotations

import json

import nbformat
import pytest

from cellpipe import api
from tests.conftest import sample_paths

nbclient = pytest.importorskip("nbclient", reason="nbclient is installed by `.[test]`")

PROBE = """
import json as _json, numbers as _numbers
print(_json.dumps({
    "names": sorted(k for k in globals() if not k.startswith("_")),
    "numbers": sorted(k for k, v in globals().items()
                      if isinstance(v, _numbers.Number) and not isinstance(v, bool)),
}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_sample_runs_and_lint_claims_hold(path):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    output = nb.cells[-1].outputs[-1]["text"]
    found = json.loads(output.strip().splitlines()[-1])
    names, numbers_ = set(found["names"]), set(found["numbers"])

    pipeline = api.analyze(path)
    assert not pipeline.errors
    claimed = {w for step in pipeline.steps for w in step.writes}
    read = {r for step in pipeline.steps for r in step.reads}
    assert claimed - names == set(), "steps claim outputs the notebook never ends with"
    assert read <= claimed
    metrics = {name for name, _ in pipeline.metrics}
    if pipeline.split == "tags":
        assert metrics, "the tagged sample notebooks report metrics"
    assert metrics <= numbers_, f"metrics that are not numbers: {metrics - numbers_}"


def test_sample_notebooks_match_their_generator(tmp_path):
    """The committed notebooks are exactly what make_samples.py writes (no hand edits)."""
    import runpy
    import shutil

    from tests.conftest import SAMPLES

    shutil.copy(SAMPLES / "make_samples.py", tmp_path / "make_samples.py")
    runpy.run_path(str(tmp_path / "make_samples.py"), run_name="__main__")
    for path in sample_paths():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
