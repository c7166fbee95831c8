"""Typing in the panel's forms while the panel keeps changing: a run is followed (its
steps recolor on every poll), the notebook is analyzed again, its metadata changes and it
is saved; the field the user is in keeps its focus, caret and typed text throughout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.ui.conftest import artifacts_dir
from tests.ui.test_panel import open_notebook, open_panel, widen_sidebar

HOLD = "import os, time\nwhile not os.path.exists({release!r}):\n    time.sleep(0.1)\n"


def holding_notebook(path: Path, releases: tuple[Path, Path]) -> None:
    """load → hold1 → hold2, each hold step running until the test creates its file."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("data = [1, 2, 3]", metadata={"tags": ["step:load"]}),
        nbformat.v4.new_code_cell(HOLD.format(release=str(releases[0])) + "a = sum(data)",
                                  metadata={"tags": ["step:hold1"]}),
        nbformat.v4.new_code_cell(HOLD.format(release=str(releases[1])) + "b = a + 1",
                                  metadata={"tags": ["step:hold2"]}),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def focused_field(page: Any) -> dict[str, Any]:
    """The element that has the focus: its id, value, caret, and whether it is the one
    marked by mark_focused (the same DOM node, not a rebuilt copy)."""
    return page.evaluate("() => { const e = document.activeElement; return {id: e.id,"
                         " value: e.value, caret: e.selectionStart, marked: !!e.__cpMarked}; }")


def mark_focused(page: Any) -> None:
    page.evaluate("() => { document.activeElement.__cpMarked = true; }")


def count_step_renders(page: Any) -> None:
    """Count, from now on, the times the steps list is rendered again (window.__cpRenders)."""
    page.evaluate("() => { window.__cpRenders = 0; new MutationObserver(() =>"
                  " window.__cpRenders++).observe(document.querySelector("
                  "'#cellpipe-panel .cp-steps-box'), {childList: true}); }")


def analyzed(panel: Any) -> int:
    return int(panel.get_attribute("data-analyzed") or 0)


def refresh_and_wait(page: Any, panel: Any, command: str = "cellpipe:refresh") -> None:
    """Run a command that re-analyzes the notebook; wait until that analysis has settled."""
    before = analyzed(panel)
    page.evaluate(f"() => window.jupyterapp.commands.execute({command!r})")
    page.wait_for_function(
        f"() => Number(document.querySelector('#cellpipe-panel').dataset.analyzed) > {before}",
        timeout=30_000)


def assert_not_blank(path: Path, box: dict[str, float]) -> None:
    """The screenshot shows something in the panel's box: not one flat color."""
    image_module = pytest.importorskip("PIL.Image", reason="Pillow comes with matplotlib")
    with image_module.open(path) as image:
        panel = image.convert("RGB").crop((int(box["x"]), int(box["y"]),
                                           int(box["x"] + box["width"]),
                                           int(box["y"] + box["height"])))
        colors = panel.getcolors(maxcolors=1 << 16) or []
        low, high = panel.convert("L").getextrema()
    assert len(colors) > 20 and high - low > 100, (len(colors), low, high)


@pytest.mark.browser
@pytest.mark.slow
def test_typing_in_a_form_survives_polls_refreshes_and_saves(lab, page, tmp_path):
    releases = (tmp_path / "release-hold1", tmp_path / "release-hold2")
    holding_notebook(lab.root / "typing.ipynb", releases)
    open_notebook(page, lab, "typing.ipynb")
    panel = open_panel(page)
    widen_sidebar(page)
    panel.locator(".cp-step[data-step='hold2']").wait_for(timeout=30_000)
    panel.locator(".cp-section.cp-settings > summary").click()
    namespace = panel.locator("#cp-setting-namespace")
    namespace.wait_for(timeout=10_000)

    panel.locator("button.cp-run").click()
    panel.locator(".cp-step[data-step='hold1'][data-state='running']").wait_for(timeout=120_000)

    # the settings form: type while the run moves on to hold2 (a poll recolors the steps)
    namespace.click()
    mark_focused(page)
    count_step_renders(page)
    page.keyboard.type("team-", delay=40)
    releases[0].touch()
    panel.locator(".cp-step[data-step='hold2'][data-state='running']").wait_for(timeout=60_000)
    assert page.evaluate("() => window.__cpRenders") >= 1  # re-rendered while typing
    page.keyboard.type("ab", delay=40)
    page.keyboard.press("Home")
    page.keyboard.type("x")
    # analyzed again, and the metadata changed under the form
    refresh_and_wait(page, panel)
    page.evaluate("() => { const m = window.jupyterapp.shell.currentWidget.model;"
                  " m.setMetadata('cellpipe', {...(m.getMetadata('cellpipe') || {}),"
                  " registry: 'registry.local:5000/team'}); }")
    assert focused_field(page) == {"id": "cp-setting-namespace", "value": "xteam-ab",
                                   "caret": 1, "marked": True}
    # a field the user is not in shows the new metadata
    assert panel.locator("#cp-setting-registry").input_value() == "registry.local:5000/team"
    assert panel.locator(".cp-step[data-step='hold2']").get_attribute("data-state") == "running"

    # the active cell's form: type while the run ends, the runs list loads and it is saved
    after = panel.locator("#cp-field-after")
    after.scroll_into_view_if_needed()
    after.click()
    mark_focused(page)
    count_step_renders(page)
    page.keyboard.type("hold1 lo", delay=40)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    releases[1].touch()
    panel.locator(".cp-status[data-kind='success']", has_text="succeeded").wait_for(
        timeout=120_000)
    panel.locator(".cp-runs-table tbody tr").first.wait_for(timeout=30_000)
    assert page.evaluate("() => window.__cpRenders") >= 1
    refresh_and_wait(page, panel, "docmanager:save")  # a save analyzes the notebook again
    page.keyboard.type("ad")
    assert focused_field(page) == {"id": "cp-field-after", "value": "hold1 adlo",
                                   "caret": 8, "marked": True}
    assert panel.locator(".cp-step[data-step='hold2']").get_attribute("data-state") == (
        "succeeded")
    # the settings form kept what was typed there too (not saved: still the user's)
    assert namespace.input_value() == "xteam-ab"

    shot = artifacts_dir() / "panel-typing.png"
    page.screenshot(path=str(shot))
    box = panel.bounding_box()
    assert box is not None
    assert_not_blank(shot, box)
