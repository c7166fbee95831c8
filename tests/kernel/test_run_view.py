"""`%cellpipe run`'s view and command: step states from events, progress, the end status
and metrics, step reports, and `run_command` driven from a real IPython shell."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cellpipe import api
from cellpipe.engines.scheduler import StepEvent
from cellpipe.errors import CellpipeError, PipelineError
from cellpipe_kernel import run_view
from cellpipe_kernel.run_view import RunHandle, run_command
from cellpipe_kernel.widgets import RunView
from tests.conftest import write_nb

NAMESPACE_KEYS = ("_cellpipe_run", "_cellpipe_view", "_cellpipe_background", "_cellpipe_params")


@pytest.fixture
def shell(monkeypatch):
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    ip = InteractiveShell.instance()
    for key in NAMESPACE_KEYS:
        ip.user_ns.pop(key, None)
    yield ip
    for key in NAMESPACE_KEYS:
        ip.user_ns.pop(key, None)


@pytest.fixture
def sums_nb(tmp_path):
    """Two steps and a metric: total = sum(range(n)) * scale."""
    return write_nb(
        tmp_path,
        ("parameters", "n = 10\nscale = 2.0"),
        ("step:data", "xs = [i * scale for i in range(n)]\nprint('made', len(xs), 'values')"),
        ("step:stats", "total = sum(xs)\nprint('total is', total)"),
        ("metrics", "total_metric = total"),
    )


def event(step: str, status: str, attempt: int = 1, elapsed: float = 0.0,
          message: str = "", run_id: str = "20260101-000000-abcdef") -> StepEvent:
    return StepEvent(run_id, step, status, attempt, elapsed, message)


@dataclass
class FakeRun:
    """What `RunView.finish` reads of a `cellpipe.api.Run`."""

    path: Path
    status: str = "succeeded"
    metrics: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    id: str = "20260101-000000-abcdef"

    @property
    def data(self) -> dict[str, Any]:
        return {"duration": 1.25, "status": self.status}


# -- the view, fed synthetic events ----------------------------------------------------------


def test_a_retried_step_goes_running_retrying_running_succeeded():
    view = RunView("train.ipynb", ["prepare", "train", "evaluate"])
    assert view.progress.max == 3 and view.progress.value == 0
    assert [s["status"] for s in view.states.values()] == ["pending"] * 3
    assert "starting" in view.header.value

    view.on_event(event("prepare", "running"))
    assert view.states["prepare"] == {"status": "running", "attempt": 1, "elapsed": 0.0,
                                      "message": ""}
    assert view.progress.value == 0
    assert "20260101-000000-abcdef" in view.header.value and "train.ipynb" in view.header.value

    view.on_event(event("prepare", "retrying", 1, 0.25, "attempt 1 failed (boom); trying again"))
    assert view.states["prepare"]["status"] == "retrying"
    assert view.states["prepare"]["elapsed"] == 0.25
    assert view.progress.value == 0  # a retry is not an end
    assert "attempt 1 failed (boom)" in view.table.value

    view.on_event(event("prepare", "running", 2))
    view.on_event(event("prepare", "succeeded", 2, 0.5))
    assert view.states["prepare"] == {"status": "succeeded", "attempt": 2, "elapsed": 0.5,
                                      "message": ""}
    assert view.progress.value == 1
    assert view.progress_label.value == "1 / 3 steps"
    assert view.picker.options[0][1] == ""  # "choose a finished step"
    assert view.picker.options[1:] == (("prepare", "prepare"),)
    assert not view.picker.disabled
    # one table row per step, in spec order, with a text badge per state
    table = view.table.value
    assert table.index("prepare") < table.index("train") < table.index("evaluate")
    assert ">succeeded</span>" in table and table.count(">pending</span>") == 2


def test_failed_skipped_cached_and_blocked_steps_are_finished():
    view = RunView("nb.ipynb", ["a", "b", "c", "d"])
    view.on_event(event("a", "cached", message="unchanged: reused results of run r1"))
    view.on_event(event("b", "running"))
    view.on_event(event("b", "failed", 1, 0.3, "cell 3, line 1: ZeroDivisionError"))
    view.on_event(event("c", "skipped", message="upstream b did not succeed"))
    view.on_event(event("d", "blocked", message="not selected and no cached result"))

    assert {s: v["status"] for s, v in view.states.items()} == {
        "a": "cached", "b": "failed", "c": "skipped", "d": "blocked"}
    assert view.states["b"]["message"] == "cell 3, line 1: ZeroDivisionError"
    assert view.progress.value == view.progress.max == 4
    # only steps that ran (or were reused) have a report to show
    assert view.report_steps() == ["a", "b"]
    assert [value for _, value in view.picker.options] == ["", "a", "b"]
    assert view.status.value == "" and view.metrics.value == ""  # not ended yet


def test_an_unknown_step_gets_a_row_of_its_own():
    view = RunView("nb.ipynb", ["a"])
    view.on_event(event("late", "running"))
    assert view.steps == ["a", "late"] and view.states["late"]["status"] == "running"


def test_echo_prints_one_line_per_state_change(capsys):
    view = RunView("nb.ipynb", ["a"], echo=True)
    view.on_event(event("a", "running"))
    view.on_event(event("a", "failed", 1, 1.5, "boom"))
    assert capsys.readouterr().out.splitlines() == ["  a: running", "  a: failed 1.50s (boom)"]


def test_finish_shows_status_metrics_and_prints_a_summary(tmp_path, capsys):
    view = RunView("nb.ipynb", ["a", "b"])
    view.on_event(event("a", "running"))
    view.on_event(event("a", "succeeded", 1, 0.4))
    # b's events were missed: finish takes the run's own record
    run = FakeRun(tmp_path, metrics={"accuracy": 0.912345, "epochs": 3},
                  steps={"a": {"status": "succeeded", "duration": 0.4, "attempts": 1},
                         "b": {"status": "cached", "duration": 0.0,
                               "message": "unchanged: reused results of run r0"}})
    view.finish(run)

    assert capsys.readouterr().out.strip() == (
        "run 20260101-000000-abcdef succeeded in 1.25s; metrics: accuracy=0.9123, epochs=3")
    assert view.outcome == "succeeded" and view.run is run
    assert view.states["b"]["status"] == "cached"
    assert view.states["b"]["message"] == "unchanged: reused results of run r0"
    assert view.progress.value == 2 and view.progress.bar_style == "success"
    assert ">succeeded</span>" in view.status.value and "1.25s" in view.status.value
    assert view.metrics.value == view.metrics_html
    assert "<code>accuracy</code></td><td style='text-align:right'>0.9123" in view.metrics_html
    assert "<code>epochs</code></td><td style='text-align:right'>3" in view.metrics_html
    # the plain-text form (what logs and widget-less frontends show) has the summary
    bundle = view._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == view.widget.model_id
    assert bundle["text/plain"].splitlines()[1:] == [
        "  a  succeeded 0.40s",
        "  b  cached (unchanged: reused results of run r0)",
        "run 20260101-000000-abcdef succeeded in 1.25s; metrics: accuracy=0.9123, epochs=3",
    ]


def test_a_failed_run_shows_the_failed_steps_log_until_its_report_exists(tmp_path, capsys):
    step_dir = tmp_path / "steps" / "b"
    step_dir.mkdir(parents=True)
    (step_dir / "log.txt").write_text("Traceback: <ZeroDivisionError>\n")
    view = RunView("nb.ipynb", ["a", "b"])
    view.on_event(event("a", "succeeded", 1, 0.1))
    view.on_event(event("b", "failed", 1, 0.2, "ZeroDivisionError"))
    view.finish(FakeRun(tmp_path, status="failed",
                        steps={"a": {"status": "succeeded"},
                               "b": {"status": "failed", "error": {"message": "ZeroDivision"}}}))

    err = capsys.readouterr().err
    assert err.splitlines() == ["run 20260101-000000-abcdef failed in 1.25s",
                                "  b: ZeroDivision (its log: _cellpipe_run.log('b'))"]
    assert view.progress.bar_style == "danger"
    assert view.picker.value == "b"  # the failure is shown at once
    assert view.report_source == "log"
    assert html.escape("Traceback: <ZeroDivisionError>") in view.report.value

    (step_dir / "report.html").write_text("<html><body><p>the b report</p></body></html>")
    shown = view.show_report("b")
    assert view.report_source == "report" and view.report.value == shown
    assert shown.startswith("<iframe srcdoc=") and "the b report" in shown
    assert "<p>" not in shown.split('"')[1]  # the page is escaped into the attribute

    assert "no report or log" in view.show_report("a")  # nothing on disk for a
    assert view.report_source == "none"


def test_fail_cancels_what_had_not_ended(capsys):
    view = RunView("nb.ipynb", ["a", "b", "c"])
    view.on_event(event("a", "succeeded", 1, 0.1))
    view.on_event(event("b", "running"))
    view.fail(KeyboardInterrupt())
    assert [s["status"] for s in view.states.values()] == ["succeeded", "cancelled", "cancelled"]
    assert view.outcome == "cancelled" and view.progress.bar_style == "warning"
    assert "run 20260101-000000-abcdef cancelled: interrupted" in capsys.readouterr().err


def test_fail_before_the_run_started_leaves_steps_pending(capsys):
    view = RunView("nb.ipynb", ["a"])
    view.fail(CellpipeError("no Docker daemon", hint="start it"))
    assert view.states["a"]["status"] == "pending"
    assert view.outcome == "error"
    assert view.summary == "the run stopped: no Docker daemon (start it)"
    assert "no Docker daemon (start it)" in view.status.value
    assert capsys.readouterr().err.strip() == view.summary



def test_without_ipywidgets_the_view_is_text(monkeypatch, tmp_path, capsys):
    from cellpipe_kernel import widgets

    monkeypatch.setattr(widgets, "widgets", None)
    view = RunView("nb.ipynb", ["a"])
    assert view.widget is None and view.echo
    view.on_event(event("a", "succeeded", 1, 0.2))
    view.finish(FakeRun(tmp_path, metrics={"m": 1}, steps={"a": {"status": "succeeded"}}))
    assert capsys.readouterr().out.splitlines() == [
        "  a: succeeded 0.20s", "run 20260101-000000-abcdef succeeded in 1.25s; metrics: m=1"]
    assert set(view._repr_mimebundle_()) == {"text/plain"}
    assert "no report or log" in view.show_report("a")

# -- the view on a real run ------------------------------------------------------------------


def test_reports_of_a_real_run(sums_nb, tmp_path, capsys):
    root = tmp_path / ".cellpipe"
    spec = api.compile_spec(sums_nb).to_dict()
    view = RunView(sums_nb, [s["name"] for s in spec["steps"]], root=root)
    run = api.run(sums_nb, root=root, on_event=view.on_event)
    assert [s["status"] for s in view.states.values()] == ["succeeded", "succeeded"]
    # while the run is not finished, the report is found through the run id and root
    assert view.run is None and view.step_dir("stats") == run.path / "steps" / "stats"
    view.finish(run)
    assert "metrics: total_metric=90" in capsys.readouterr().out

    report = run.path / "steps" / "stats" / "report.html"
    assert not report.exists()  # rendered when first shown
    shown = view.show_report("stats")
    assert view.report_source == "report" and report.is_file()
    assert "total is 90.0" in html.unescape(shown)

    report.unlink()  # no report (a step that died before writing it): the log stands in
    (report.parent / "report.ipynb").unlink()
    shown = view.show_report("stats")
    assert view.report_source == "log" and "total is 90.0" in shown
    assert view.picker.options[1:] == (("data", "data"), ("stats", "stats"))


# -- run_command in a real IPython shell -------------------------------------------------------


def test_foreground_run_stores_the_run(shell, sums_nb, capsys):
    assert run_command(shell, [], sums_nb) is None

    run = shell.user_ns["_cellpipe_run"]
    assert run.status == "succeeded"
    assert run.load("total") == 90.0 and run.metrics == {"total_metric": 90.0}
    assert run.path.parent.parent == sums_nb.parent / ".cellpipe"  # beside the notebook
    view = shell.user_ns["_cellpipe_view"]
    assert view.run is run and view.outcome == "succeeded"
    assert {s: v["status"] for s, v in view.states.items()} == {
        "data": "succeeded", "stats": "succeeded"}
    assert view.progress.value == 2
    out = capsys.readouterr().out.splitlines()
    # no widget frontend here: one line per state change, then the summary
    assert out[:4] == ["  data: running", out[1], "  stats: running", out[3]]
    assert out[1].startswith("  data: succeeded") and out[3].startswith("  stats: succeeded")
    assert out[-1] == f"run {run.id} succeeded in {run.data['duration']:.2f}s; " \
                      "metrics: total_metric=90"

    # --step: only that step runs, its input comes from the cache
    run_command(shell, ["--step", "stats"], sums_nb)
    again = shell.user_ns["_cellpipe_run"]
    assert again.id != run.id
    assert {s: v["status"] for s, v in shell.user_ns["_cellpipe_view"].states.items()} == {
        "data": "cached", "stats": "succeeded"}


def test_form_values_then_p_overrides(shell, sums_nb, capsys):
    shell.user_ns["_cellpipe_params"] = {"n": 3, "scale": "1.5", "gone": 1}
    run_command(shell, ["-p", "scale=3", "--no-cache"], sums_nb)

    run = shell.user_ns["_cellpipe_run"]
    assert run.parameters == {"n": 3, "scale": 3.0}
    assert run.load("total") == 9.0  # (0 + 1 + 2) * 3
    assert "ignoring _cellpipe_params for gone" in capsys.readouterr().err

    del shell.user_ns["_cellpipe_params"]
    run_command(shell, ["-p", "n=2", "scale=0.5"], sums_nb)  # several after one -p
    assert shell.user_ns["_cellpipe_run"].parameters == {"n": 2, "scale": 0.5}
    assert shell.user_ns["_cellpipe_run"].load("total") == 0.5


@pytest.mark.parametrize("argv, message", [
    (["-p", "n=many"], "parameter 'n' is an int; 'many' is not"),
    (["-p", "m=1"], "the notebook has no parameter 'm'"),
    (["-p", "n"], "-p 'n' is not NAME=VALUE"),
    (["--step", "nope"], "nope"),
])
def test_bad_values_are_cellpipe_errors_before_anything_runs(shell, sums_nb, argv, message):
    with pytest.raises(CellpipeError, match=message.replace("(", r"\(")):
        run_command(shell, argv, sums_nb)
    assert not (sums_nb.parent / ".cellpipe").exists()
    assert "_cellpipe_view" not in shell.user_ns


def test_a_bad_form_value_is_a_cellpipe_error(shell, sums_nb):
    shell.user_ns["_cellpipe_params"] = {"n": "ten"}
    with pytest.raises(CellpipeError, match="parameter 'n' is an int"):
        run_command(shell, [], sums_nb)
    shell.user_ns["_cellpipe_params"] = ["n", 1]
    with pytest.raises(CellpipeError, match="_cellpipe_params is not a dict"):
        run_command(shell, [], sums_nb)


def test_usage_errors_and_help(shell, sums_nb, capsys):
    with pytest.raises(UsageError, match="unrecognized arguments: --fast"):
        run_command(shell, ["--fast"], sums_nb)
    with pytest.raises(UsageError, match="invalid choice: 'k8s'"):
        run_command(shell, ["--engine", "k8s"], sums_nb)
    assert run_command(shell, ["-h"], sums_nb) is None
    assert "usage: %cellpipe run" in capsys.readouterr().out
    assert "_cellpipe_run" not in shell.user_ns


def test_a_notebook_with_lint_errors_is_a_pipeline_error(shell, tmp_path):
    path = write_nb(tmp_path, ("step:Bad Name", "x = 1"))
    with pytest.raises(PipelineError) as info:
        run_command(shell, [], path)
    assert info.value.diagnostics


def test_a_failing_step_ends_the_run_failed_without_raising(shell, tmp_path, capsys):
    path = write_nb(tmp_path, ("step:ok", "a = 1"), ("step:boom", "b = a / 0"),
                    ("step:after", "c = b"))
    assert run_command(shell, [], path) is None
    run = shell.user_ns["_cellpipe_run"]
    assert run.status == "failed"
    view = shell.user_ns["_cellpipe_view"]
    assert [s["status"] for s in view.states.values()] == ["succeeded", "failed", "skipped"]
    assert "ZeroDivisionError" in view.states["boom"]["message"]
    assert view.picker.value == "boom" and view.report_source in ("report", "log")
    assert f"run {run.id} failed" in capsys.readouterr().err


def test_ctrl_c_cancels_the_view_and_propagates(shell, sums_nb, monkeypatch):
    def interrupted(notebook, parameters, *, on_event, **options):
        on_event(StepEvent("r1", "data", "running"))
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "run", interrupted, raising=False)
    with pytest.raises(KeyboardInterrupt):
        run_command(shell, [], sums_nb)
    view = shell.user_ns["_cellpipe_view"]
    assert view.outcome == "cancelled"
    assert [s["status"] for s in view.states.values()] == ["cancelled", "cancelled"]


# -- --background -----------------------------------------------------------------------------


def test_background_returns_at_once_and_the_view_follows_the_run(shell, tmp_path, capsys):
    path = write_nb(
        tmp_path,
        ("parameters", "n = 4"),
        ("step:slow", "import time\ntime.sleep(1.0)\nxs = list(range(n))"),
        ("step:total", "total = sum(xs)"),
    )
    assert run_command(shell, ["--background", "-p", "n=5"], path) is None

    # back at once: the thread started last, and its first step alone takes a second
    handle = shell.user_ns["_cellpipe_background"]
    assert isinstance(handle, RunHandle) and not handle.done
    assert handle.view.outcome is None and handle.view.states["total"]["status"] == "pending"
    assert handle.thread is not None and handle.thread.daemon
    assert "_cellpipe_run" not in shell.user_ns
    assert shell.user_ns["_cellpipe_view"] is handle.view

    run = handle.wait(60)
    assert handle.done and handle.run is run and handle.error is None
    assert shell.user_ns["_cellpipe_run"] is run
    assert run.status == "succeeded" and run.load("total") == 10
    assert {s: v["status"] for s, v in handle.view.states.items()} == {
        "slow": "succeeded", "total": "succeeded"}
    assert handle.view.states["slow"]["elapsed"] >= 1.0
    assert handle.view.outcome == "succeeded" and handle.view.progress.value == 2
    handle.thread.join(5)
    assert not handle.thread.is_alive()
    assert repr(handle) == f"<cellpipe background run {run.id}: succeeded>"
    assert f"run {run.id} succeeded" in capsys.readouterr().out


def test_background_errors_show_in_the_view_not_the_thread(shell, sums_nb, monkeypatch,
                                                              capsys):
    def broken(notebook, parameters, **options):
        raise CellpipeError("the docker daemon is not running", hint="start it")

    monkeypatch.setattr(api, "run", broken, raising=False)
    crashed = []
    monkeypatch.setattr(run_view.threading, "excepthook", crashed.append)

    run_command(shell, ["--background"], sums_nb)
    handle = shell.user_ns["_cellpipe_background"]
    with pytest.raises(CellpipeError, match="docker daemon is not running"):
        handle.wait(30)
    assert handle.done and handle.run is None
    assert isinstance(handle.error, CellpipeError)
    assert crashed == []
    assert handle.view.outcome == "error"
    assert "the docker daemon is not running (start it)" in handle.view.status.value
    assert "_cellpipe_run" not in shell.user_ns
    assert "the run stopped: the docker daemon" in capsys.readouterr().err


def test_the_stop_button_stops_a_background_run_and_keeps_what_finished(shell, tmp_path):
    path = write_nb(
        tmp_path,
        ("step:first", "xs = [1, 2]"),
        ("step:hold", "import time\nfor _ in range(3000):\n    time.sleep(0.1)\ntotal = sum(xs)"),
        ("step:after", "double = total * 2"),
    )
    run_command(shell, ["--background"], path)
    handle = shell.user_ns["_cellpipe_background"]
    view = handle.view
    assert view.stop_button.layout.display is None  # shown: the kernel reads its clicks
    deadline = time.monotonic() + 60
    while view.states["hold"]["status"] != "running":
        assert time.monotonic() < deadline and not handle.done, view.states
        time.sleep(0.1)

    view.stop_button.click()
    assert view.stopping and view.stop_button.disabled
    assert view.stop_button.description == "Stopping…"
    began = time.monotonic()
    run = handle.wait(60)
    assert time.monotonic() - began < 30  # not the step's five minutes
    assert run.status == "cancelled" and view.outcome == "cancelled"
    assert run.steps["first"]["status"] == "succeeded"  # kept, for the cache
    assert run.steps["hold"]["status"] == "cancelled"
    assert view.stop_button.layout.display == "none"
    view.stop_button.click()  # after the end: nothing to stop, nothing happens


def test_a_foreground_run_has_no_stop_button(tmp_path):
    view = RunView(tmp_path / "nb.ipynb", ["a"])
    assert view.stop_button.layout.display == "none"


def test_wait_times_out_while_running(shell, tmp_path):
    path = write_nb(tmp_path, ("step:slow", "import time\ntime.sleep(1.5)\nx = 1"))
    run_command(shell, ["--background"], path)
    handle = shell.user_ns["_cellpipe_background"]
    with pytest.raises(TimeoutError):
        handle.wait(0.05)
    assert handle.wait(60).status == "succeeded"


def test_inside_a_pipeline_step_it_refuses_to_start_the_pipeline_again(shell, sums_nb):
    shell.user_ns["__cellpipe_parameters__"] = {"n": 1}  # what the step runtime sets
    try:
        with pytest.raises(CellpipeError, match=r"inside a step .*\(tag the cell `skip`"):
            run_command(shell, [], sums_nb)
    finally:
        del shell.user_ns["__cellpipe_parameters__"]


def test_the_step_runtime_is_recognized(tmp_path):
    # `-p nope=1` fails before anything runs, so a missing guard cannot recurse here
    path = write_nb(tmp_path, ("step:nested", (
        "from pathlib import Path\n"
        "from cellpipe_kernel.run_view import run_command\n"
        "try:\n"
        "    run_command(get_ipython(), ['-p', 'nope=1'], Path('nb.ipynb'))\n"
        "    why = 'ran'\n"
        "except Exception as exc:\n"
        "    why = str(exc)")))
    run = api.run(path, root=tmp_path / ".cellpipe")
    assert run.status == "succeeded"
    assert "running inside a step of a pipeline run" in run.load("why")


def test_through_the_magic(shell, sums_nb):
    shell.run_line_magic("load_ext", "cellpipe")
    shell.run_line_magic("cellpipe", f"run --notebook {sums_nb} -p n=2")
    assert shell.user_ns["_cellpipe_run"].load("total") == 2.0  # (0 + 1) * 2.0
    with pytest.raises(UsageError, match="parameter 'n' is an int; 'two' is not"):
        shell.run_line_magic("cellpipe", f"run --notebook {sums_nb} -p n=two")
