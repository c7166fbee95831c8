"""The corpus: realistic notebooks written here in the styles people write (EDA, textbook
chapters, seeded simulations, papermill reports, Kale pipelines, magics, data folders).

Each is run top to bottom with nbclient and as a pipeline, and every name it ends with is
compared (the central test), or lint refuses it with a message that says why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cellpipe import api
from tests.engines.faithful import assert_faithful

pytest.importorskip("nbclient", reason="nbclient is installed by `.[test]`")

CORPUS = Path(__file__).resolve().parent
NOTEBOOKS = sorted(CORPUS.glob("*.ipynb"))
# Refused by lint, with the code that says why.
REFUSED = {"loop_through_steps": "CP404", "timeseries_forecast": "CP404"}


@pytest.fixture
def corpus_copy(tmp_path):
    """The corpus in a temporary folder: notebooks write figures and outputs beside them."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target, ignore=shutil.ignore_patterns(
        "*.py", "__pycache__", ".cellpipe"))
    shutil.copy(CORPUS / "corpus_helpers.py", target / "corpus_helpers.py")
    return target


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_corpus_notebook_is_faithful_or_refused(path, corpus_copy, tmp_path):
    notebook = corpus_copy / path.name
    if path.stem in REFUSED:
        report = api.lint(notebook)
        codes = [d.code for d in report.diagnostics if d.severity == "error"]
        assert codes == [REFUSED[path.stem]], [d.format() for d in report.diagnostics]
        return
    run = assert_faithful(notebook, tmp_path, workers=2)
    assert all(s["status"] == "succeeded" for s in run.steps.values())
