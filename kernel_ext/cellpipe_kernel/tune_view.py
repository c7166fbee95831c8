"""``%cellpipe tune``: tune the notebook's parameters from its own kernel, with a live view.

Trials run as ``cellpipe tune`` runs them (:func:`cellpipe.api.tune`: each trial a run of
the *saved* notebook, its steps in processes, never this kernel). The view is a table of
trials that updates as they start and end, with the best so far; the study is left in the
namespace as ``_cellpipe_study`` (``_cellpipe_study.best_run.load("model")``), the view as
``_cellpipe_tune_view``. Ctrl-C (interrupt the kernel) stops the study; its finished trials
are kept and ``_cellpipe_study`` is still set, to resume with ``--resume NAME``.
"""

from __future__ import annotations

import argparse
import html
import threading
import time
from pathlib import Path
from typing import Any

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe_kernel.notebook import runs_root
from cellpipe_kernel.parsing import HelpShown, MagicParser
from cellpipe_kernel.run_view import in_kernel, parameters_for
from cellpipe_kernel.widgets import format_value

try:
    import ipywidgets as widgets
except ImportError:  # pragma: no cover - ipywidgets comes with cellpipe[kernel]
    widgets = None

__all__ = ["TuneView", "make_parser", "tune_command"]

# (background, text) colours of the trial states.
_STATE_COLOURS = {"RUNNING": ("#fff3cd", "#7a5b00"), "COMPLETE": ("#d4edda", "#155724"),
                  "FAIL": ("#f8d7da", "#721c24"), "WAITING": ("#eceff1", "#455a64")}
_TABLE_ROWS = 30  # the newest trials; the study has them all


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``%cellpipe tune``'s options (those of ``cellpipe tune``)."""
    parser = MagicParser(
        prog="%cellpipe tune", allow_abbrev=False,
        description="Tune the saved notebook's parameters for the best value of a metric "
        "(Optuna; each trial a run, unchanged steps from the cache); the study is "
        "`_cellpipe_study`. Settings missing here come from metadata.cellpipe.tune.")
    parser.add_argument("--objective", metavar="METRIC", help="the metric to optimize")
    way = parser.add_mutually_exclusive_group()
    way.add_argument("--maximize", dest="direction", action="store_const", const="maximize",
                     help="higher is better (the default)")
    way.add_argument("--minimize", dest="direction", action="store_const", const="minimize",
                     help="lower is better")
    parser.add_argument("-p", "--param", dest="space", action="append", default=[],
                        metavar="NAME=SPACE", help="a range: uniform(LOW, HIGH), "
                        "loguniform(LOW, HIGH), int(LOW, HIGH), choice(A, B, ...)")
    parser.add_argument("--set", dest="fixed", action="append", default=[],
                        metavar="NAME=VALUE", help="an untuned parameter's value")
    parser.add_argument("--trials", type=int, help="finished trials wanted [20]")
    parser.add_argument("--parallel", type=int, default=1, help="trials at once [1]")
    parser.add_argument("--sampler", help="tpe, random, grid or cmaes [tpe]")
    parser.add_argument("--seed", type=int, help="seed the sampler")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="start no trial after this long")
    parser.add_argument("--study", help="name the study")
    parser.add_argument("--resume", metavar="STUDY", help="go on with a study")
    parser.add_argument("--no-cache", action="store_true", help="run every step of every trial")
    parser.add_argument("--notebook", help=argparse.SUPPRESS)  # resolved by the dispatcher
    return parser


class TuneView:
    """A live view of a tuning session, fed by ``on_trial(study, trial)``.

    Attributes:
        notebook: The notebook being tuned.
        echo: Print one line per finished trial (when there is no widget frontend).
        trials: The trials seen, by number (``cellpipe.api.Trial``).
        study: The study (once its first trial started).
        outcome: ``done``, ``interrupted`` or ``error`` once ended.
        summary: The line printed at the end.
        widget: The top-level ``VBox`` (None without ipywidgets).
    """

    def __init__(self, notebook: str | Path, *, echo: bool = False) -> None:
        self.notebook = Path(notebook)
        self.echo = echo or widgets is None
        self.trials: dict[int, Any] = {}
        self.study: Any = None
        self.outcome: str | None = None
        self.summary = ""
        self.started = time.monotonic()
        self._lock = threading.RLock()
        self.widget: Any = None
        if widgets is not None:
            self.header = widgets.HTML(self.header_html)
            self.table = widgets.HTML(self.table_html)
            self.status = widgets.HTML("")
            self.widget = widgets.VBox([self.header, self.table, self.status])

    def display(self) -> None:
        """Show the widget in the current cell's output."""
        from IPython.display import display

        display(self.widget)

    @property
    def best(self) -> Any:
        """The best trial so far (None before one completed)."""
        done = [t for t in self.trials.values() if t.state == "COMPLETE"]
        if not done or self.study is None:
            return None
        pick = max if self.study.direction == "maximize" else min
        return pick(done, key=lambda t: (t.value, -t.number))

    @property
    def header_html(self) -> str:
        """The study, how many trials are done, and the best so far."""
        if self.study is None:
            return f"<b>cellpipe tune</b> {html.escape(self.notebook.name)}: starting…"
        done = sum(t.state not in ("RUNNING", "WAITING") for t in self.trials.values())
        text = (f"<b>cellpipe tune</b> study <code>{html.escape(self.study.name)}</code>: "
                f"{html.escape(self.study.objective)} ({self.study.direction}), {done} trials "
                f"done, {time.monotonic() - self.started:.0f}s")
        best = self.best
        if best is not None:
            values = ", ".join(f"{k}={format_value(v)}" for k, v in best.params.items())
            text += (f"; <b>best {format_value(best.value)}</b> (trial {best.number}: "
                     f"{html.escape(values)})")
        return text

    @property
    def table_html(self) -> str:
        """The newest trials as an HTML table: state, values, objective, time, run, reason."""
        names = list((self.study.settings.get("space") or {}) if self.study else ())
        head = "".join(f"<th>{html.escape(c)}</th>" for c in (
            "#", "state", *names, self.study.objective if self.study else "value", "time",
            "run", ""))
        best = self.best
        rows = []
        for trial in sorted(self.trials.values(), key=lambda t: t.number)[-_TABLE_ROWS:]:
            background, colour = _STATE_COLOURS.get(trial.state, ("#eceff1", "#455a64"))
            state = (f'<span style="background:{background};color:{colour};padding:1px 6px;'
                     f'border-radius:3px;font-family:monospace">{trial.state.lower()}</span>')
            if best is not None and trial.number == best.number:
                state += " ★"
            cells = [str(trial.number), state,
                     *[html.escape(format_value(trial.params.get(n, ""))) for n in names],
                     "" if trial.value is None else format_value(trial.value),
                     "" if trial.duration is None else f"{trial.duration:.1f}s",
                     f"<code>{html.escape(trial.run_id or '')}</code>",
                     html.escape((trial.reason or "")[:100])]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def _refresh(self) -> None:
        if self.widget is None:
            return
        self.header.value = self.header_html
        self.table.value = self.table_html
        self.status.value = html.escape(self.summary)

    def on_trial(self, study: Any, trial: Any) -> None:
        """A trial started or ended."""
        with self._lock:
            self.study = study
            self.trials[trial.number] = trial
            if self.echo and trial.state != "RUNNING":
                values = ", ".join(f"{k}={format_value(v)}" for k, v in trial.params.items())
                outcome = (f"{study.objective}={format_value(trial.value)}"
                           if trial.value is not None else trial.reason or "")
                print(f"  trial {trial.number} {trial.state.lower()}: {values}: {outcome}",
                      flush=True)
            self._refresh()

    def finish(self, study: Any) -> None:
        """Show how the study ended: trials, failures, the best; prints the summary."""
        with self._lock:
            self.study, self.outcome = study, "done"
            self.trials = {t.number: t for t in study.trials}
            failed = sum(t.state == "FAIL" for t in study.trials)
            self.summary = f"study {study.name}: {len(study.trials)} trials, {failed} failed"
            best = study.best_trial
            if best is not None:
                self.summary += (f"; best {study.objective}={format_value(best.value)} "
                                 f"(trial {best.number}, run {best.run_id}): {best.params}")
            else:
                self.summary += "; no trial completed"
            self._refresh()
        print(self.summary)

    def fail(self, error: BaseException) -> None:
        """Show that the session stopped: Ctrl-C (resumable) or an error."""
        with self._lock:
            study = getattr(error, "study", None)
            if study is not None:
                self.study = study
                self.trials = {t.number: t for t in study.trials}
            if isinstance(error, KeyboardInterrupt):
                self.outcome = "interrupted"
                name = study.name if study is not None else "STUDY"
                self.summary = (f"study {name} interrupted: its finished trials are kept; go "
                                f"on with %cellpipe tune --resume {name}")
            else:
                self.outcome = "error"
                self.summary = f"tuning stopped: {error}"
            self._refresh()
        print(self.summary)


def tune_command(shell: Any, argv: list[str], notebook: Path) -> Any:
    """``%cellpipe tune [options]``: tune ``notebook`` (the saved file).

    Returns None; the study is ``shell.user_ns["_cellpipe_study"]``.

    Raises:
        UsageError: ``argv`` is not a valid command line.
        CellpipeError: a bad objective, space or sampler (before any trial runs).
        KeyboardInterrupt: Ctrl-C (the study is kept and in the namespace).
    """
    try:
        args = make_parser().parse_args(argv)
    except HelpShown:
        return None
    if api.PARAMETERS_GLOBAL in shell.user_ns:
        raise CellpipeError("%cellpipe tune is running inside a step of a pipeline run",
                            hint="tag the cell `skip` so that pipelines leave it out")
    notebook = Path(notebook)
    spec = api.compile_spec(notebook)
    fixed = parameters_for(shell, spec, args.fixed)
    view = TuneView(notebook, echo=not in_kernel(shell))
    shell.user_ns["_cellpipe_tune_view"] = view
    if in_kernel(shell) and view.widget is not None:
        view.display()
    try:
        study = api.tune(notebook, args.objective, args.direction, args.space or None,
                         args.trials, args.parallel, args.sampler, args.seed,
                         timeout=args.timeout, study=args.study, resume=args.resume,
                         parameters=fixed or None, root=runs_root(notebook),
                         cache=not args.no_cache, on_trial=view.on_trial)
    except BaseException as exc:
        view.fail(exc)
        if isinstance(exc, api.TuningInterrupted):
            shell.user_ns["_cellpipe_study"] = exc.study
        raise
    shell.user_ns["_cellpipe_study"] = study
    view.finish(study)
    return None
