"""The Tune section of the side panel, in a real browser: a small tuning study started from
the form (a bad range refused next to it first), its trials arriving in the table and the
chart of the objective over the trials, the best trial highlighted, its run opened in Run
details. The study is a real Optuna study; each trial is a real local run.
"""

from __future__ import annotations

import pytest

from cellpipe import api
from tests.conftest import write_nb
from tests.ui.test_panel import open_notebook, open_panel, widen_sidebar
from tests.ui.test_panel_work import shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("optuna", reason="optuna is installed by `.[test]`")

# a quadratic with its minimum at x = 2; no libraries, so a trial takes a second or so
QUADRATIC = (
    ("parameters", "x = 0.0\nlabel = 'a'"),
    ("step:prepare", "offset = 2.0"),
    ("step:evaluate", "value = (x - offset) ** 2"),
    ("metrics", "loss = value\nsize = len(label)"),
)


def test_start_a_small_tuning_study(lab, page):
    write_nb(lab.root, *QUADRATIC, name="quadratic.ipynb")
    open_notebook(page, lab, "quadratic.ipynb")
    panel = open_panel(page)
    widen_sidebar(page, 320)
    tune = panel.locator("details.cp-tune")
    tune.locator("summary").click()
    form = tune.locator("form.cp-tune-form")
    form.wait_for(timeout=30_000)

    # the objective is one of the notebook's metrics; each parameter has a space field
    # whose placeholder says the form for its type
    objective = form.get_by_label("objective: the metric to optimize")
    assert objective.locator("option").all_inner_texts() == ["loss", "size"]
    x_space = form.get_by_label("search space of x (float)", exact=False)
    assert x_space.get_attribute("placeholder") == "uniform(0, 1)"
    label_space = form.get_by_label("search space of label (str)", exact=False)
    assert label_space.get_attribute("placeholder") == "choice(a, b)"

    # a range the server refuses: its message next to the form, nothing started
    objective.select_option("loss")
    form.get_by_label("direction", exact=False).select_option("minimize")
    x_space.fill("uniform(0)")
    form.get_by_label("how many trials", exact=False).fill("4")
    form.get_by_label("sampler", exact=False).select_option("random")
    form.get_by_role("button", name="Start the tuning study").click()
    error = tune.locator(".cp-tune-error")
    error.wait_for(timeout=30_000)
    assert "x" in error.inner_text() and "uniform" in error.inner_text(), error.inner_text()
    assert not api.list_runs(lab.root.parent / "runs")

    # a good one, started from the keyboard (Enter in the field submits the form); the
    # page notes how many trials the table shows each time it changes
    page.evaluate("""() => {
      window.cpTrialCounts = [];
      const box = document.querySelector('.cp-tune .cp-tune-results');
      new MutationObserver(() => window.cpTrialCounts.push(
        box.querySelectorAll("tr[data-state='COMPLETE']").length)).observe(
        box, {childList: true, subtree: true});
    }""")
    x_space.fill("uniform(0, 4)")
    x_space.press("Enter")
    rows = tune.locator("table.cp-trials-table tbody tr")
    info = tune.locator(".cp-study-info[data-live='false']")
    info.wait_for(timeout=120_000)
    # the trials arrived while the study ran, not all at its end
    counts = page.evaluate("() => window.cpTrialCounts")
    assert {1, 2, 3} & set(counts), counts
    assert error.count() == 0
    assert rows.count() == 4
    assert tune.locator("tr[data-state='COMPLETE']").count() == 4
    values = [float(v) for v in tune.locator("td.cp-metric").all_inner_texts()]
    # the chart: one point per trial, the best one marked
    points = tune.locator(".cp-tune-chart circle.cp-chart-point")
    assert points.count() == 4
    best_row = tune.locator("tr.cp-best")
    assert best_row.count() == 1
    best_value = float(best_row.locator("td.cp-metric").inner_text())
    assert best_value == min(values)
    best_point = tune.locator(".cp-tune-chart circle.cp-chart-point.cp-selected")
    assert best_point.count() == 1
    tune.scroll_into_view_if_needed()
    path = shot(page, "tune-study.png")
    assert path.stat().st_size > 10_000

    # the study is the one on disk; its best trial's run opens in Run details
    [summary] = api.list_studies(lab.root.parent / "runs")
    study = api.open_study(summary.name, lab.root.parent / "runs")
    assert study.best_value is not None
    assert f"{study.best_value:.4g}" in best_row.inner_text() or abs(
        study.best_value - best_value) < 1e-3 * max(1.0, abs(best_value))
    best_run = study.best_trial.run_id if study.best_trial else None
    assert best_point.get_attribute("data-run") == best_run
    open_best = tune.get_by_role("button", name="open the run of the best trial", exact=False)
    open_best.focus()
    page.keyboard.press("Enter")
    detail = panel.locator("details.cp-detail .cp-cell-info", has_text=f"Run {best_run}")
    detail.wait_for(timeout=20_000)
    assert "succeeded" in detail.inner_text()
    # the trials' runs are in the Runs list too
    assert panel.locator(".cp-runs-box tr[data-run]").count() == 4
    detail.scroll_into_view_if_needed()
    shot(page, "tune-best-run.png")
