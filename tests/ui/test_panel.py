"""The cellpipe side panel in JupyterLab, in a real browser: steps and DAG of the tagged
sample, tagging a cell through the panel's editor (saved to disk), a run followed to the
end with its metrics in the runs table, diagnostics that lead to their cell, and the
engines and targets a plugin adds to the Target setting."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from cellpipe import api
from tests.conftest import ROOT, SAMPLES
from tests.plugins.test_plugins import install_example
from tests.ui.conftest import artifacts_dir, start_lab

PANEL = "#cellpipe-panel"
TAB = ".jp-SideBar .lm-TabBar-tab[data-id='cellpipe-panel']"


def open_notebook(page: Any, lab: Any, name: str) -> None:
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.context.isReady",
                           timeout=60_000)
    # JupyterLab asks once whether to fetch its news; answer so the toast hides nothing
    news = page.locator(".jp-toast-button", has_text="No")
    try:
        news.wait_for(timeout=3_000)
        news.click()
    except Exception:  # no toast this time
        pass


def open_panel(page: Any) -> Any:
    tab = page.locator(TAB)
    tab.wait_for(timeout=30_000)
    assert tab.get_attribute("title") or tab.inner_text() or tab.get_attribute("aria-label")
    if tab.get_attribute("aria-selected") != "true":
        tab.click()
    panel = page.locator(PANEL)
    panel.wait_for(state="visible", timeout=10_000)
    return panel


def widen_sidebar(page: Any, pixels: int = 260) -> None:
    """Drag the handle between the left sidebar and the notebook to the right."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + pixels, box["y"] + 200, steps=8)
    page.mouse.up()


def saved_tags(path: Path, index: int) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return list(nb.cells[index].metadata.get("tags", []))


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.browser
@pytest.mark.slow
def test_the_panel_shows_tags_and_runs_the_tagged_sample(lab, page):
    notebook = lab.root / "tabular.ipynb"
    shutil.copy(SAMPLES / "tabular_tags.ipynb", notebook)
    pipeline = api.lint(notebook).pipeline
    steps = [step.name for step in pipeline.steps]
    forest = next(step for step in pipeline.steps if step.name == "train-forest")
    forest_cell = forest.cells[0][0]

    open_notebook(page, lab, "tabular.ipynb")
    panel = open_panel(page)
    widen_sidebar(page)

    # the steps in notebook order, and one DAG node per step with the run-state class
    panel.locator(".cp-step").first.wait_for(timeout=30_000)
    listed = panel.locator(".cp-step").evaluate_all("nodes => nodes.map(n => n.dataset.step)")
    assert listed == steps
    nodes = panel.locator("svg.cp-dag-svg .cp-dag-node")
    assert sorted(nodes.evaluate_all("ns => ns.map(n => n.dataset.step)")) == sorted(steps)
    # edges carry the variables: the load → clean edge is labeled with what clean reads
    edge = panel.locator(".cp-dag-edge[data-from='load'][data-to='clean']")
    assert "raw" in edge.locator("text.cp-dag-edge-label").text_content()
    # the annotated cells have their badge
    badges = page.locator(".jp-Cell .cp-cell-badge")
    assert "load" in badges.all_inner_texts()
    page.screenshot(path=str(artifacts_dir() / "panel-dag.png"))

    # select the train-forest cell through the panel and tag it with retries:2
    panel.locator(".cp-step[data-step='train-forest'] .cp-step-name").click()
    page.wait_for_function(
        f"() => window.jupyterapp.shell.currentWidget.content.activeCellIndex === {forest_cell}")
    info = panel.locator(".cp-editor-form .cp-cell-info")
    assert f"Cell {forest_cell + 1}" in info.inner_text()
    assert panel.locator("#cp-field-step").input_value() == "train-forest"
    # a bad value is refused with a message next to the field
    panel.locator("#cp-field-retries").fill("two")
    panel.locator("#cp-field-retries").press("Enter")
    assert "whole number" in panel.locator(".cp-problem").inner_text()
    panel.locator("#cp-field-retries").fill("2")
    # models: variable names, one model: tag each
    panel.locator("#cp-field-model").fill("forest, 2nd")
    panel.locator("#cp-field-model").press("Enter")
    assert "not variable names: 2nd" in panel.locator(".cp-problem").inner_text()
    panel.locator("#cp-field-model").fill("forest")
    # declared inputs: comma-separated in the field, one inputs: tag per path (no commas)
    panel.locator("#cp-field-inputs").fill("data/*.csv, extra.txt")
    panel.locator("button.cp-apply").click()
    page.wait_for_function(
        f"() => window.jupyterapp.shell.currentWidget.content.widgets[{forest_cell}]"
        ".model.getMetadata('tags').includes('retries:2')")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    wait_until(lambda: "retries:2" in saved_tags(notebook, forest_cell), 30, "the saved tag")
    assert saved_tags(notebook, forest_cell) == ["step:train-forest", "retries:2",
                                                 "inputs:data/*.csv", "inputs:extra.txt",
                                                 "model:forest"]
    # the save re-analyzes: the step now lists its setting
    panel.locator(".cp-step[data-step='train-forest'] .cp-step-settings",
                  has_text="retries:2").wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts_dir() / "panel-tagged.png"))

    # Run: every step ends succeeded in the list and the DAG, the runs table has the metrics
    panel.locator("button.cp-run").click()
    try:
        page.wait_for_function(
            "steps => { const p = document.querySelector('#cellpipe-panel');"
            " return steps.every(s => p.querySelector("
            "`.cp-step[data-step=\"${s}\"][data-state=\"succeeded\"]`)"
            " && p.querySelector(`.cp-dag-node[data-step=\"${s}\"][data-state=\"succeeded\"]`));"
            " }", arg=steps, timeout=300_000)
        row = panel.locator(".cp-runs-table tbody tr").first
        row.locator("td.cp-metric").wait_for(timeout=30_000)  # the first metric's column
    finally:
        page.screenshot(path=str(artifacts_dir() / "panel-run.png"))
    (run,) = api.list_runs(lab.root.parent / "runs")
    assert run.status == "succeeded"
    assert row.get_attribute("data-run") == run.id
    # one metric has a column; the details row has them all
    row.locator("button.cp-expand").click()
    details = panel.locator(f".cp-run-details[data-details-of='{run.id}']")
    for name, value in run.metrics.items():
        shown = details.locator(f"dd[data-fact='{name}']").inner_text()
        assert float(shown) == pytest.approx(value, rel=1e-3)
    # the run's details: a step's log
    panel.locator(".cp-run-steps li[data-step='evaluate'] button", has_text="Log").click()
    panel.locator("pre.cp-log").wait_for(timeout=10_000)
    assert "best model" in panel.locator("pre.cp-log").inner_text()
    # and its report, from the report route, in a sandboxed iframe (rendered after the step)
    report_button = panel.locator(".cp-run-steps li[data-step='evaluate'] button",
                                  has_text="Report")
    shown = panel.locator(".cp-step-output iframe.cp-report, .cp-step-output .cp-error")
    deadline = time.monotonic() + 90
    while True:  # the report is rendered shortly after its step ended
        report_button.click()
        shown.first.wait_for(timeout=10_000)
        if panel.locator("iframe.cp-report").count():
            break
        assert time.monotonic() < deadline, shown.first.inner_text()
        time.sleep(1)
    frame = panel.locator("iframe.cp-report")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    body = page.frame_locator("#cellpipe-panel iframe.cp-report").locator("body")
    body.get_by_text("best model").first.wait_for(timeout=10_000)
    frame.scroll_into_view_if_needed()
    # headless Chromium paints a sandboxed frame that was off-screen when it loaded only
    # after a layout change; a real browser repaints it when it scrolls into view
    page.set_viewport_size({"width": 1400, "height": 1001})
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir() / "panel-run-details.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})

    # Compile shows the spec in a dialog; Submit shows the server's 403 (submitting is off)
    panel.locator("button.cp-compile").click()
    dialog = page.locator(".jp-Dialog pre.cp-compiled")
    dialog.wait_for(timeout=30_000)
    assert json.loads(dialog.inner_text())["steps"][5]["name"] == "train-forest"
    page.locator(".jp-Dialog button", has_text="Close").click()
    panel.locator("button.cp-submit").click()
    panel.locator(".cp-status[data-kind='error']", has_text="submitting is off").wait_for(
        timeout=30_000)

    # the dark theme: the panel follows JupyterLab's theme variables
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Dark'})")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'",
                           timeout=30_000)
    panel.locator(".cp-section.cp-dag").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir() / "panel-dark.png"))


@pytest.mark.browser
@pytest.mark.slow
def test_a_diagnostic_in_the_panel_leads_to_its_cell(lab, page):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["step:first"]})]
    nb.cells += [nbformat.v4.new_code_cell(f"y{i} = x + {i}") for i in range(20)]
    nb.cells.append(nbformat.v4.new_code_cell("a = 1\nz = undefined_name + 1",
                                              metadata={"tags": ["step:late"]}))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, lab.root / "broken.ipynb")
    expected = next(d for d in api.lint(lab.root / "broken.ipynb").diagnostics
                    if d.variable == "undefined_name")

    open_notebook(page, lab, "broken.ipynb")
    panel = open_panel(page)
    diagnostic = panel.locator(".cp-diagnostic", has_text="undefined_name")
    diagnostic.wait_for(timeout=30_000)
    assert expected.code in diagnostic.inner_text()
    assert panel.locator(".cp-summary").get_attribute("data-ok") == "false"
    diagnostic.locator("button").click()
    page.wait_for_function(
        f"() => window.jupyterapp.shell.currentWidget.content.activeCellIndex === {expected.cell}")
    cursor = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.activeCell.editor"
        ".getCursorPosition().line")
    assert cursor == expected.line - 1
    page.screenshot(path=str(artifacts_dir() / "panel-diagnostic.png"))
    # Run refuses the notebook, saying why
    panel.locator("button.cp-run").click()
    status = panel.locator(".cp-status[data-kind='error']")
    status.wait_for(timeout=30_000)
    assert "undefined_name" in status.inner_text() or "lint" in status.inner_text().lower(), (
        json.dumps(status.inner_text()))


@pytest.mark.browser
@pytest.mark.slow
def test_the_panel_is_usable_from_the_keyboard(lab, page):
    """Tab reaches the buttons in order; a focused DAG node opens its step with Enter."""
    shutil.copy(SAMPLES / "tabular_tags.ipynb", lab.root / "keys.ipynb")
    open_notebook(page, lab, "keys.ipynb")
    panel = open_panel(page)
    panel.locator("svg.cp-dag-svg .cp-dag-node[data-step='clean']").wait_for(timeout=30_000)
    panel.locator("button.cp-run").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent.trim()")
    assert focused == "Compile"
    node = panel.locator(".cp-dag-node[data-step='clean']")
    node.focus()
    assert node.get_attribute("aria-label").startswith("step clean")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex === 9",
        timeout=10_000)  # the first cell of step 'clean' (cell 10)
    page.screenshot(path=str(artifacts_dir() / "panel-keyboard.png"))


@pytest.mark.browser
@pytest.mark.slow
def test_a_failed_step_shows_its_error_message_and_where(lab, page):
    """A failed step's error is an object (message, cell, line, traceback, …): the run
    details show its one-line message, not "[object Object]"."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1\ny = 2\nraise ValueError('boom here')",
                                          metadata={"tags": ["step:boom"]}),
                nbformat.v4.new_code_cell("z = x + 1", metadata={"tags": ["step:after"]})]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, lab.root / "failing.ipynb")

    open_notebook(page, lab, "failing.ipynb")
    panel = open_panel(page)
    panel.locator(".cp-step[data-step='boom']").wait_for(timeout=30_000)
    panel.locator("button.cp-run").click()

    problem = panel.locator(".cp-run-steps li[data-step='boom'] .cp-step-problem")
    problem.wait_for(timeout=120_000)
    assert problem.inner_text() == "cell 1, line 3: ValueError: boom here"
    skipped = panel.locator(".cp-run-steps li[data-step='after'] .cp-step-problem")
    assert skipped.inner_text() == "upstream boom did not succeed"
    problem.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir() / "panel-failed-step.png"))


def target_choices(panel: Any) -> list[tuple[str, list[str]]]:
    """The Target setting's options: (group label, values), ungrouped ones under ""."""
    groups = panel.locator("#cp-setting-target").evaluate(
        "select => [...select.children].map(c => c.tagName === 'OPTGROUP'"
        " ? [c.label, [...c.children].map(o => o.value)] : ['', [c.value]])")
    return [(label, values) for label, values in groups]


def posted(page: Any, route: str, click: Any) -> Any:
    """The JSON body of the POST to ``/cellpipe/<route>`` that ``click()`` makes."""
    with page.expect_request(lambda r: r.method == "POST"
                             and r.url.split("?")[0].endswith(f"/cellpipe/{route}")) as sent:
        click()
    return sent.value.post_data_json


@pytest.mark.browser
@pytest.mark.slow
def test_the_target_setting_lists_the_built_in_and_the_plugin_engines_and_targets(
        tmp_path, page):
    """The Target setting comes from GET /cellpipe/plugins: a plugin engine runs the
    pipeline, a plugin target is what Compile asks for; without the route, the built-ins."""
    site = install_example(tmp_path / "site")  # target "folder", engine "named-local"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("data = [1, 2, 3]", metadata={"tags": ["step:load"]}),
                nbformat.v4.new_code_cell("total = sum(data)", metadata={"tags": ["step:total"]})]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    # the server imports the plugins from the repository (tests.plugins.example_plugins)
    with start_lab(tmp_path, python_path=[site, ROOT]) as lab:
        nbformat.write(nb, lab.root / "plugins.ipynb")
        open_notebook(page, lab, "plugins.ipynb")
        panel = open_panel(page)
        widen_sidebar(page)
        panel.locator(".cp-step[data-step='total']").wait_for(timeout=30_000)
        panel.locator(".cp-section.cp-settings > summary").click()
        target = panel.locator("#cp-setting-target")
        target.locator("option[value='folder']").wait_for(state="attached", timeout=30_000)

        assert target_choices(panel) == [
            ("engines (Run)", ["local", "docker", "named-local"]),
            ("cluster targets (Compile, Submit)", ["argo", "kfp", "katib", "folder"])]
        assert target.input_value() == "local"
        assert panel.locator("label[for='cp-setting-host']").inner_text() == "Host (kfp, folder)"
        # a closed <select> shows one value: open it as a list box for the screenshot (focused,
        # as a user's would be: the panel does not re-render a form the user is in)
        target.focus()
        target.evaluate("select => { select.size = select.options.length + 2;"
                        " select.style.height = 'auto'; }")
        panel.locator(".cp-section.cp-settings").scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir() / "panel-plugin-targets.png"))
        target.evaluate("select => { select.size = 0; select.style.height = ''; }")

        # a plugin target is compiled for by its name; no images given: every step runs
        # one shared image (no build), which the plugin's plan names for each step
        target.focus()
        target.select_option("folder")
        panel.locator("button.cp-save-settings").click()
        body = posted(page, "compile", lambda: panel.locator("button.cp-compile").click())
        assert body == {"path": "plugins.ipynb", "target": "folder"}
        panel.locator(".cp-status[data-kind='success']",
                      has_text="Compiled for folder").wait_for(timeout=30_000)
        dialog = page.locator(".jp-Dialog")
        plan = json.loads(dialog.locator("pre.cp-compiled").inner_text())
        assert len({step["image"] for step in plan["steps"]}) == 1
        dialog.get_by_role("button", name="Close").click()
        dialog.wait_for(state="detached", timeout=10_000)

        # a plugin engine runs the pipeline from the server, under its name
        panel.locator("#cp-setting-target").focus()
        panel.locator("#cp-setting-target").select_option("named-local")
        panel.locator("button.cp-save-settings").click()
        body = posted(page, "runs", lambda: panel.locator("button.cp-run").click())
        assert body == {"path": "plugins.ipynb", "engine": "named-local"}
        panel.locator(".cp-status[data-kind='success']", has_text="succeeded").wait_for(
            timeout=120_000)
        (run,) = api.list_runs(tmp_path / "runs")
        assert (run.status, run.data["engine"]) == ("succeeded", "named-local")

        # a server without the route (older than the plugins): the built-in list, and the
        # notebook's setting kept, marked as not offered here
        wait_until(lambda: nbformat.read(lab.root / "plugins.ipynb", as_version=4)
                   .metadata.get("cellpipe", {}).get("target") == "named-local", 30,
                   "the saved setting")
        page.route(lambda url: "/cellpipe/plugins" in url,
                   lambda route: route.fulfill(status=404, content_type="application/json",
                                               body=json.dumps({"message": "Not Found"})))
        open_notebook(page, lab, "plugins.ipynb")
        panel = open_panel(page)
        panel.locator(".cp-step[data-step='total']").wait_for(timeout=30_000)
        if panel.locator(".cp-section.cp-settings").get_attribute("open") is None:
            panel.locator(".cp-section.cp-settings > summary").click()
        panel.locator("#cp-setting-target option[value='named-local']").wait_for(
            state="attached", timeout=30_000)
        assert target_choices(panel) == [
            ("engines (Run)", ["local", "docker"]),
            ("cluster targets (Compile, Submit)", ["argo", "kfp"]),
            ("", ["named-local"])]
        assert panel.locator("#cp-setting-target").input_value() == "named-local"
        assert panel.locator("label[for='cp-setting-host']").inner_text() == "KFP host"
