"""A tuning session: trials of one study run one or ``parallel`` at a time (for ``tune``).

Each trial is one ``study.optimize(n_trials=1)`` of Optuna (so its state, values and
sampler bookkeeping are Optuna's own) whose objective is a cellpipe run. Trials run in
threads when ``parallel > 1``: each run's steps are processes, the threads only wait.
Ctrl-C in the main thread stops the session: no trial starts after it, and each running
one is cancelled through its run's ``cancel`` event (its steps are stopped within a
fraction of a second, the run ends ``cancelled``) and is recorded ``FAIL`` as interrupted.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cellpipe.errors import CellpipeError
from cellpipe.tune_study import Study, Trial

if TYPE_CHECKING:
    from cellpipe.core.notebook import Notebook
    from cellpipe.events import StepEvent
    from cellpipe.runs_api import Run
    from cellpipe.tune_api import TuneSettings

__all__ = ["INTERRUPTED", "OnTrial", "TrialFailed", "TrialSession", "TuningInterrupted",
           "close_stale"]

INTERRUPTED = "interrupted (Ctrl-C); a resumed study runs it again"

OnTrial = Callable[[Study, Trial], None]


class TuningInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a tuning session; its finished trials are in the study.

    Attributes:
        study: The study, to resume with ``resume=study.name``.
    """

    def __init__(self, study: Study) -> None:
        super().__init__(f"tuning of study {study.name!r} interrupted")
        self.study = study


class TrialFailed(Exception):
    """A trial that ran but gave no usable objective value (Optuna records it FAIL)."""


class TrialSession:
    """Runs trials of one study, one or ``parallel`` at a time, until the budget is spent."""

    def __init__(self, study: Study, notebook: Notebook, settings: TuneSettings, root: Path,
                 *, cache: bool, workers: int | None, on_trial: OnTrial | None,
                 track: str | bool | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.study = study
        self.notebook = notebook
        self.settings = settings
        self.root = root
        self.run_options: dict[str, Any] = {"root": root, "cache": cache, "workers": workers,
                                            "track": track}
        self.on_trial = on_trial
        self.stop = cancel if cancel is not None else threading.Event()
        self.lock = threading.Lock()  # the budget
        self.notify_lock = threading.Lock()  # on_trial, one call at a time
        self.budget = 0
        self.deadline: float | None = None

    def drive(self, count: int, parallel: int, timeout: float | None) -> None:
        """Run ``count`` trials (``parallel`` at once); no new one after ``timeout`` seconds.

        Raises:
            TuningInterrupted: Ctrl-C; the trials it stopped are recorded as interrupted.
        """
        self.budget = count
        self.deadline = None if timeout is None else time.monotonic() + timeout
        with quiet_optuna():
            try:
                if parallel == 1 or count <= 1:
                    while self.take():
                        self.one()
                    return
                if not self.study.trials_in("COMPLETE", "FAIL") and self.take():
                    self.one()  # alone: it caches the steps no tuned parameter reaches
                # Enqueued trials (an interrupted one, again) one at a time: on SQLite two
                # threads can both take the same waiting trial from Optuna.
                while self.study.trials_in("WAITING") and self.take():
                    self.one()
                self.parallel(parallel)
            except KeyboardInterrupt as exc:
                close_stale(self.study)  # a trial Ctrl-C caught inside Optuna, not a run
                raise TuningInterrupted(self.study) from exc

    def take(self) -> bool:
        """Claim one trial of the budget (False: spent, stopped, or past the timeout)."""
        with self.lock:
            late = self.deadline is not None and time.monotonic() >= self.deadline
            if self.budget <= 0 or self.stop.is_set() or late:
                return False
            self.budget -= 1
            return True

    def parallel(self, parallel: int) -> None:
        """Run the budget's trials in ``parallel`` threads; Ctrl-C here stops them all."""
        def worker() -> None:
            try:
                while self.take():
                    self.one()
            except KeyboardInterrupt:
                return  # self.stop stopped its run; the trial is recorded

        with concurrent.futures.ThreadPoolExecutor(parallel, "cellpipe-trial") as pool:
            # each thread in a copy of this context: its trials are children of the
            # tracked study's MLflow run (cellpipe.tracking.parent_run), as in this thread
            futures = [pool.submit(contextvars.copy_context().run, worker)
                       for _ in range(min(parallel, self.budget))]
            try:
                while not all(f.done() for f in futures):
                    concurrent.futures.wait(futures, timeout=0.25)
            except KeyboardInterrupt:
                self.stop.set()  # cancels each running trial's run (RunOptions.cancel)
                concurrent.futures.wait(futures)
                raise
            for future in futures:
                future.result()

    def one(self) -> None:
        """Run one trial through Optuna (``optimize`` of one trial records its state)."""
        numbers: list[int] = []

        def ended(_: Any, frozen: Any) -> None:
            self.notify(Trial.from_frozen(frozen, self.root))

        try:
            self.study.optuna_study.optimize(
                lambda trial: self.objective(trial, numbers), n_trials=1,
                catch=(TrialFailed,), callbacks=[ended], gc_after_trial=False)
        except KeyboardInterrupt:
            if numbers:
                frozen = self.study.optuna_study.get_trials(deepcopy=False)[numbers[0]]
                self.notify(Trial.from_frozen(frozen, self.root))
            raise

    def objective(self, trial: Any, numbers: list[int]) -> float:
        """Optuna's objective: run the notebook with the trial's values; the metric's value.

        Raises:
            TrialFailed: the run failed or gave no usable value (the reason is recorded).
            KeyboardInterrupt: Ctrl-C (or the session's stop) cancelled the run.
        """
        from cellpipe.runs_api import run

        numbers.append(trial.number)
        values = {d.name: d.suggest(trial) for d in self.settings.space}
        self.notify(Trial(trial.number, values, None, "RUNNING", root=self.root))
        seen: list[str] = []

        def on_event(event: StepEvent) -> None:
            if not seen:
                seen.append(event.run_id)
                trial.set_user_attr("run_id", event.run_id)

        try:
            with self.child(trial.number, values):
                result = run(self.notebook, {**self.settings.parameters, **values},
                             on_event=on_event, cancel=self.stop, **self.run_options)
            if result.status == "cancelled" and self.stop.is_set():
                raise KeyboardInterrupt  # the session's Ctrl-C, in a trial thread
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("reason", INTERRUPTED)
            raise
        except CellpipeError as exc:
            self.fail(trial, f"the run did not start: {exc}")
        trial.set_user_attr("run_id", result.id)
        return self.value_of(trial, result)

    def child(self, number: int, values: Mapping[str, Any]
              ) -> contextlib.AbstractContextManager[None]:
        """Inside a tracked study, name the trial's MLflow run after its values."""
        from cellpipe.tracking import active_parent

        parent = active_parent()
        if parent is None:
            return contextlib.nullcontext()
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        return parent.child(name=f"trial {number}: {shown}",
                            tags={"cellpipe.kind": "tune-trial", "cellpipe.trial": str(number),
                                  "cellpipe.study": self.study.name})

    def value_of(self, trial: Any, result: Run) -> float:
        """The objective's value in ``result``; a failed trial when it has none."""
        import math

        name = self.settings.objective
        if result.status != "succeeded":
            failed = [(step, state) for step, state in result.steps.items()
                      if state.get("status") == "failed"]
            if failed:
                step, state = failed[0]
                message = (state.get("error") or {}).get("message") or state.get("message")
                self.fail(trial, f"step {step} failed: {message or 'see its log'}")
            self.fail(trial, f"the run {result.status}")
        value = result.metrics.get(name)
        if name not in result.metrics:
            found = ", ".join(sorted(result.metrics)) or "none"
            self.fail(trial, f"the run reported no metric {name!r} (it reported: {found})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(trial, f"metric {name!r} is {value!r}, not a number")
        if not math.isfinite(value):
            self.fail(trial, f"metric {name!r} is {value}, not a finite number")
        return float(value)

    def fail(self, trial: Any, reason: str) -> NoReturn:
        """Record why ``trial`` failed and end it as ``FAIL``."""
        trial.set_user_attr("reason", reason)
        raise TrialFailed(reason)

    def notify(self, trial: Trial) -> None:
        """Tell ``on_trial`` (one call at a time, also from the trial threads)."""
        if self.on_trial is not None:
            with self.notify_lock:
                self.on_trial(self.study, trial)


class DropTrialFailures(logging.Filter):
    """Optuna logs each failed trial with a traceback; cellpipe reports the reason itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Trial ") and " failed " in message)


# Where Optuna logs each failed trial (with a traceback); records are dropped at the source.
_TRIAL_LOGGERS = ("optuna.study._optimize", "optuna.study._tell")


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's "Trial N failed" warnings left out while trials run (cellpipe says why)."""
    dropped = DropTrialFailures()
    for name in _TRIAL_LOGGERS:
        logging.getLogger(name).addFilter(dropped)
    try:
        yield
    finally:
        for name in _TRIAL_LOGGERS:
            logging.getLogger(name).removeFilter(dropped)


def close_stale(study: Study) -> None:
    """Trials left ``RUNNING`` by a session that ended: ``FAIL``, read as interrupted.

    One session runs a study at a time, so a running trial it does not run is stale: its
    session was killed, or Ctrl-C came while Optuna (not the trial's run) had it.
    """
    from cellpipe.tune_study import import_optuna

    failed = import_optuna().trial.TrialState.FAIL
    for trial in study.trials_in("RUNNING"):
        # the grid sampler may ask to stop, outside optimize(): a RuntimeError, state stored
        with contextlib.suppress(RuntimeError):
            study.optuna_study.tell(trial.number, state=failed, skip_if_finished=True)
