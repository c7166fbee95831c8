"""The local engine and the step runtime: IPython semantics in steps, reports, metrics,
retries, timeouts, parallelism, the cache and why each step ran, partial runs, sweeps."""

from __future__ import annotations

import nbformat
import pytest

from cellpipe import api
from cellpipe.errors import CellpipeError
from tests.conftest import make_nb, write_nb
from tests.engines.runutil import count, run


def statuses(result):
    return {name: state["status"] for name, state in result.steps.items()}


# -- the step runtime -------------------------------------------------------------------


def test_magics_and_shell_commands_work_in_steps(tmp_path):
    path = write_nb(
        tmp_path,
        ("step:shell", "x = !echo hi\n!echo shell-says-hi\n%time y = 6 * 7\nprint('printed')"),
        ("step:use", "first = x[0]\nz = y + 1"),
    )
    result = run(path, tmp_path)

    assert result.status == "succeeded", result.steps
    log = result.log("shell")
    assert "shell-says-hi" in log and "printed" in log and "Wall time" in log
    assert list(result.load("x")) == ["hi"]
    assert result.load("first") == "hi"
    assert result.load("z") == 43


def test_display_output_and_figures_go_into_the_report(tmp_path):
    path = write_nb(
        tmp_path,
        ("step:plot", "from IPython.display import HTML, display\n"
         "display(HTML('<b>shown</b>'))\n"
         "import matplotlib.pyplot as plt\n"
         "plt.plot([1, 3, 2])\nplt.show()\npoints = 3"),
        "points * 2",  # the value of the last expression is the cell's result
    )
    result = run(path, tmp_path)

    assert result.status == "succeeded", result.steps
    step_dir = result.path / "steps" / "plot"
    report = nbformat.read(step_dir / "report.ipynb", as_version=4)
    code = [c for c in report.cells if c.cell_type == "code"]
    assert [c.metadata["cellpipe"]["cell"] for c in code] == [0, 1]
    outputs = code[0].outputs
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert html and "<b>shown</b>" in html[0].data["text/html"]
    assert any("image/png" in o.get("data", {}) for o in outputs), outputs
    assert code[1].outputs[0].output_type == "execute_result"
    assert code[1].outputs[0].data["text/plain"] == "6"
    nbformat.validate(report)
    # HTML is rendered when first shown, never by the run
    assert not (step_dir / "report.html").exists()
    assert api.report_html(step_dir) == step_dir / "report.html"
    assert "<b>shown</b>" in (step_dir / "report.html").read_text(encoding="utf-8")


def test_metrics_are_reported_in_the_run(tmp_path):
    path = write_nb(
        tmp_path,
        ("parameters", "scale = 2"),
        ("step:train", "import numpy as np\nvalues = np.arange(4) * scale"),
        ("metrics", "accuracy = float(values.mean()) / 10\nbest = values.max()"),
    )
    result = run(path, tmp_path)

    assert result.status == "succeeded", result.steps
    assert result.metrics == {"accuracy": 0.3, "best": 6}
    assert type(result.metrics["best"]) is int  # numpy scalars become plain numbers
    assert result.steps["train"]["metrics"] == result.metrics
    assert api.open_run(result.id, tmp_path / ".cellpipe").metrics == result.metrics


def test_value_that_cannot_be_marshalled_fails_its_step_naming_variable_type_consumers(
    tmp_path,
):
    path = write_nb(
        tmp_path,
        ("step:opener", f"handle = open({str(tmp_path / 'nb.ipynb')!r})\nsize = 1"),
        ("step:reader", "text = handle.read()"),
    )
    result = run(path, tmp_path)

    assert result.status == "failed"
    opener = result.steps["opener"]
    assert opener["status"] == "failed"
    assert opener["exit_code"] == 1  # the user's to fix
    error = opener["error"]
    assert error["kind"] == "user" and error["variable"] == "handle"
    assert "'handle'" in error["message"] and "TextIOWrapper" in error["message"]
    assert "reader" in error["message"] and error["consumers"] == ["reader"]
    assert error["hint"]
    assert "'handle'" in result.log("opener")
    assert result.steps["reader"]["status"] == "skipped"


# -- retries and timeouts ---------------------------------------------------------------


def test_retries_run_a_flaky_step_again(tmp_path):
    marker, counter = tmp_path / "tried", tmp_path / "count.txt"
    path = write_nb(
        tmp_path,
        (["step:flaky", "retries:2"],
         f"import os\n{count(counter, 'F')}\n"
         f"if not os.path.exists({str(marker)!r}):\n"
         f"    open({str(marker)!r}, 'w').close()\n"
         "    raise RuntimeError('first time only')\n"
         "value = 1"),
    )
    events = []
    result = run(path, tmp_path, on_event=events.append)

    assert result.status == "succeeded"
    state = result.steps["flaky"]
    assert state["status"] == "succeeded" and state["attempts"] == 2
    assert "error" not in state  # the first attempt's error is not the step's outcome
    assert counter.read_text() == "FF"
    assert [e.status for e in events] == ["running", "retrying", "running", "succeeded"]
    assert result.load("value") == 1


def test_retries_give_up_after_the_limit(tmp_path):
    counter = tmp_path / "count.txt"
    path = write_nb(tmp_path, (["step:bad", "retries:1"],
                               f"{count(counter, 'B')}\nraise OSError('always')"))
    result = run(path, tmp_path)

    assert result.status == "failed"
    assert result.steps["bad"]["attempts"] == 2
    assert counter.read_text() == "BB"
    assert "OSError: always" in result.steps["bad"]["error"]["message"]


def test_timeout_kills_a_step_quickly(tmp_path):
    path = write_nb(
        tmp_path,
        (["step:sleepy", "timeout:1"], "import time\ntime.sleep(30)\nslept = True"),
        ("step:quick", "fast = 1"),
    )
    result = run(path, tmp_path, workers=2)

    assert result.status == "failed"
    sleepy = result.steps["sleepy"]
    assert sleepy["status"] == "failed"
    assert "timed out" in sleepy["error"]["message"]
    assert 1.0 <= sleepy["duration"] < 10
    assert result.data["duration"] < 15
    assert result.steps["quick"]["status"] == "succeeded"


# -- parallelism --------------------------------------------------------------------------


def two_sleepers(tmp_path):
    return write_nb(
        tmp_path,
        ("step:first", "import time\ntime.sleep(1)\na = 1"),
        ("step:second", "import time\ntime.sleep(1)\nb = 2"),
        ("step:join", "c = a + b"),
    )


def interval(result, step):
    state = result.steps[step]
    return state["started"], state["finished"]


@pytest.mark.slow
def test_independent_steps_overlap_with_two_workers(tmp_path):
    result = run(two_sleepers(tmp_path), tmp_path, workers=2)

    assert result.status == "succeeded"
    (s1, f1), (s2, f2) = interval(result, "first"), interval(result, "second")
    assert max(s1, s2) < min(f1, f2), "the two steps did not run at the same time"
    assert result.steps["join"]["started"] >= max(f1, f2)
    assert result.load("c") == 3


@pytest.mark.slow
def test_one_worker_runs_steps_one_after_the_other(tmp_path):
    result = run(two_sleepers(tmp_path), tmp_path, workers=1)

    assert result.status == "succeeded"
    spans = sorted([interval(result, "first"), interval(result, "second")])
    assert spans[0][1] <= spans[1][0], "with one worker the steps overlapped"


# -- the cache ----------------------------------------------------------------------------


def cached_notebook(tmp_path, counter):
    return write_nb(
        tmp_path,
        ("parameters", "rate = 0.5\nsize = 4"),
        ("step:load", f"{count(counter, 'L')}\nrows = list(range(size))"),
        ("step:scale", f"{count(counter, 'S')}\nscaled = [r * rate for r in rows]"),
        ("step:total", f"{count(counter, 'T')}\ntotal = sum(scaled)"),
        ("step:other", f"{count(counter, 'O')}\nlabel = 'fixed'"),
    )


def test_second_identical_run_is_all_cached_and_says_from_which_run(tmp_path):
    counter = tmp_path / "count.txt"
    path = cached_notebook(tmp_path, counter)
    first = run(path, tmp_path)
    assert first.status == "succeeded"
    assert all(s["reason"] == "first run of this step" for s in first.steps.values())

    second = run(path, tmp_path)

    assert second.id != first.id and second.status == "succeeded"
    assert set(statuses(second).values()) == {"cached"}
    for state in second.steps.values():
        assert first.id in state["reason"]
        assert state["cached_from"] == first.id
    assert sorted(counter.read_text()) == sorted("LSTO")  # nothing ran again
    assert second.load("total") == 3.0
    assert (second.path / "steps" / "total" / "log.txt").exists()  # copied along


def test_changed_parameter_reruns_its_readers_and_their_descendants(tmp_path):
    counter = tmp_path / "count.txt"
    path = cached_notebook(tmp_path, counter)
    run(path, tmp_path)
    counter.write_text("")

    changed = run(path, tmp_path, {"rate": 2.0})

    assert statuses(changed) == {"load": "cached", "scale": "succeeded",
                                 "total": "succeeded", "other": "cached"}
    assert changed.steps["scale"]["reason"] == "parameter rate changed"
    assert changed.steps["total"]["reason"] == "input scaled changed"
    assert sorted(counter.read_text()) == ["S", "T"]
    assert changed.load("total") == 12.0

    size_changed = run(path, tmp_path, {"rate": 2.0, "size": 2})
    assert size_changed.steps["load"]["reason"] == "parameter size changed"
    assert size_changed.steps["scale"]["reason"] == "input rows changed"
    assert size_changed.steps["other"]["status"] == "cached"


def test_no_cache_and_cache_off_tag_run_again(tmp_path):
    counter = tmp_path / "count.txt"
    path = write_nb(
        tmp_path,
        ("step:kept", f"{count(counter, 'K')}\nx = 1"),
        (["step:always", "cache:off"], f"{count(counter, 'A')}\ny = x + 1"),
        ("step:after", f"{count(counter, 'Z')}\nz = y + 1"),
    )
    run(path, tmp_path)
    again = run(path, tmp_path)
    assert statuses(again) == {"kept": "cached", "always": "succeeded", "after": "cached"}
    assert again.steps["always"]["reason"] == "cache:off"

    forced = run(path, tmp_path, cache=False)
    assert set(statuses(forced).values()) == {"succeeded"}
    assert {s["reason"] for s in forced.steps.values()} == {"--no-cache"}
    assert sorted(counter.read_text()) == sorted("KAZ" + "A" + "KAZ")


# -- partial runs ----------------------------------------------------------------------


def chain(tmp_path, counter):
    return write_nb(
        tmp_path,
        ("step:a", f"{count(counter, 'a')}\nx = 1"),
        ("step:b", f"{count(counter, 'b')}\ny = x + 1"),
        ("step:c", f"{count(counter, 'c')}\nz = y + 1"),
    )


def test_step_runs_only_that_step_with_upstream_from_the_cache(tmp_path):
    counter = tmp_path / "count.txt"
    path = chain(tmp_path, counter)
    first = run(path, tmp_path)
    counter.write_text("")

    only = run(path, tmp_path, step=["b"])

    assert only.status == "succeeded"
    assert statuses(only) == {"a": "cached", "b": "succeeded", "c": "skipped"}
    assert counter.read_text() == "b"
    assert only.steps["a"]["cached_from"] == first.id
    assert only.steps["b"]["started"] > first.steps["c"]["finished"]
    assert "not selected" in only.steps["c"]["message"]
    assert only.load("y") == 2

    # --no-cache is about what runs; what the selection needs still comes from the cache.
    counter.write_text("")
    forced = run(path, tmp_path, step=["b"], cache=False)
    assert statuses(forced) == {"a": "cached", "b": "succeeded", "c": "skipped"}
    assert counter.read_text() == "b"


def test_from_and_to_select_a_range(tmp_path):
    counter = tmp_path / "count.txt"
    path = chain(tmp_path, counter)

    upto = run(path, tmp_path, stop="a")  # nothing cached yet: a runs, the rest is left
    assert upto.status == "succeeded"
    assert statuses(upto) == {"a": "succeeded", "b": "skipped", "c": "skipped"}
    assert counter.read_text() == "a"

    later = run(path, tmp_path, start="b")
    assert later.status == "succeeded"
    assert statuses(later) == {"a": "cached", "b": "succeeded", "c": "succeeded"}
    assert counter.read_text() == "abc"

    middle = run(path, tmp_path, start="b", stop="b")
    assert statuses(middle) == {"a": "cached", "b": "succeeded", "c": "skipped"}


def test_selected_step_whose_inputs_were_never_made_is_blocked(tmp_path):
    path = chain(tmp_path, tmp_path / "count.txt")
    result = run(path, tmp_path, step=["c"])

    assert result.status == "failed"
    assert statuses(result) == {"a": "blocked", "b": "skipped", "c": "skipped"}
    assert "--to a" in result.steps["a"]["message"]


def test_select_steps_closure():
    spec = api.compile_spec(make_nb(("step:a", "x = 1"), ("step:b", "y = x + 1"),
                                    ("step:c", "z = y + 1"), ("step:d", "w = x * 2")))
    assert [s.upstream for s in spec.steps] == [(), ("a",), ("b",), ("a",)]
    assert api.select_steps(spec) is None
    assert api.select_steps(spec, start="b") == {"b", "c"}
    assert api.select_steps(spec, stop="b") == {"a", "b"}
    assert api.select_steps(spec, start="a", stop="c") == {"a", "b", "c"}
    assert api.select_steps(spec, ["d"]) == {"d"}


# -- sweeps and values ----------------------------------------------------------------


@pytest.mark.slow
def test_sweep_runs_the_grid_and_reuses_steps_that_do_not_read_swept_parameters(tmp_path):
    counter = tmp_path / "count.txt"
    path = write_nb(
        tmp_path,
        ("parameters", "lr = 0.1\ndepth = 1\nsamples = 5"),
        ("step:prepare", f"{count(counter, 'P')}\nrows = list(range(samples))"),
        ("step:fit", f"{count(counter, 'F')}\nscore = sum(rows) * lr + depth"),
        ("metrics", "quality = score"),
    )
    runs = api.sweep(path, {"lr": [0.1, 0.2], "depth": [1, 2]}, root=tmp_path / ".cellpipe")

    assert len(runs) == 4 and len({r.id for r in runs}) == 4
    assert all(r.status == "succeeded" for r in runs)
    assert [(r.parameters["lr"], r.parameters["depth"]) for r in runs] == [
        (0.1, 1), (0.1, 2), (0.2, 1), (0.2, 2)]
    assert runs[0].steps["prepare"]["status"] == "succeeded"
    for later in runs[1:]:
        assert later.steps["prepare"]["status"] == "cached"
        assert runs[0].id in later.steps["prepare"]["reason"]
        assert later.steps["fit"]["status"] == "succeeded"
    assert [r.metrics["quality"] for r in runs] == pytest.approx([2.0, 3.0, 3.0, 4.0])
    assert sorted(counter.read_text()) == sorted("PFFFF")


def test_load_returns_the_value_of_the_last_writer(tmp_path):
    path = write_nb(
        tmp_path,
        ("step:first", "x = 'first'\nsnapshot = x"),
        ("step:middle", "seen = x.upper()"),
        ("step:second", "x = 'second'"),
        ("step:after", "print(seen)"),
    )
    result = run(path, tmp_path)

    assert result.status == "succeeded"
    assert result.load("x") == "second"
    assert result.load("seen") == "FIRST"
    assert result.load("snapshot") == "first"
    with pytest.raises(CellpipeError, match="does not end with a name 'nothing'"):
        result.load("nothing")


# -- cancelling ---------------------------------------------------------------------------


def test_cancel_ends_the_running_step_and_keeps_what_finished(tmp_path):
    import os
    import threading
    import time

    counter = tmp_path / "count.txt"
    path = write_nb(
        tmp_path,
        ("parameters", "pause = 60"),
        ("step:load", f"{count(counter, 'L')}\nrows = list(range(10))"),
        ("step:train", "import os, time\npid = os.getpid()\ntime.sleep(pause)\n"
                       "total = sum(rows)"),
    )
    cancel = threading.Event()

    def on_event(event):
        if event.step == "train" and event.status == "running":
            cancel.set()

    started = time.monotonic()
    result = run(path, tmp_path, on_event=on_event, cancel=cancel)
    assert time.monotonic() - started < 20  # not the 60 s the step sleeps
    assert result.status == "cancelled"
    assert statuses(result) == {"load": "succeeded", "train": "cancelled"}
    pid = result.steps["train"]["pid"]  # the step's process is gone
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # the step that finished stays cached: the next run reuses it and runs only train
    again = run(path, tmp_path, parameters={"pause": 0})
    assert again.status == "succeeded"
    assert statuses(again) == {"load": "cached", "train": "succeeded"}
    assert counter.read_text() == "L"
    assert again.load("total") == 45


def test_a_cancel_set_before_the_run_runs_nothing(tmp_path):
    import threading

    path = write_nb(tmp_path, ("step:only", "x = 1"))
    cancel = threading.Event()
    cancel.set()
    result = run(path, tmp_path, cancel=cancel)
    assert result.status == "cancelled"
    assert statuses(result) == {"only": "cancelled"}
