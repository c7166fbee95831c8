"""Fixtures of the tuning tests: notebooks on disk, a runs root of each test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_nb

pytest.importorskip("optuna", reason="optuna is installed by `.[test]`")

# A quadratic with its minimum at x = 2 (and at y = 1): no libraries, so a trial is quick.
# x >= 4 reports a NaN loss: a trial that runs but gives no usable value.
QUADRATIC = (
    ("parameters", "x = 0.0\ny = 0\npause = 0.0"),
    ("step:prepare", "import time\noffset = 2.0\nprint('prepared')"),
    ("step:evaluate", "time.sleep(pause)\nvalue = (x - offset) ** 2 + (y - 1) ** 2"),
    ("metrics", "loss = value if x < 4 else float('nan')"),
)


@pytest.fixture(autouse=True)
def _no_cellpipe_home(monkeypatch):
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)


@pytest.fixture
def quadratic_nb(tmp_path) -> Path:
    return write_nb(tmp_path, *QUADRATIC, name="quadratic.ipynb")


@pytest.fixture
def model_nb(tmp_path) -> Path:
    from tests.tune.notebooks import write_tune_notebook

    return write_tune_notebook(tmp_path)
