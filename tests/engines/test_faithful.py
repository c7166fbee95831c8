"""The contract: every sample notebook, run as a pipeline, ends with the values it ends
with when run top to bottom with nbclient (numbers, arrays, frames, fitted models)."""

from __future__ import annotations

import pytest

from tests.conftest import sample_paths
from tests.engines.faithful import assert_faithful

pytest.importorskip("nbclient", reason="nbclient is installed by `.[test]`")


@pytest.mark.slow
@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.stem)
def test_sample_notebook_pipeline_equals_top_to_bottom(path, tmp_path):
    run = assert_faithful(path, tmp_path)
    assert all(s["status"] == "succeeded" for s in run.steps.values())
