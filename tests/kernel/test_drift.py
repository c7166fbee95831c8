"""`%cellpipe lint` / `%cellpipe run` say when the saved notebook differs from what the
kernel ran: a cell run after the last save that the file does not have, and saved cells
the kernel never ran. Driven through a real IPython shell running real cells."""

from __future__ import annotations

import os
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cellpipe_kernel import drift
from cellpipe_kernel.magics import register
from tests.conftest import write_nb

CELLS = (("step:load", "values = [1, 2, 3]"), ("step:total", "total = sum(values)"))


@pytest.fixture
def shell():
    ip = InteractiveShell.instance()
    register(ip)
    saved = list(getattr(ip, drift._EXECUTIONS, []))
    getattr(ip, drift._EXECUTIONS, []).clear()
    ip.history_manager.input_hist_raw[:] = [""]
    yield ip
    getattr(ip, drift._EXECUTIONS, []).extend(saved)


def aged(path, seconds: float = 5.0):
    """Make the file look saved ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def run(ip, source: str) -> None:
    result = ip.run_cell(source, store_history=True)
    assert result.success, result.error_in_exec


def test_the_kernel_ran_what_is_saved(shell, tmp_path):
    path = aged(write_nb(tmp_path, *CELLS))
    for _, source in CELLS:
        run(shell, source)

    assert drift.differences(shell, path) is None
    assert drift.note(shell, path, "run") is None


def test_a_cell_edited_and_run_but_not_saved(shell, tmp_path):
    path = aged(write_nb(tmp_path, *CELLS))
    run(shell, "values = [1, 2, 3]")
    run(shell, "total = sum(values) * 10  ")  # the editor's version, not saved

    found = drift.differences(shell, path)
    assert found is not None
    assert "1 cell(s) run after the notebook was last saved are not in the saved file" in found
    assert "cell(s) 2 as saved did not run in this kernel" in found
    assert drift.note(shell, path, "run").startswith(
        f"note: {path.name} as saved differs from what this kernel ran: ")

    # saved now: what ran before the save is not a difference any more
    write_nb(tmp_path, CELLS[0], ("step:total", "total = sum(values) * 10"))
    assert drift.differences(shell, path) is None


def test_a_cell_saved_but_not_run_again(shell, tmp_path):
    run(shell, "values = [1, 2, 3]")
    run(shell, "total = sum(values)")
    path = write_nb(tmp_path, CELLS[0], ("step:total", "total = sum(values) + 1"))

    assert drift.differences(shell, path) == (
        "cell(s) 2 as saved did not run in this kernel (edited since they ran, or never run)")


def test_a_kernel_that_ran_none_of_the_notebook_has_nothing_to_say(shell, tmp_path):
    path = write_nb(tmp_path, *CELLS)
    run(shell, "%load_ext cellpipe")
    assert drift.differences(shell, path) is None


def test_the_magics_print_the_note(shell, tmp_path, capsys):
    path = aged(write_nb(tmp_path, *CELLS))
    run(shell, "values = [1, 2, 3]")
    run(shell, "total = 0  # edited")
    capsys.readouterr()

    shell.run_cell(f"%cellpipe lint --notebook {path}")
    err = capsys.readouterr().err
    assert f"note: {path.name} as saved differs from what this kernel ran" in err
    assert "%cellpipe lint uses the saved file" in err
