"""The side panel as the place to work, in a real browser: the notebook analyzed as it is
typed (a 200-cell notebook; the time until the diagnostic shows is printed), diagnostics on
their cells, the parameters form (a refused value next to its field, a run with changed
values in the history, "run again"), Stop on a running run with its log followed, a failed
step's error leading to its cell, figures as thumbnails, the metrics chart, the dark theme.

One JupyterLab serves every test of the module (``shared_lab``); each test has its own
notebook and browser page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from cellpipe import api
from tests.conftest import make_nb
from tests.ui.conftest import Lab, artifacts_dir, start_lab
from tests.ui.test_panel import open_notebook, open_panel, wait_until, widen_sidebar

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One JupyterLab for the module's tests (runs under ``<tmp>/runs``)."""
    with start_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


class _Fresh:
    """The shared lab, opening a notebook in a reset workspace (no earlier test's tabs)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def notebook_url(self, name: str) -> str:
        return self.lab.notebook_url(name) + "&reset"


def open_fresh(page: Any, lab: Lab, name: str) -> None:
    open_notebook(page, _Fresh(lab), name)


def runs_of(lab: Lab, name: str) -> list[Any]:
    """The runs of notebook ``name``, oldest first."""
    return [run for run in api.list_runs(lab.root.parent / "runs")
            if Path(run.data.get("notebook", "")).name == name]


def shot(page: Any, name: str) -> Path:
    path = artifacts_dir() / name
    page.screenshot(path=str(path))
    return path


def current(page: Any, expression: str) -> Any:
    return page.evaluate(f"() => window.jupyterapp.shell.currentWidget.{expression}")


def test_the_notebook_is_analyzed_as_it_is_typed(shared_lab, page):
    """200 cells; a name read before any cell defines it is typed into the last one: the
    diagnostic shows in the list and on the cell without a save, and leads to the cell."""
    cells: list[Any] = [("step:load", "x = 1")]
    cells += [f"y{i} = x + {i}" for i in range(197)]
    cells += [("step:late", "total = x + 1"), "done = total"]
    nbformat.write(make_nb(*cells), shared_lab.root / "big.ipynb")
    saved = (shared_lab.root / "big.ipynb").read_text()

    open_fresh(page, shared_lab, "big.ipynb")
    panel = open_panel(page)
    panel.locator(".cp-step[data-step='late']").wait_for(timeout=30_000)
    assert panel.locator(".cp-diagnostic").count() == 0
    # type at the end of cell 199 (step late)
    page.evaluate("async () => { const nb = window.jupyterapp.shell.currentWidget.content;"
                  " nb.activeCellIndex = 198; await nb.scrollToCell(nb.widgets[198], 'center'); }")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.activeCell"
                           ".editor !== null", timeout=10_000)
    page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content;"
                  " nb.mode = 'edit'; const e = nb.activeCell.editor;"
                  " e.setCursorPosition({line: 0, column: 13}); e.focus(); }")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.activeCell"
                           ".editor.hasFocus()", timeout=10_000)
    page.keyboard.type(" + undefined_rate", delay=20)
    typed = time.monotonic()
    diagnostic = panel.locator(".cp-diagnostic", has_text="undefined_rate")
    diagnostic.wait_for(timeout=10_000)
    elapsed = time.monotonic() - typed
    on_cell = page.locator(".jp-Cell.cp-has-diagnostic .cp-cell-diagnostic",
                           has_text="undefined_rate")
    on_cell.wait_for(timeout=5_000)
    print(f"\nlive analysis, 200 cells: the diagnostic showed {elapsed:.2f} s after the last "
          "keystroke (400 ms of it is the debounce)")
    assert elapsed < 2.0, elapsed  # within a second on a quiet machine; 2 s leaves room
    # the file was not saved: the analysis is of the editor's cells
    assert (shared_lab.root / "big.ipynb").read_text() == saved
    assert current(page, "context.model.dirty") is True
    assert "as in the editor" in panel.locator(".cp-summary").inner_text()
    # the diagnostic is on its cell: the 199th
    marked = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets"
                           ".map((c, i) => c.node.classList.contains('cp-has-diagnostic')"
                           " ? i : -1).filter(i => i >= 0)")
    assert marked == [198]
    on_cell.scroll_into_view_if_needed()
    shot(page, "work-live-diagnostic.png")

    # the list leads to the cell: move away, click the diagnostic, it is the active cell
    page.keyboard.press("Escape")
    page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content;"
                  " nb.activeCellIndex = 0; nb.scrollToItem(0); }")
    diagnostic.locator("button").click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex === 198",
        timeout=10_000)
    # removing the name clears the list and the cell again, still without a save
    page.keyboard.press("End")
    for _ in range(len(" + undefined_rate")):
        page.keyboard.press("Backspace")
    panel.locator(".cp-ok", has_text="No diagnostics").wait_for(timeout=10_000)
    assert page.locator(".jp-Cell.cp-has-diagnostic").count() == 0


HOLD = ("import os, time\nfor i in range(600):\n    print('waiting', i, flush=True)\n"
        "    if os.path.exists({release!r}):\n        break\n    time.sleep(0.25)\n")


def test_run_with_parameters_stop_a_running_run_and_run_again(shared_lab, page, tmp_path):
    release = tmp_path / "release"
    cells = [
        ("parameters", "rate = 0.5\nepochs = 2\nshuffle = True\nlabel = 'base'\nlayers = [8, 4]"),
        ("step:load", "data = list(range(epochs))"),
        ("step:train", HOLD.format(release=str(release))
         + "score = sum(data) * rate + len(layers) + (1 if shuffle else 0)"),
        ("metrics", "final = score"),
    ]
    nbformat.write(make_nb(*cells), shared_lab.root / "params.ipynb")

    open_fresh(page, shared_lab, "params.ipynb")
    panel = open_panel(page)
    form = panel.locator(".cp-parameters-form")
    form.wait_for(timeout=30_000)
    assert panel.locator("#cp-param-rate").input_value() == "0.5"
    assert panel.locator("#cp-param-layers").input_value() == "[8,4]"
    assert panel.locator("#cp-param-shuffle").is_checked()

    # a value the server refuses (as `cellpipe run -p` would): the message is at its field
    panel.locator("#cp-param-epochs").fill("three")
    panel.locator("#cp-param-epochs").press("Enter")
    problem = panel.locator(".cp-param[data-parameter='epochs'] .cp-problem")
    problem.wait_for(timeout=30_000)
    assert "parameter 'epochs' is an int; 'three' is not" in problem.inner_text()
    assert panel.locator("#cp-param-epochs").get_attribute("aria-invalid") == "true"
    # JSON the form itself can tell is wrong
    panel.locator("#cp-param-layers").fill("[8, 4")
    panel.locator("#cp-param-layers").press("Enter")
    assert "not valid JSON" in panel.locator(
        ".cp-param[data-parameter='layers'] .cp-problem").inner_text()
    form.scroll_into_view_if_needed()
    shot(page, "work-parameter-refused.png")
    assert runs_of(shared_lab, "params.ipynb") == []

    # changed values run; Stop while the train step holds, its log followed meanwhile
    panel.locator("#cp-param-epochs").fill("4")
    panel.locator("#cp-param-layers").fill("[1, 2, 3]")
    panel.locator("#cp-param-shuffle").uncheck()
    panel.locator("#cp-param-label").fill("changed")
    panel.locator("button.cp-run-parameters").click()
    stop = panel.locator(".cp-run-detail-top button.cp-cancel")
    stop.wait_for(timeout=60_000)
    assert panel.locator("button.cp-stop").is_visible()
    panel.locator(".cp-run-steps li[data-step='train'][data-state='running']").wait_for(
        timeout=60_000)
    panel.locator(".cp-run-steps li[data-step='train'] button", has_text="Log").click()
    log = panel.locator("pre.cp-log")
    log.wait_for(timeout=10_000)
    page.wait_for_function("() => /waiting 2\\b/.test(document.querySelector("
                           "'#cellpipe-panel pre.cp-log').textContent)", timeout=30_000)
    first = log.inner_text().count("waiting")
    page.wait_for_function(f"() => (document.querySelector('#cellpipe-panel pre.cp-log')"
                           f".textContent.match(/waiting/g) || []).length > {first + 2}",
                           timeout=30_000)  # the log grows while the step runs
    shot(page, "work-running-log.png")
    stop.click()
    panel.locator(".cp-status", has_text="cancelled").wait_for(timeout=60_000)
    (cancelled,) = runs_of(shared_lab, "params.ipynb")
    assert cancelled.status == "cancelled"
    assert cancelled.data["steps"]["load"]["status"] == "succeeded"  # stays, for the cache
    assert cancelled.data["parameters"] == {"rate": 0.5, "epochs": 4, "shuffle": False,
                                            "label": "changed", "layers": [1, 2, 3]}
    panel.locator(".cp-run-steps li[data-step='train'] .cp-pill", has_text="cancelled"
                  ).wait_for(timeout=10_000)
    assert not panel.locator("button.cp-stop").is_visible()
    panel.locator(".cp-section.cp-detail").scroll_into_view_if_needed()
    shot(page, "work-cancelled.png")

    # run again with these parameters, from the history: the load step comes from the cache
    release.write_text("go")
    row = panel.locator(f".cp-runs-table tr[data-run='{cancelled.id}']")
    row.locator("button.cp-expand").click()
    details = panel.locator(f".cp-run-details[data-details-of='{cancelled.id}']")
    assert details.locator("dd[data-fact='epochs']").inner_text() == "4"
    assert details.locator("dd[data-fact='layers']").inner_text() == "[1,2,3]"
    details.locator("button.cp-run-again").click()
    panel.locator(".cp-status[data-kind='success']", has_text="succeeded").wait_for(
        timeout=120_000)
    again = runs_of(shared_lab, "params.ipynb")[-1]
    assert again.id != cancelled.id and again.status == "succeeded"
    assert again.data["parameters"] == cancelled.data["parameters"]
    assert again.data["steps"]["load"]["status"] == "cached"
    assert again.metrics == {"final": (0 + 1 + 2 + 3) * 0.5 + 3}
    # the history shows the new run with its metric, its details its parameters
    new_row = panel.locator(f".cp-runs-table tr[data-run='{again.id}']")
    assert new_row.locator("td[data-metric='final']").inner_text() == "6"
    new_row.locator("button.cp-expand").press("Enter")  # keyboard: a button
    assert panel.locator(f".cp-run-details[data-details-of='{again.id}'] dd[data-fact='label']"
                         ).inner_text() == "changed"
    # "Use parameters" fills the form without running
    panel.locator(f".cp-run-details[data-details-of='{again.id}'] button.cp-use-parameters"
                  ).click()
    assert panel.locator("#cp-param-epochs").input_value() == "4"
    assert not panel.locator("#cp-param-shuffle").is_checked()
    panel.locator(".cp-section.cp-history").scroll_into_view_if_needed()
    shot(page, "work-history-parameters.png")


PLOT = ("import matplotlib.pyplot as plt\n"
        "plt.figure(figsize=(4, 2.5)); plt.plot([0, 1, 2], [0, depth, depth * 2]);"
        " plt.title('depth ' + str(depth)); plt.show()\n"
        "plt.figure(figsize=(2.5, 2.5)); plt.bar([0, 1], [1, depth]); plt.show()\n"
        "model = depth * 2")


def test_figures_the_metrics_chart_and_a_failed_step(shared_lab, page):
    cells = [
        ("parameters", "depth = 1\nfail = False"),
        ("step:plot", PLOT),
        ("step:check", "x = model + 1\ny = 2\nif fail:\n    raise ValueError('depth too deep')"),
        ("metrics", "accuracy = 1 - 1 / (model + 1)\nloss = 1 / (x + depth)"),
    ]
    notebook = shared_lab.root / "charts.ipynb"
    nbformat.write(make_nb(*cells), notebook)
    root = shared_lab.root.parent / "runs"
    for depth in (1, 3, 2, 5):  # a history to chart, made as the CLI makes it
        assert api.run(notebook, {"depth": depth}, root=root).status == "succeeded"
    failed = api.run(notebook, {"depth": 4, "fail": True}, root=root)
    assert failed.status == "failed"

    open_fresh(page, shared_lab, "charts.ipynb")
    panel = open_panel(page)
    # the metrics chart: one chart per metric, one point per run with a metric
    chart = panel.locator(".cp-chart[data-metric='accuracy']")
    try:
        chart.wait_for(timeout=30_000)
    finally:
        shot(page, "work-metrics-chart.png")
    assert panel.locator(".cp-chart").count() == 2
    points = chart.locator("circle.cp-chart-point")
    assert points.count() == 4
    titles = points.evaluate_all("ps => ps.map(p => p.querySelector('title').textContent)")
    assert "depth=5" in titles[-1] and "accuracy = 0.9091" in titles[-1], titles
    # a point is a button: Enter opens its run
    points.nth(1).focus()
    page.keyboard.press("Enter")
    panel.locator(".cp-run-parameters", has_text="depth=3").wait_for(timeout=10_000)
    panel.locator(".cp-section.cp-history").scroll_into_view_if_needed()
    shot(page, "work-metrics-chart.png")

    # the figures of the plot step, as thumbnails that open large
    thumbs = panel.locator(".cp-run-steps li[data-step='plot'] .cp-thumb")
    thumbs.first.wait_for(timeout=30_000)
    assert thumbs.count() == 2
    page.wait_for_function("() => [...document.querySelectorAll('#cellpipe-panel .cp-thumb img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=10_000)
    thumbs.first.scroll_into_view_if_needed()
    shot(page, "work-figures.png")
    thumbs.first.press("Enter")
    large = page.locator(".jp-Dialog .cp-figure-large img")
    large.wait_for(timeout=10_000)
    page.wait_for_function("() => { const i = document.querySelector('.jp-Dialog"
                           " .cp-figure-large img'); return i.complete && i.naturalWidth > 200; }",
                           timeout=10_000)
    shot(page, "work-figure-large.png")
    page.locator(".jp-Dialog button", has_text="Close").click()

    # the failed run: its error, where (a click leads there) and the traceback, folded
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)
    panel.locator(f".cp-runs-table tr[data-run='{failed.id}'] button.cp-run-id").click()
    item = panel.locator(".cp-run-steps li[data-step='check']")
    problem = item.locator(".cp-step-problem")
    problem.wait_for(timeout=10_000)
    assert problem.inner_text() == "cell 3, line 4: ValueError: depth too deep"
    traceback = item.locator("details.cp-traceback")
    assert traceback.get_attribute("open") is None
    traceback.locator("summary").click()
    assert "depth too deep" in traceback.locator("pre").inner_text()
    assert "\x1b[" not in traceback.locator("pre").inner_text()
    node = panel.locator(".cp-dag-node[data-step='check']")
    assert node.get_attribute("data-state") == "failed"
    assert "depth too deep" in node.get_attribute("aria-label")
    assert "depth too deep" in node.locator("title").text_content()
    item.scroll_into_view_if_needed()
    shot(page, "work-failed-step.png")
    item.locator("button.cp-goto-cell").click()
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex === 2",
        timeout=10_000)
    assert current(page, "content.activeCell.editor.getCursorPosition().line") == 3

    # the dark theme, at the sidebar's default width: runs, chart and figures stay readable
    panel.locator(f".cp-runs-table tr[data-run='{runs_of(shared_lab, 'charts.ipynb')[-2].id}']"
                  " button.cp-run-id").click()
    panel.locator(".cp-run-steps li[data-step='plot'] .cp-thumb").first.wait_for(timeout=30_000)
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'",
                           timeout=30_000)
    panel.locator(".cp-section.cp-history").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    shot(page, "work-dark-history.png")
    panel.locator(".cp-section.cp-detail").scroll_into_view_if_needed()
    shot(page, "work-dark-details.png")
    width = panel.evaluate("p => p.getBoundingClientRect().width")
    overflow = panel.evaluate("p => p.scrollWidth - p.clientWidth")
    assert overflow <= 1, (width, overflow)  # nothing wider than the sidebar
    table = panel.locator(".cp-table-wrap")
    assert table.evaluate("t => t.scrollWidth - t.clientWidth") <= 1  # no column cut off
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Light'})")
    wait_until(lambda: page.evaluate("() => document.body.dataset.jpThemeLight") == "true",
               30, "the light theme")

    # the README's picture: the runs with their chart, and a run's figures
    widen_sidebar(page, 180)
    for name in ("editor", "parameters", "dag"):
        panel.locator(f".cp-section.cp-{name} > summary").click()
    panel.locator(".cp-section.cp-history").evaluate("s => s.scrollIntoView()")
    page.wait_for_timeout(500)
    box = panel.bounding_box()
    page.screenshot(path=str(artifacts_dir() / "panel-readme.png"),
                    clip={"x": 0, "y": 0, "width": box["x"] + box["width"] + 420,
                          "height": 1000})


def test_a_background_run_in_the_notebook_has_a_stop_button(shared_lab, page):
    """`%cellpipe run --background`: the view's Stop button (ipywidgets) ends the run while
    the kernel is free; the run is cancelled, the step that finished stays."""
    cells = [
        ("skip", "%load_ext cellpipe"),
        ("step:first", "xs = [1, 2, 3]"),
        ("step:hold", "import time\nfor _ in range(3000):\n    time.sleep(0.1)\ntotal = sum(xs)"),
        ("skip", "%cellpipe run --background"),
    ]
    nbformat.write(make_nb(*cells), shared_lab.root / "background.ipynb")
    open_fresh(page, shared_lab, "background.ipynb")
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
        "?.status === 'idle'", timeout=90_000)
    # run only the magic cells: the steps run in the pipeline, not in the kernel
    for index in (0, 3):
        page.evaluate(f"() => {{ const nb = window.jupyterapp.shell.currentWidget.content;"
                      f" nb.activeCellIndex = {index}; }}")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
    stop = page.locator(".jp-OutputArea-output button", has_text="Stop")
    stop.wait_for(timeout=90_000)
    page.locator(".jp-OutputArea-output", has_text="running").first.wait_for(timeout=60_000)
    wait_until(lambda: any(run.data["steps"].get("hold", {}).get("status") == "running"
                           for run in runs_of(shared_lab, "background.ipynb")), 60,
               "the hold step running")
    stop.scroll_into_view_if_needed()
    shot(page, "work-background-stop.png")
    stop.click()
    wait_until(lambda: [run.status for run in runs_of(shared_lab, "background.ipynb")]
               == ["cancelled"], 60, "the run cancelled")
    (run,) = runs_of(shared_lab, "background.ipynb")
    assert run.data["steps"]["first"]["status"] == "succeeded"
    page.locator(".jp-OutputArea-output", has_text="cancelled").first.wait_for(timeout=30_000)
    assert not stop.is_visible()  # ended: nothing to stop
    shot(page, "work-background-stopped.png")
