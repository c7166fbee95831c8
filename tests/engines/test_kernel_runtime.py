"""``--runtime kernel``: each step as a notebook in a real Jupyter kernel (papermill) gives
the same values as the default in-process IPython shell and as the notebook itself."""

from __future__ import annotations

import nbformat
import pytest

from cellpipe import api
from tests.conftest import SAMPLES, make_nb
from tests.engines.faithful import assert_faithful

pytest.importorskip("papermill", reason="papermill is installed by `.[test]`")


@pytest.mark.slow
def test_kernel_runtime_is_faithful_on_a_sample(tmp_path):
    run = assert_faithful(SAMPLES / "kale_style.ipynb", tmp_path, runtime="kernel")
    report = nbformat.read(run.path / "steps" / "evaluate" / "report.ipynb", as_version=4)
    tags = {t for cell in report.cells for t in cell.metadata.get("tags", [])}
    assert "cellpipe-helper" not in tags and "injected-parameters" not in tags
    assert [c.metadata["cellpipe"]["cell"] for c in report.cells] == [17, 18]
    assert any(c.outputs for c in report.cells)


@pytest.mark.slow
def test_kernel_runtime_errors_point_at_the_notebook_cell(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_nb(("parameters", "note = 'x'"), ("step:a", "value = note"),
                           ("step:b", "first = value + '!'\nsecond = 1 / 0")), path)
    injection = "'; import os; os.system('touch " + str(tmp_path / "pwned") + "') #"
    run = api.run(path, {"note": injection}, root=tmp_path / ".cellpipe", runtime="kernel")
    assert run.status == "failed"
    assert run.steps["a"]["status"] == "succeeded"
    assert run.load("value") == injection
    assert not (tmp_path / "pwned").exists()
    error = run.steps["b"]["error"]
    assert error["cell"] == 2 and "ZeroDivisionError" in error["message"]
