"""``cellpipe.compare``: real runs of a small notebook (cache on, so some steps are reused
and others rerun) compared: parameters that differ, metrics side by side with their
change, which steps ran and why, the metric-over-runs PNG, and the mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cellpipe
from cellpipe import api
from cellpipe.errors import CellpipeError
from tests.conftest import write_nb

TRAIN = (
    ("parameters", "epochs = 3\nlr = 0.5\nname = 'model'"),
    ("step:prepare", "data = list(range(10))\nprint('prepared', len(data))"),
    ("step:train", "loss = 1 / (epochs * lr)\nprint('trained')"),
    ("step:report", "rows = len(data)"),
    ("metrics", "final_loss = loss\naccuracy = 1 - loss / 10"),
)
# matplotlib's first two line colours (tab:blue, tab:orange), as RGB in 0..1
BLUE, ORANGE = (0x1F / 255, 0x77 / 255, 0xB4 / 255), (0xFF / 255, 0x7F / 255, 0x0E / 255)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Runs a (lr=0.5), b (lr=0.25), c (lr=0.25, epochs=5), a failed one (epochs=0) and a
    run of another notebook, all in one runs directory."""
    folder = tmp_path_factory.mktemp("compare")
    root = folder / ".cellpipe"
    path = write_nb(folder, *TRAIN, name="train.ipynb")
    runs = {
        "a": api.run(path, {"lr": 0.5}, root=root),
        "b": api.run(path, {"lr": 0.25}, root=root),
        "c": api.run(path, {"lr": 0.25, "epochs": 5}, root=root),
        "failed": api.run(path, {"epochs": 0}, root=root),
    }
    other = write_nb(folder, ("parameters", "lr = 0.1\nseed = 1"),
                     ("step:prepare", "data = [seed] * 3"),
                     ("step:fit", "final_loss = lr * len(data)"),
                     ("metrics", "final_loss"), name="other.ipynb")
    runs["other"] = api.run(other, root=root)
    assert [r.status for r in runs.values()] == ["succeeded"] * 3 + ["failed", "succeeded"]
    runs["root"] = root
    return runs


def test_parameters_that_differ_and_those_that_are_the_same(history):
    a, b, c = history["a"], history["b"], history["c"]
    comparison = cellpipe.compare([a.id, b.id, c.id], root=history["root"])

    assert comparison.ids == [a.id, b.id, c.id]
    assert comparison.parameters == {"epochs": [3, 3, 5], "lr": [0.5, 0.25, 0.25]}
    assert comparison.same_parameters == {"name": "model"}
    assert comparison.notes == ()
    assert repr(comparison) == (f"<Comparison of 3 runs ({a.id}, {b.id}, {c.id}): 2 "
                                "parameter(s) differ, 2 metric(s), 3 step(s)>")
    # two runs that share epochs: only lr differs
    assert cellpipe.compare([a, b]).parameters == {"lr": [0.5, 0.25]}
    assert cellpipe.compare([a, b]).same_parameters == {"epochs": 3, "name": "model"}


def test_metrics_side_by_side_with_the_change_from_the_first_run(history):
    a, b, c = history["a"], history["b"], history["c"]
    comparison = cellpipe.compare([a, b, c])

    assert comparison.metrics == {"final_loss": [1 / 1.5, 1 / 0.75, 1 / 1.25],
                                  "accuracy": [1 - 1 / 15, 1 - 1 / 7.5, 1 - 1 / 12.5]}
    assert comparison.change("final_loss") == pytest.approx([None, 2 / 3, 0.8 - 2 / 3])
    assert comparison.change("final_loss")[0] is None
    # the order given is the order compared: the change is from whichever run comes first
    reversed_order = cellpipe.compare([c, a])
    assert reversed_order.ids == [c.id, a.id]
    assert reversed_order.change("final_loss") == pytest.approx([None, 2 / 3 - 0.8])
    headers, rows = comparison.tables()["metrics"]
    assert headers == ["metric", a.id, b.id, c.id]
    assert rows[0] == ["final_loss", "0.6667", "1.333 (+0.6667, +100.0%)",
                       "0.8 (+0.1333, +20.0%)"]


def test_which_steps_reran_and_why(history):
    a, b, c = history["a"], history["b"], history["c"]
    steps = cellpipe.compare([a, b, c]).steps

    assert list(steps) == ["prepare", "train", "report"]
    prepare_a, prepare_b, prepare_c = steps["prepare"]
    assert prepare_a["ran"] and not prepare_a["cached"]
    assert prepare_a["reason"] == "first run of this step"
    # prepare reads no parameter: b and c reuse a's results
    for state in (prepare_b, prepare_c):
        assert state["cached"] and not state["ran"] and state["status"] == "cached"
        assert state["cached_from"] == a.id
        assert state["reason"] == f"unchanged: reused results of run {a.id}"
        assert state["changed_outputs"] == []
    train_a, train_b, train_c = steps["train"]
    assert [s["ran"] for s in (train_a, train_b, train_c)] == [True, True, True]
    assert train_b["reason"] == "parameter lr changed"
    assert train_c["reason"] == "parameter epochs changed"  # as recorded: vs b, its last run
    assert train_b["changed_outputs"] == ["loss"] and train_a["changed_outputs"] is None
    assert steps["report"][1]["reason"] == "input loss changed"
    assert {"final_loss", "accuracy"} <= set(steps["report"][1]["changed_outputs"])
    _, rows = cellpipe.compare([a, b]).tables()["steps"]
    assert rows[0] == ["prepare", "ran: first run of this step",
                       f"cached from {a.id} · same outputs"]
    assert rows[1] == ["train", "ran: first run of this step",
                       "ran: parameter lr changed · changed: loss"]


def test_a_failed_run_says_which_step_failed_and_what_did_not_run(history):
    a, failed = history["a"], history["failed"]
    comparison = cellpipe.compare([a, failed])

    train, report = comparison.steps["train"][1], comparison.steps["report"][1]
    assert train["status"] == "failed" and train["ran"]
    assert "ZeroDivisionError" in train["error"]
    assert report["status"] == "skipped" and not report["ran"]
    assert report["reason"] == "upstream train did not succeed"
    assert comparison.metrics["final_loss"] == [pytest.approx(2 / 3), None]
    assert comparison.change("final_loss") == [None, None]
    assert f"run {failed.id} failed: some of its metrics or steps may be missing" \
        in comparison.notes
    assert comparison.labels() == [f"{a.id}\nepochs=3", f"{failed.id} (failed)\nepochs=0"]


def test_runs_of_different_notebooks_are_compared_by_name_with_a_note(history):
    a, other = history["a"], history["other"]
    comparison = cellpipe.compare([a, other])

    assert comparison.notes[0].startswith("the runs are of different notebooks (")
    assert "train.ipynb" in comparison.notes[0] and "other.ipynb" in comparison.notes[0]
    assert comparison.parameters == {"epochs": [3, None], "lr": [0.5, 0.1],
                                     "name": ["model", None], "seed": [None, 1]}
    assert f"parameter 'seed' is not in run {a.id}" in comparison.notes
    assert comparison.metrics["final_loss"] == [pytest.approx(2 / 3), pytest.approx(0.3)]
    assert comparison.metrics["accuracy"][1] is None
    assert list(comparison.steps) == ["prepare", "train", "report", "fit"]
    assert comparison.steps["train"][1] is None and comparison.steps["fit"][0] is None
    assert comparison.tables()["steps"][1][3][1] == "— (not in this run)"


def test_to_dict_is_json_with_every_section(history):
    a, b = history["a"], history["b"]
    data = json.loads(json.dumps(cellpipe.compare([a, b]).to_dict()))

    assert set(data) == {"runs", "notes", "parameters", "metrics", "steps"}
    assert [r["id"] for r in data["runs"]] == [a.id, b.id]
    assert {r["engine"] for r in data["runs"]} == {"local"}
    assert data["runs"][0]["notebook"].endswith("train.ipynb")
    assert data["parameters"] == {"differ": {"lr": [0.5, 0.25]},
                                  "same": {"epochs": 3, "name": "model"}}
    assert data["metrics"]["final_loss"]["values"] == pytest.approx([2 / 3, 4 / 3])
    assert data["metrics"]["final_loss"]["change"] == [None, pytest.approx(2 / 3)]
    assert data["steps"]["prepare"][1]["cached"] is True


def image_colours(path):
    """The PNG decoded by matplotlib: (height, width, RGB) floats in 0..1."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    return pixels[..., :3]


def has_colour(pixels, rgb, tolerance=0.02):
    return int(np.all(np.abs(pixels - np.array(rgb)) < tolerance, axis=-1).sum())


def test_the_plot_is_a_png_with_a_line_per_metric(history, tmp_path):
    a, b, c = history["a"], history["b"], history["c"]
    comparison = cellpipe.compare([a, b, c])

    path = comparison.plot(tmp_path / "plots" / "metrics.png")
    assert path == tmp_path / "plots" / "metrics.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    pixels = image_colours(path)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 570  # 1.9 in per run, 100 dpi
    # both lines are drawn (their colours cover many pixels), on a white figure
    assert has_colour(pixels, BLUE) > 300 and has_colour(pixels, ORANGE) > 300
    assert has_colour(pixels, (1, 1, 1)) > pixels.shape[0] * pixels.shape[1] // 2
    assert comparison.labels()[2] == f"{c.id}\nepochs=5\nlr=0.25"

    only = comparison.plot(tmp_path / "accuracy.png", ["accuracy"])
    pixels = image_colours(only)
    assert has_colour(pixels, BLUE) > 300  # the one line takes the first colour
    assert has_colour(pixels, ORANGE) == 0
    assert comparison.png(["accuracy"]) == only.read_bytes()


def test_a_metric_missing_in_a_run_leaves_a_gap_not_an_error(history, tmp_path):
    comparison = cellpipe.compare([history["a"], history["failed"], history["b"]])
    pixels = image_colours(comparison.plot(tmp_path / "gap.png", ["final_loss"]))
    assert has_colour(pixels, BLUE) > 50


def test_mistakes_are_clear_errors(history):
    a, b, root = history["a"], history["b"], history["root"]
    with pytest.raises(CellpipeError, match=r"at least two runs \(got 0\)"):
        cellpipe.compare([], root=root)
    with pytest.raises(CellpipeError, match=r"at least two runs \(got 1\)") as one:
        cellpipe.compare(["latest"], root=root)
    assert "cellpipe runs" in one.value.hint
    with pytest.raises(CellpipeError) as unknown:
        cellpipe.compare([a.id, "20990101-nope"], root=root)
    assert "no run '20990101-nope'" in unknown.value.message
    assert all(r.id in unknown.value.message for r in api.list_runs(root))  # the known ids
    with pytest.raises(CellpipeError, match="matches several runs"):
        cellpipe.compare([a.id, a.id[:4]], root=root)
    with pytest.raises(CellpipeError, match="is given twice"):
        cellpipe.compare([a.id, a.id[:17], b.id], root=root)
    with pytest.raises(CellpipeError, match="there are no runs under"):
        cellpipe.compare(["x", "y"], root=root.parent / "empty")
    comparison = cellpipe.compare([a, b])
    with pytest.raises(CellpipeError, match="there is no metric 'acuracy'") as metric:
        comparison.png(["acuracy"])
    assert metric.value.hint == "did you mean 'accuracy'?"


def test_latest_and_prefixes_are_resolved_as_show_resolves_them(history):
    root = history["root"]
    newest = api.list_runs(root)[-1]
    comparison = cellpipe.compare([history["a"].id[:19], "latest"], root=root)
    assert comparison.ids == [history["a"].id, newest.id]


def test_runs_without_numeric_metrics_cannot_be_plotted(tmp_path):
    path = write_nb(tmp_path, ("parameters", "n = 1"), ("step:only", "x = n"))
    runs = [api.run(path, {"n": n}, root=tmp_path / ".cellpipe") for n in (1, 2)]
    comparison = cellpipe.compare(runs)
    assert comparison.metrics == {} and comparison.parameters == {"n": [1, 2]}
    with pytest.raises(CellpipeError, match="none of the runs has a numeric metric"):
        comparison.png()
