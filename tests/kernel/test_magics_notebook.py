"""The magics end to end: a notebook written with ``%%step`` headers runs top to bottom in a
real kernel (nbclient), runs itself as a pipeline with ``%cellpipe run`` (foreground and
``--background``), and checks that the run's values are the ones its own cells computed;
``cellpipe run`` on the same saved file gives the same metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import nbclient
import nbformat
import pytest

from cellpipe import api
from tests.conftest import make_nb

COMPARE = """\
import json
run = _cellpipe_run
assert run.status == "succeeded", run.steps
assert run.parameters == {"n": n, "scale": scale}, run.parameters
assert np.array_equal(run.load("xs"), xs)
assert run.load("total") == total and run.load("spread") == spread
assert run.metrics == {"total_metric": total_metric, "spread_metric": spread_metric}
print("COMPARED", json.dumps({"run": run.id, "total_metric": total_metric,
                              "spread_metric": spread_metric}))
"""

BACKGROUND_CHECK = """\
bg = _cellpipe_background.wait(120)
assert bg.status == "succeeded", bg.steps
assert bg.parameters == {"n": 5, "scale": scale}
assert bg.load("xs").shape == (5,)
assert _cellpipe_run is bg
assert _cellpipe_background.view.states["stats"]["status"] in ("succeeded", "cached")
print("BACKGROUND", bg.id)
"""


def magic_notebook() -> nbformat.NotebookNode:
    return make_nb(
        "%load_ext cellpipe",
        ("parameters", "n = 12\nscale = 0.5"),
        "%%step data\nimport numpy as np\nrng = np.random.default_rng(7)\n"
        "xs = rng.normal(size=n) * scale\nprint('made', xs.size, 'values')",
        "%%step stats\ntotal = float(np.sum(xs))\nspread = float(np.std(xs))",
        ("metrics", "total_metric = total\nspread_metric = spread"),
        # what runs the pipeline is not part of it
        ("skip", "%cellpipe run --notebook nb.ipynb"),
        ("skip", COMPARE),
        ("skip", "%cellpipe run --notebook nb.ipynb --background -p n=5"),
        ("skip", BACKGROUND_CHECK),
    )


def stdout_of(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o["output_type"] == "stream" and o["name"] == "stdout")


@pytest.mark.slow
def test_cellpipe_run_from_the_notebook_matches_the_notebook_and_the_cli(tmp_path,
                                                                          monkeypatch):
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    path = tmp_path / "nb.ipynb"
    nb = magic_notebook()
    nbformat.write(nb, path)  # the magics analyze the saved file

    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    run_cell, compare_cell, _, background_cell = nb.cells[5:9]
    compared = [line for line in stdout_of(compare_cell).splitlines()
                if line.startswith("COMPARED ")]
    assert len(compared) == 1, compare_cell.outputs
    notebook_values = json.loads(compared[0].removeprefix("COMPARED "))
    assert "BACKGROUND " in stdout_of(background_cell)

    # the view was displayed as a widget; its text form was updated in place at the end
    displays = [o for o in run_cell.outputs if o["output_type"] == "display_data"]
    assert len(displays) == 1
    assert "application/vnd.jupyter.widget-view+json" in displays[0]["data"]
    text = displays[0]["data"]["text/plain"]
    assert f"cellpipe run {notebook_values['run']} of nb.ipynb" in text
    assert "2/2 steps done" in text
    summary = f"run {notebook_values['run']} succeeded in"
    assert summary in text and summary in stdout_of(run_cell)
    # the widgets' final state (kept by nbclient) shows the finished progress bar
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "IntProgressModel"]
    assert {(b["value"], b["max"], b["bar_style"]) for b in bars} >= {(2, 2, "success")}

    # both runs went beside the notebook; the foreground one ran with the defaults
    runs = {r.id: r for r in api.list_runs(tmp_path / ".cellpipe")}
    assert len(runs) == 2 and notebook_values["run"] in runs
    magic_run = runs[notebook_values["run"]]
    assert magic_run.parameters == {"n": 12, "scale": 0.5}
    assert magic_run.metrics == {k: notebook_values[k] for k in ("total_metric", "spread_metric")}

    # the CLI, on the same saved file, in a fresh runs directory (nothing cached)
    cli_root = tmp_path / "cli-runs"
    result = subprocess.run(
        [sys.executable, "-m", "cellpipe", "run", str(path), "--root", str(cli_root)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (cli_run,) = api.list_runs(cli_root)
    assert cli_run.metrics == magic_run.metrics
    assert cli_run.load("xs").tolist() == magic_run.load("xs").tolist()
    printed = [line for line in result.stdout.splitlines() if line.startswith("metrics: ")]
    assert printed == ["metrics: " + ", ".join(
        f"{name}={value:.4g}" for name, value in magic_run.metrics.items())]


SAMPLE_COMPARE = """\
import json
run = _cellpipe_run
assert run.status == "succeeded", run.steps
expected = {name: globals()[name] for name in run.metrics}
assert run.metrics == expected, (run.metrics, expected)
print("SAMPLE", json.dumps(run.metrics, sort_keys=True))
"""


@pytest.mark.slow
def test_the_percent_step_sample_runs_from_its_kernel_and_from_the_cli_alike(tmp_path,
                                                                             monkeypatch):
    """sample_notebooks/tabular_magics.ipynb (written with %%step) top to bottom in a kernel,
    then `%cellpipe run` on it: the run's metrics are the notebook's; the CLI's are the same."""
    from tests.conftest import SAMPLES

    sample = SAMPLES / "tabular_magics.ipynb"
    monkeypatch.setenv("CELLPIPE_HOME", str(tmp_path / "kernel-runs"))  # the kernel inherits it
    nb = nbformat.read(sample, as_version=4)
    for source in (f"%cellpipe run --notebook {sample}", SAMPLE_COMPARE):
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["skip"]})
        nb.cells.append(cell)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(sample.parent)}}).execute()
    printed = stdout_of(nb.cells[-1])
    assert printed.startswith("SAMPLE "), printed
    from_kernel = json.loads(printed.split(" ", 1)[1])
    assert from_kernel  # the sample has metrics
    cli = subprocess.run(
        [sys.executable, "-m", "cellpipe", "run", str(sample), "--root", str(tmp_path / "cli")],
        capture_output=True, text=True, timeout=600,
    )
    assert cli.returncode == 0, cli.stderr
    (run,) = api.list_runs(tmp_path / "cli")
    assert run.metrics == pytest.approx(from_kernel, rel=1e-12)
