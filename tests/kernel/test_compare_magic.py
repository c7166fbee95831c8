"""``%cellpipe compare``: the tables as HTML, the plot inline, the comparison left in the
namespace; through a real IPython shell, and in a real kernel (nbclient) that runs its own
notebook twice with ``%cellpipe run`` and compares the runs."""

from __future__ import annotations

import base64
import io

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from cellpipe import api
from cellpipe_kernel.notebook import SESSION_ENV
from tests.conftest import make_nb, write_nb

LEFTOVERS = ("__session__", "_cellpipe_compare")


@pytest.fixture
def shell(monkeypatch):
    monkeypatch.delenv(SESSION_ENV, raising=False)
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "cellpipe")
    for name in LEFTOVERS:
        ip.user_ns.pop(name, None)
    yield ip
    for name in LEFTOVERS:
        ip.user_ns.pop(name, None)


@pytest.fixture
def two_runs(tmp_path):
    path = write_nb(tmp_path, ("parameters", "n = 3\nscale = 1.5"),
                    ("step:make", "xs = [i * scale for i in range(n)]"),
                    ("step:total", "total = sum(xs)"), ("metrics", "total_metric = total"))
    return path, api.run(path), api.run(path, {"n": 4})


def run_cell(shell, source):
    with capture_output() as captured:
        result = shell.run_cell(source, store_history=True)
    return result, captured.stdout, captured.stderr, captured.outputs


def decoded(png: bytes | str):
    """A PNG (as bytes, or base64 as a front end receives it) decoded by matplotlib."""
    import matplotlib.image

    if isinstance(png, str):
        png = base64.b64decode(png)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_compare_shows_tables_and_the_plot_and_keeps_the_comparison(shell, two_runs, tmp_path):
    path, first, second = two_runs
    result, out, err, outputs = run_cell(
        shell, f"%cellpipe compare {first.id} {second.id} --notebook {path}")

    assert result.success and result.result is None, err
    comparison = shell.user_ns["_cellpipe_compare"]
    assert isinstance(comparison, api.Comparison)
    assert comparison.ids == [first.id, second.id]
    assert comparison.parameters == {"n": [3, 4]}
    assert comparison.metrics == {"total_metric": [4.5, 9.0]}
    tables, image = outputs
    page = tables.data["text/html"]
    assert "parameters that differ" in page and "same in every run (1): scale=1.5" in page
    assert "<td style='text-align:left'>9 (+4.5, +100.0%)</td>" in page
    assert "<td style='text-align:left'>ran: parameter n changed · changed: xs</td>" in page
    assert "total_metric  4.5  9 (+4.5, +100.0%)" in tables.data["text/plain"]
    pixels = decoded(image.data["image/png"])
    assert pixels.shape[0] >= 400 and pixels.std() > 0.05  # a drawing, not a blank

    written = tmp_path / "out" / "plot.png"
    result, out, _, outputs = run_cell(
        shell, f"%cellpipe compare {first.id} latest --notebook {path} --plot {written}")
    assert result.success and f"wrote {written}" in out
    assert base64.b64decode(outputs[1].data["image/png"]) == written.read_bytes()


def test_without_a_session_the_runs_are_those_in_the_kernels_folder(shell, two_runs,
                                                                     monkeypatch):
    path, first, second = two_runs
    monkeypatch.chdir(path.parent)
    result, _, err, _ = run_cell(shell, f"%cellpipe compare {first.id} {second.id}")
    assert result.success, err
    assert shell.user_ns["_cellpipe_compare"].ids == [first.id, second.id]


@pytest.mark.parametrize(("line", "message"), [
    ("compare latest", "comparing needs at least two runs (got 1)"),
    ("compare latest 20990101-nope", "no run '20990101-nope' under"),
    ("compare latest {first} --metric nothing", "there is no metric 'nothing' in these runs"),
    ("compare latest --bogus", "%cellpipe compare: unrecognized arguments: --bogus"),
])
def test_mistakes_are_one_line_usage_errors(shell, two_runs, line, message):
    path, first, second = two_runs
    result, out, err, outputs = run_cell(
        shell, f"%cellpipe {line.format(first=first.id)} --notebook {path}")

    assert isinstance(result.error_in_exec, UsageError)
    assert outputs == []  # nothing shown before the error (the plot is drawn first)
    assert "_cellpipe_compare" not in shell.user_ns
    assert err.startswith("UsageError: ") and message in err
    assert "Traceback" not in out + err
    if "nope" in line:
        assert first.id in err and second.id in err  # the known ids


def test_help_lists_compare(shell):
    result, out, _, _ = run_cell(shell, "%cellpipe compare -h")
    assert result.success
    assert "usage: %cellpipe compare [-h] [--metric NAME] [--plot PATH]" in out


KERNEL_CHECK = """\
import json
c = _cellpipe_compare
assert c.ids == [first, _cellpipe_run.id], c.ids
print("COMPARED", json.dumps({"parameters": c.parameters, "metrics": c.metrics,
                              "train": c.steps["stats"][1]["reason"]}))
"""


@pytest.mark.slow
def test_compare_in_a_real_kernel_after_two_runs_of_its_notebook(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="nbclient is installed by `.[test]`")
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    nb = make_nb(
        "%load_ext cellpipe",
        ("parameters", "n = 6\nscale = 0.5"),
        "%%step data\nxs = [i * scale for i in range(n)]",
        "%%step stats\ntotal = sum(xs)",
        ("metrics", "total_metric = total"),
        ("skip", "%cellpipe run --notebook nb.ipynb\nfirst = _cellpipe_run.id"),
        ("skip", "%cellpipe run --notebook nb.ipynb -p n=3"),
        ("skip", "%cellpipe compare $first latest --notebook nb.ipynb"),
        ("skip", KERNEL_CHECK),
    )
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)  # the magics read the saved file
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    compare_cell, check_cell = nb.cells[7:9]
    printed = [o["text"] for o in check_cell.outputs if o["output_type"] == "stream"]
    assert printed and printed[0].startswith("COMPARED ")
    import json

    seen = json.loads(printed[0].removeprefix("COMPARED "))
    assert seen == {"parameters": {"n": [6, 3]}, "metrics": {"total_metric": [7.5, 1.5]},
                    "train": "input xs changed"}
    displays = [o for o in compare_cell.outputs if o["output_type"] == "display_data"]
    assert len(displays) == 2
    assert "parameters that differ" in displays[0]["data"]["text/html"]
    png = base64.b64decode(displays[1]["data"]["image/png"])
    assert png[:4] == b"\x89PNG" and decoded(png).std() > 0.05
    runs = api.list_runs(tmp_path / ".cellpipe")
    assert len(runs) == 2 and runs[1].steps["data"]["reason"] == "parameter n changed"
