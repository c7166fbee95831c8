"""The live view of a ``%cellpipe run``: progress, step states, metrics and step reports.

:class:`RunView` keeps its state in plain data (``states``, ``outcome``, ``summary``) and
mirrors it into ipywidgets, so it can be tested without a browser and still works where
ipywidgets is not installed (then it prints one line per state change instead).

Widget traits may be set from any thread: ipykernel sends the resulting comm messages
through its IOPub thread. What does not work while a run blocks the cell (foreground
mode) is the other direction: the kernel reads frontend events (the report picker) only
between cells, so the picker answers once the run has ended, or at once in
``--background`` mode.
"""

from __future__ import annotations

import contextlib
import html
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cellpipe import api
from cellpipe.errors import CellpipeError

try:
    import ipywidgets as widgets
except ImportError:  # pragma: no cover - ipywidgets comes with cellpipe[kernel]
    widgets = None

# Where a step is for good (the progress bar counts these).
FINAL_STATES = frozenset({"succeeded", "cached", "failed", "skipped", "blocked", "cancelled"})
# Steps that ran (or were reused) leave a log and a report to look at.
REPORT_STATES = frozenset({"succeeded", "cached", "failed"})
# (background, text) colours of the state badges.
_BADGE_COLOURS = {
    "pending": ("#eceff1", "#455a64"),
    "running": ("#fff3cd", "#7a5b00"),
    "retrying": ("#ffe0b2", "#8a4b00"),
    "succeeded": ("#d4edda", "#155724"),
    "cached": ("#d1ecf1", "#0c5460"),
    "failed": ("#f8d7da", "#721c24"),
    "blocked": ("#f8d7da", "#721c24"),
    "skipped": ("#eceff1", "#455a64"),
    "cancelled": ("#e2d9f3", "#4b2c83"),
    "error": ("#f8d7da", "#721c24"),
}
_BAR_STYLES = {"succeeded": "success", "failed": "danger", "cancelled": "warning",
               "error": "danger"}
_PICK = "choose a finished step"


def badge(status: str) -> str:
    """An HTML badge: the state's name on its colour."""
    background, colour = _BADGE_COLOURS.get(status, ("#eceff1", "#455a64"))
    return (f'<span style="background:{background};color:{colour};padding:1px 6px;'
            f'border-radius:3px;font-family:monospace">{html.escape(status)}</span>')


def format_value(value: Any) -> str:
    """A metric value as the CLI prints it (floats to 4 significant digits)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class RunView:
    """A live view of one run, fed by the engine's ``StepEvent`` s.

    Attributes:
        notebook: The notebook being run.
        steps: Step names in spec order (one table row each).
        engine: ``local`` or ``docker``.
        root: The ``.cellpipe`` directory of the run (to find reports while it runs).
        echo: Print one line per state change (when there is no widget frontend).
        states: Per step: ``status``, ``attempt``, ``elapsed`` (seconds) and ``message``.
        run_id: The run's id, once the first event told it.
        run: The ended ``Run`` (set by :meth:`finish`).
        outcome: ``succeeded``, ``failed``, ``cancelled`` or ``error`` once ended.
        summary: The one-line summary printed at the end.
        report_source: What the report area shows: ``report``, ``log`` or ``none``.
        stopping: Stop was clicked (the run is ending its steps).
        widget: The top-level ``VBox`` (None without ipywidgets).
    """

    def __init__(
        self,
        notebook: str | Path,
        steps: Sequence[str],
        *,
        engine: str = "local",
        root: Path | None = None,
        echo: bool = False,
    ) -> None:
        self.notebook = Path(notebook)
        self.steps = list(steps)
        self.engine = engine
        self.root = root
        self.echo = echo or widgets is None
        self.states: dict[str, dict[str, Any]] = {
            s: {"status": "pending", "attempt": 0, "elapsed": 0.0, "message": ""}
            for s in self.steps
        }
        self.run_id: str | None = None
        self.run: Any = None
        self.outcome: str | None = None
        self.summary = ""
        self.report_source = "none"
        self._error = ""
        self._started: dict[str, float] = {}
        self._run_dir: Path | None = None
        self._display: Any = None
        self._choices: list[str] = []
        self._quiet = False
        self._lock = threading.RLock()
        self._stop: Any = None
        self.stopping = False
        self.widget: Any = None
        if widgets is not None:
            self._build()

    # -- widgets --------------------------------------------------------------------------

    def _build(self) -> None:
        assert widgets is not None
        self.header = widgets.HTML(self._header_html())
        self.progress = widgets.IntProgress(value=0, min=0, max=len(self.steps),
                                            bar_style="info",
                                            layout=widgets.Layout(width="320px"))
        self.progress_label = widgets.Label(self._progress_text())
        self.table = widgets.HTML(self.table_html)
        self.status = widgets.HTML("")
        self.metrics = widgets.HTML("")
        self.picker = widgets.Dropdown(options=[(_PICK, "")], value="", description="report:",
                                       disabled=True, layout=widgets.Layout(width="360px"))
        self.picker.observe(self._picked, names="value")
        self.report = widgets.HTML("")
        # shown for a run in the background (allow_stop): a foreground run blocks the
        # kernel, which then reads no click until the run has ended
        self.stop_button = widgets.Button(description="Stop", button_style="warning",
                                          icon="stop", tooltip="stop the run; the steps "
                                          "that finished stay cached",
                                          layout=widgets.Layout(display="none"))
        self.stop_button.on_click(self._stop_clicked)
        self.widget = widgets.VBox([
            self.header,
            widgets.HBox([self.progress, self.progress_label, self.stop_button]),
            self.table, self.status, self.metrics, self.picker, self.report,
        ])

    def allow_stop(self, stop: Any) -> None:
        """Show a Stop button that calls ``stop()`` (a run in the background)."""
        self._stop = stop
        if self.widget is not None:
            self.stop_button.layout.display = None

    def _stop_clicked(self, _button: Any = None) -> None:
        if self._stop is None or self.outcome:
            return
        self._stop()
        self.stopping = True
        if self.widget is not None:
            self.stop_button.disabled = True
            self.stop_button.description = "Stopping…"

    def _refresh(self) -> None:
        if self.widget is None:
            return
        if self.outcome:
            self.stop_button.layout.display = "none"  # ended: nothing to stop
        self.header.value = self._header_html()
        self.progress.value = self.finished_count
        self.progress_label.value = self._progress_text()
        if self.outcome:
            self.progress.bar_style = _BAR_STYLES.get(self.outcome, "info")
        self.table.value = self.table_html
        self.status.value = self.status_html
        self.metrics.value = self.metrics_html
        choices = self.report_steps()
        if choices != self._choices:
            # New options select the placeholder: keep the step being looked at, quietly.
            keep, self._choices, self._quiet = self.picker.value, choices, True
            try:
                self.picker.options = [(_PICK, ""), *((name, name) for name in choices)]
                if keep in choices:
                    self.picker.value = keep
            finally:
                self._quiet = False
        self.picker.disabled = not choices

    def _picked(self, change: Mapping[str, Any]) -> None:
        step = change.get("new")
        if step and not self._quiet:
            self.show_report(str(step))

    # -- state ----------------------------------------------------------------------------

    @property
    def finished_count(self) -> int:
        """Steps in a final state (the progress bar's value; its max is ``len(steps)``)."""
        return sum(1 for s in self.states.values() if s["status"] in FINAL_STATES)

    def report_steps(self) -> list[str]:
        """Steps with a report or log to show, in spec order."""
        return [s for s in self.steps if self.states[s]["status"] in REPORT_STATES]

    def on_event(self, event: Any) -> None:
        """Take one ``StepEvent`` (run_id, step, status, attempt, elapsed, message)."""
        with self._lock:
            self.run_id = self.run_id or event.run_id
            state = self.states.setdefault(event.step, {"status": "pending", "attempt": 0,
                                                        "elapsed": 0.0, "message": ""})
            if event.step not in self.steps:
                self.steps.append(event.step)
            now = time.monotonic()
            if event.status == "running":
                self._started[event.step] = now
            elapsed = float(event.elapsed or 0.0)
            if not elapsed and event.status != "running" and event.step in self._started:
                elapsed = now - self._started[event.step]
            state.update({"status": event.status, "attempt": int(event.attempt or 0),
                          "elapsed": round(elapsed, 3), "message": event.message or ""})
            if self.echo:
                timing = f" {elapsed:.2f}s" if elapsed else ""
                suffix = f" ({event.message})" if event.message else ""
                print(f"  {event.step}: {event.status}{timing}{suffix}", flush=True)
            self._refresh()

    def finish(self, run: Any) -> None:
        """Show how ``run`` ended (status, duration, metrics); prints the summary line."""
        with self._lock:
            self.run = run
            self.run_id = run.id
            self._run_dir = Path(run.path)
            for name, state in run.steps.items():
                mine = self.states.setdefault(name, {"status": "pending", "attempt": 0,
                                                     "elapsed": 0.0, "message": ""})
                if name not in self.steps:
                    self.steps.append(name)
                message = state.get("message") or (state.get("error") or {}).get("message", "")
                mine["status"] = state.get("status", mine["status"])
                mine["message"] = message or ("" if mine["status"] in REPORT_STATES
                                              else mine["message"])
                if state.get("attempts"):
                    mine["attempt"] = int(state["attempts"])
                if state.get("duration") is not None:
                    mine["elapsed"] = float(state["duration"])
            self.outcome = run.status
            duration = float(run.data.get("duration") or 0.0)
            self.summary = f"run {run.id} {run.status} in {duration:.2f}s"
            if run.metrics:
                self.summary += "; metrics: " + ", ".join(
                    f"{k}={format_value(v)}" for k, v in run.metrics.items())
            failed = [s for s in self.steps if self.states[s]["status"] == "failed"]
            self._refresh()
            if failed and self.widget is not None:
                self.picker.value = failed[0]  # shows its report (or log)
        self._print_end(failed)

    def fail(self, error: BaseException) -> None:
        """Show that the run stopped with ``error`` (Ctrl-C: ``cancelled``)."""
        with self._lock:
            cancelled = isinstance(error, KeyboardInterrupt)
            self.outcome = "cancelled" if cancelled else "error"
            if self.run_id is not None:  # the engine cancels what had not ended
                for state in self.states.values():
                    if state["status"] in ("pending", "running", "retrying"):
                        state["status"] = "cancelled"
            self._error = "interrupted" if cancelled else (
                str(error) if isinstance(error, CellpipeError)
                else f"{type(error).__name__}: {error}")
            run = f"run {self.run_id}" if self.run_id else "the run"
            self.summary = f"{run} {'cancelled' if cancelled else 'stopped'}: {self._error}"
            self._refresh()
        self._print_end([])

    def _print_end(self, failed: list[str]) -> None:
        lines = [self.summary]
        for step in failed:
            lines.append(f"  {step}: {self.states[step]['message'] or 'failed'} "
                         f"(its log: _cellpipe_run.log({step!r}))")
        print("\n".join(lines), file=sys.stdout if self.outcome == "succeeded" else sys.stderr,
              flush=True)
        if self._display is not None:
            with contextlib.suppress(Exception):  # the display is a courtesy
                self._display.update(self)

    # -- reports --------------------------------------------------------------------------

    def step_dir(self, step: str) -> Path | None:
        """Where ``step``'s log and report are (None until the run directory is known)."""
        if self._run_dir is None and self.run_id and self.root is not None:
            try:
                self._run_dir = Path(api.open_run(self.run_id, self.root).path)
            except CellpipeError:
                return None
        return None if self._run_dir is None else api.RunLayout(self._run_dir).step(step).path

    def show_report(self, step: str) -> str:
        """Show ``step``'s HTML report (or, until it is rendered, its log); returns the HTML."""
        with self._lock:
            return self._show_report(step)

    def _show_report(self, step: str) -> str:
        directory = self.step_dir(step)
        try:  # rendered to HTML on first view (runs leave the report as a notebook)
            report = api.report_html(directory) if directory else None
        except CellpipeError:  # no nbconvert: the log stands in
            report = None
        log = api.StepLayout(directory).log if directory else None
        if report is not None and report.is_file():
            self.report_source = "report"
            page = report.read_text(encoding="utf-8", errors="replace")
            shown = (f'<iframe srcdoc="{html.escape(page, quote=True)}" '
                     'sandbox="allow-scripts allow-popups" '
                     'style="width:100%;height:520px;border:1px solid #ccc"></iframe>')
        elif log is not None and log.is_file():
            self.report_source = "log"
            text = log.read_text(encoding="utf-8", errors="replace")
            shown = (f"<p>step <b>{html.escape(step)}</b>: its report is not rendered "
                     f"(yet); its log:</p><pre style='max-height:400px;overflow:auto'>"
                     f"{html.escape(text)}</pre>")
        else:
            self.report_source = "none"
            shown = f"<p>step <b>{html.escape(step)}</b> has no report or log (yet).</p>"
        if self.widget is not None:
            self.report.value = shown
        return shown

    # -- rendering ------------------------------------------------------------------------

    def _header_html(self) -> str:
        run = f"run <code>{html.escape(self.run_id)}</code>" if self.run_id else "starting"
        return (f"<b>cellpipe run</b> &middot; {html.escape(self.notebook.name)} &middot; "
                f"{run} &middot; engine {html.escape(self.engine)}")

    def _progress_text(self) -> str:
        return f"{self.finished_count} / {len(self.steps)} steps"

    @property
    def table_html(self) -> str:
        """The per-step table: step, state badge, attempt, elapsed seconds, message."""
        now = time.monotonic()
        rows = []
        for step in self.steps:
            state = self.states[step]
            elapsed = state["elapsed"]
            if state["status"] in ("running", "retrying") and step in self._started:
                elapsed = now - self._started[step]
            message = str(state["message"])
            short = message if len(message) <= 160 else message[:159] + "…"
            rows.append(
                f"<tr><td><code>{html.escape(step)}</code></td><td>{badge(state['status'])}</td>"
                f"<td style='text-align:right'>{state['attempt'] or ''}</td>"
                f"<td style='text-align:right'>{f'{elapsed:.1f}s' if elapsed else ''}</td>"
                f"<td title='{html.escape(message, quote=True)}'>{html.escape(short)}</td></tr>")
        head = ("<tr><th style='text-align:left'>step</th><th style='text-align:left'>state"
                "</th><th>attempt</th><th>elapsed</th><th style='text-align:left'>message"
                "</th></tr>")
        return f"<table>{head}{''.join(rows)}</table>"

    @property
    def status_html(self) -> str:
        """The end status (empty while running)."""
        if not self.outcome:
            return ""
        if self.run is not None:
            duration = float(self.run.data.get("duration") or 0.0)
            return (f"<p>{badge(self.outcome)} run <code>{html.escape(self.run.id)}</code> "
                    f"{html.escape(self.outcome)} in {duration:.2f}s</p>")
        return f"<p>{badge(self.outcome)} {html.escape(self.summary)}</p>"

    @property
    def metrics_html(self) -> str:
        """The run's metrics as a table (empty until the run ended with metrics)."""
        metrics = self.run.metrics if self.run is not None else {}
        if not metrics:
            return ""
        rows = "".join(f"<tr><td><code>{html.escape(str(k))}</code></td>"
                       f"<td style='text-align:right'>{html.escape(format_value(v))}</td></tr>"
                       for k, v in metrics.items())
        return ("<table><tr><th style='text-align:left'>metric</th><th>value</th></tr>"
                f"{rows}</table>")

    def text(self) -> str:
        """The view as plain text (for logs and frontends without widgets)."""
        with self._lock:
            run = self.run_id or "(starting)"
            lines = [f"cellpipe run {run} of {self.notebook.name} (engine {self.engine}): "
                     f"{self.finished_count}/{len(self.steps)} steps done"]
            width = max((len(s) for s in self.steps), default=0)
            for step in self.steps:
                state = self.states[step]
                elapsed = f" {state['elapsed']:.2f}s" if state["elapsed"] else ""
                message = f" ({state['message']})" if state["message"] else ""
                lines.append(f"  {step:<{width}}  {state['status']}{elapsed}{message}")
            if self.summary:
                lines.append(self.summary)
            return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if self.widget is not None:
            bundle.update(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()
        return bundle

    def display(self) -> None:
        """Display the view; its output is updated in place when the run ends."""
        from IPython.display import display

        self._display = display(self, display_id=True)
