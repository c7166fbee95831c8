"""The `%%step` sample in JupyterLab, in a real browser: Run All, `%cellpipe run` at the end,
the run view shows every step succeeded, and the metrics equal the CLI's."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest

from cellpipe import api
from tests.conftest import SAMPLES
from tests.ui.conftest import artifacts_dir

COMPARE = """\
import json
run = _cellpipe_run
assert run.status == "succeeded", run.steps
expected = {name: globals()[name] for name in run.metrics}
assert run.metrics == expected, (run.metrics, expected)
print("SAMPLE-METRICS " + json.dumps(run.metrics, sort_keys=True))
"""


@pytest.mark.browser
@pytest.mark.slow
def test_the_percent_step_sample_runs_itself_from_jupyterlab(lab, page, tmp_path):
    nb = nbformat.read(SAMPLES / "tabular_magics.ipynb", as_version=4)
    for source in ("%cellpipe run", COMPARE):
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": ["skip"]}))
    nbformat.write(nb, lab.root / "wine.ipynb")  # saved: the magic analyzes the file

    page.goto(lab.notebook_url("wine.ipynb"))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
        " === 'idle'", timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    marker = page.locator(".jp-OutputArea-output", has_text="SAMPLE-METRICS")
    try:
        marker.wait_for(timeout=240_000)
    finally:
        page.screenshot(path=str(artifacts_dir() / "lab-magics-run-all.png"), full_page=False)
    text = marker.inner_text()
    from_lab = json.loads(re.search(r"SAMPLE-METRICS (\{.*\})", text).group(1))
    # the run view: every step's row says succeeded
    view = page.locator(".jp-OutputArea-output", has_text="steps")
    assert view.count() >= 1
    page.locator(".jp-OutputArea-output", has_text="SAMPLE-METRICS").scroll_into_view_if_needed()
    spec = api.compile_spec(SAMPLES / "tabular_magics.ipynb").to_dict()
    body = page.locator(".jp-Notebook").inner_text()
    for step in spec["steps"]:
        assert step["name"] in body
    # one "succeeded" badge per step in the view's table, plus the run's status line
    assert body.count("succeeded") >= len(spec["steps"]) + 1, body[-3000:]
    page.screenshot(path=str(artifacts_dir() / "lab-magics-metrics.png"), full_page=False)

    cli = subprocess.run(
        [sys.executable, "-m", "cellpipe", "run", str(SAMPLES / "tabular_magics.ipynb"),
         "--root", str(tmp_path / "cli")], capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr
    (run,) = api.list_runs(tmp_path / "cli")
    assert run.metrics == pytest.approx(from_lab, rel=1e-12)


@pytest.mark.browser
@pytest.mark.slow
def test_a_lint_diagnostic_links_to_its_cell_in_jupyterlab(lab, page):
    cells = ["%load_ext cellpipe\n%cellpipe lint"]
    cells += [f"# filler {i}\n" + "\n".join(f"v{i}_{j} = {j}" for j in range(12))
              for i in range(12)]
    cells.append("%%step late\ntotal = undefined_name + 1")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for index, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        cell["id"] = f"cell{index:02d}"
        nb.cells.append(cell)
    nbformat.write(nb, lab.root / "lint.ipynb")
    page.goto(lab.notebook_url("lint.ipynb"))
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
        "?.status === 'idle'", timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
    link = page.locator(".jp-OutputArea-output a", has_text="cell 14")
    link.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts_dir() / "lab-lint-table.png"))
    link.click()
    page.wait_for_timeout(3000)  # JupyterLab scrolls to #cell-id=… (it does not activate it)
    page.screenshot(path=str(artifacts_dir() / "lab-lint-jumped-to-cell.png"))
    state = page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        const target = nb.widgets[13].node.getBoundingClientRect();
        const view = nb.node.getBoundingClientRect();
        return {active: nb.activeCellIndex, top: target.top, bottom: target.bottom,
                viewTop: view.top, viewBottom: view.bottom, hash: window.location.hash,
                path: window.location.pathname};
    }""")
    assert state["top"] < state["viewBottom"] and state["bottom"] > state["viewTop"], state
