"""Reading notebooks: every version upgraded, every bad file a clear error naming it."""

from __future__ import annotations

import json
import pickle

import nbformat
import pytest

from cellpipe.core.notebook import read_notebook
from cellpipe.errors import CellpipeError, NotebookReadError
from tests.conftest import make_nb


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_cells_tags_and_ids(tmp_path):
    nb = make_nb(("step:load", "x = 1"), ("md", "# Title"), "y = x")
    path = write(tmp_path, "a.ipynb", nbformat.writes(nb))
    notebook = read_notebook(path)
    assert [c.cell_type for c in notebook.cells] == ["code", "markdown", "code"]
    assert notebook.cells[0].tags == ("step:load",)
    assert notebook.cells[2].id == "c02"
    assert notebook.name == "a"


def test_old_nbformat_versions_are_upgraded(tmp_path):
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "input": "x = 1",
                        "language": "python",
                        "outputs": [],
                        "metadata": {"tags": ["step:one"]},
                    }
                ]
            }
        ],
    }
    notebook = read_notebook(write(tmp_path, "old.ipynb", json.dumps(v3)))
    assert notebook.cells[0].source == "x = 1"
    assert notebook.cells[0].tags == ("step:one",)


def test_invalid_json_names_file_and_position(tmp_path):
    path = write(tmp_path, "broken.ipynb", '{"cells": [}')
    with pytest.raises(NotebookReadError) as info:
        read_notebook(path)
    text = str(info.value)
    assert "broken.ipynb" in text and "not valid JSON" in text and "line 1" in text


def test_json_that_is_not_a_notebook(tmp_path):
    with pytest.raises(NotebookReadError, match="not a Jupyter notebook"):
        read_notebook(write(tmp_path, "data.ipynb", '{"rows": [1, 2]}'))


def test_a_script_is_not_a_notebook(tmp_path):
    with pytest.raises(NotebookReadError, match=r"script\.py.*not valid JSON"):
        read_notebook(write(tmp_path, "script.py", "import os\nprint(os.getcwd())\n"))


def test_missing_file(tmp_path):
    with pytest.raises(NotebookReadError, match="no such file"):
        read_notebook(tmp_path / "nope.ipynb")


def test_non_python_kernel_is_refused_with_its_name(tmp_path):
    nb = make_nb("x <- 1")
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    with pytest.raises(NotebookReadError) as info:
        read_notebook(write(tmp_path, "r.ipynb", nbformat.writes(nb)))
    assert "r.ipynb" in str(info.value) and "R kernel" in str(info.value)


def test_errors_survive_pickling_with_their_fields():
    error = NotebookReadError("boom", path="a.ipynb", cell=3, line=2, step="s", hint="fix it")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, CellpipeError)
    assert (copy.path, copy.cell, copy.line, copy.step, copy.hint) == (
        "a.ipynb",
        3,
        2,
        "s",
        "fix it",
    )
    assert str(copy) == str(error) == "a.ipynb, cell 4, line 2, step 's': boom (fix it)"
