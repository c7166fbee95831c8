"""Tuning studies the server started: each in a background thread, followed by long polls.

``api.tune`` blocks until the study's trials have run, so it runs in a thread; its
``on_trial`` callback (called in that thread when a trial starts and when it ends) bumps
the study's ``version`` and wakes the requests waiting on it. The trials themselves are
read from the study's SQLite file (Optuna's storage) when a request asks, so the answer
of a live study and of one that ended long ago are made the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cellpipe import api
from cellpipe.errors import CellpipeError

# ``api.tune`` with everything but ``on_trial`` and ``cancel`` bound.
Tuner = Callable[..., Any]


class LiveStudy:
    """One study started by this server: its name (once Optuna made it) and its session.

    Attributes:
        notebook: The notebook file.
        root: The runs directory (``.cellpipe``) the study and its trials' runs are in.
        name: The study's name, None until its first trial started.
        study: The :class:`~cellpipe.tune_study.Study` the session drives.
        version: Grows by one on every trial change; long polls compare it.
        done: The study's thread has ended.
        error: Why the session ended early (after the request that started it was answered).
        cancel: Set by ``POST /cellpipe/tune/<study>/cancel``: the session stops.
    """

    def __init__(self, registry: StudyRegistry, notebook: Path, root: Path) -> None:
        self.registry = registry
        self.notebook = notebook
        self.root = root
        self.name: str | None = None
        self.study: Any = None
        self.version = 0
        self.done = False
        self.error: str | None = None
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self._first: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Future[None]] = set()

    def execute(self, tuner: Tuner) -> None:
        """Run the study (in its thread) until its trials ran, it was cancelled or failed."""
        try:
            study = tuner(on_trial=self._on_trial, cancel=self.cancel)
        except api.TuningInterrupted as stopped:  # cancelled: the finished trials are kept
            self._known(stopped.study)
        except Exception as exc:
            if not self._settle(error=exc):
                self.error = str(exc)
                self.registry.log.error("cellpipe: study %s of %s ended with an error: %s",
                                        self.name, self.notebook, exc,
                                        exc_info=not isinstance(exc, CellpipeError))
        else:
            self._known(study)
        self.done = True
        self._changed()

    async def started(self, timeout: float) -> str | None:
        """The study's name once its first trial started; its error if it did not start.

        None when no trial started after ``timeout`` seconds; the study goes on.
        """
        waiting = asyncio.wrap_future(self._first)
        done, _ = await asyncio.wait({waiting}, timeout=timeout)
        if not done:
            waiting.cancel()
            return None
        return waiting.result()

    async def changed(self, since: int, timeout: float) -> None:
        """Return when ``version`` differs from ``since``, or after ``timeout`` seconds."""
        if self.version != since or self.done:
            return
        waiter = self._loop.create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            self._waiters.discard(waiter)

    def _on_trial(self, study: Any, trial: Any) -> None:
        self._known(study)
        self._changed()

    def _known(self, study: Any) -> None:
        with self._lock:
            if self.name is None:
                self.name, self.study = study.name, study
                self.registry.add(self)
        self._settle(study.name)

    def _settle(self, name: str | None = None, error: Exception | None = None) -> bool:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            if error is not None:
                self._first.set_exception(error)
            else:
                self._first.set_result(str(name))
            return True
        return False

    def _changed(self) -> None:
        with self._lock:
            self.version += 1
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


class StudyRegistry:
    """The studies this server started (running or ended), by runs root and name."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._studies: dict[tuple[Path, str], LiveStudy] = {}
        self._lock = threading.Lock()

    async def start(self, notebook: Path, root: Path, options: dict[str, Any], *,
                    timeout: float) -> str | None:
        """Start ``api.tune`` in a thread; return the study's name once a trial started.

        Raises:
            Exception: What ``api.tune`` raised before any trial ran (a bad objective,
                direction, sampler or space; trials below 1).
        """
        live = LiveStudy(self, notebook, root)

        def tuner(**hooks: Any) -> Any:
            return api.tune(str(notebook), root=root, **options, **hooks)

        thread = threading.Thread(target=live.execute, args=(tuner,),
                                  name=f"cellpipe-tune-{notebook.name}", daemon=True)
        thread.start()
        return await live.started(timeout)

    def get(self, name: str, root: Path) -> LiveStudy | None:
        """The study ``name`` of runs root ``root`` if this server started it."""
        with self._lock:
            return self._studies.get((root, name))

    def live(self) -> list[LiveStudy]:
        """Every study still running."""
        with self._lock:
            return [s for s in self._studies.values() if not s.done]

    def add(self, live: LiveStudy) -> None:
        """Register a study once its name is known."""
        if live.name is not None:
            with self._lock:
                self._studies[(live.root, live.name)] = live


def study_view(study: Any, live: LiveStudy | None) -> dict[str, Any]:
    """What GET /cellpipe/tune/<study> answers: settings, trials, the best one, whether live."""
    settings = study.settings
    trials = study.trials
    best = study.best_trial
    view: dict[str, Any] = {
        "study": study.name,
        "settings": {"objective": study.objective, "direction": study.direction,
                     "space": dict(settings.get("space") or {}),
                     "sampler": settings.get("sampler"), "seed": settings.get("seed"),
                     "trials": settings.get("trials")},
        "trials": [trial_view(t) for t in trials],
        "best": None if best is None else {"number": best.number, "params": best.params,
                                           "value": best.value, "run": best.run_id},
        "live": live is not None and not live.done,
    }
    if live is not None:
        view["version"] = live.version
        if live.error:
            view["error"] = live.error
    return view


def trial_view(trial: Any) -> dict[str, Any]:
    """One trial: its number, values, objective value, state, run id (and why it failed)."""
    view = {"number": trial.number, "params": trial.params, "value": trial.value,
            "state": trial.state, "run": trial.run_id}
    if trial.reason:
        view["reason"] = trial.reason
    if trial.duration is not None:
        view["duration"] = round(trial.duration, 3)
    return view
