"""Runs the server started: each in a background thread, its state kept from its events.

``api.run`` blocks until the run ends, so it runs in a thread; its ``on_event`` callback
(called in that thread) refreshes the run's state from ``run.json`` (which the engine
saves before every event) and overlays the event. Requests read that state without
touching the disk, and long polls wait on it without holding a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from cellpipe import api
from cellpipe.errors import CellpipeError

# ``api.run`` with everything but ``on_event`` bound.
Runner = Callable[..., Any]


class LiveRun:
    """One run in progress: its id (once the engine made one) and its latest state.

    Attributes:
        notebook: The notebook file.
        root: The runs directory (``.cellpipe``).
        id: The run id, None until the first event.
        version: Grows by one on every change; long polls compare it.
        done: The run's thread has ended.
    """

    def __init__(self, registry: RunRegistry, notebook: Path, root: Path) -> None:
        self.registry = registry
        self.notebook = notebook
        self.root = root
        self.id: str | None = None
        self.version = 0
        self.done = False
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._first_event: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._loop = asyncio.get_running_loop()
        self._waiters: set[asyncio.Future[None]] = set()
        self.cancel = threading.Event()  # set by POST /cellpipe/runs/<id>/cancel

    def execute(self, runner: Runner) -> None:
        """Run the pipeline (in the run's thread); keep the final state."""
        try:
            run = runner(on_event=self._on_event)
        except Exception as exc:
            if not self._settle(error=exc):
                # Too late to answer the request: the engine wrote the failure to run.json.
                self.registry.log.error("cellpipe: run %s of %s ended with an error: %s",
                                        self.id, self.notebook, exc,
                                        exc_info=not isinstance(exc, CellpipeError))
            self._end()
            return
        with self._lock:
            self.id = run.id
            self._data = dict(run.data)
        self._settle(run.id)  # the run may end before any step changed (nothing to run)
        self._end()

    async def started(self, timeout: float) -> str | None:
        """The run id once the run started; the run's error if it failed to start.

        None when it has not started after ``timeout`` seconds (building images, say);
        it keeps going and shows up in the runs list when it does.
        """
        waiting = asyncio.wrap_future(self._first_event)
        done, _ = await asyncio.wait({waiting}, timeout=timeout)
        if not done:
            waiting.cancel()  # nobody waits for the id any more (see _settle)
            return None
        return waiting.result()

    def _settle(self, run_id: str | None = None, error: Exception | None = None) -> bool:
        """Answer the request that started the run; False if it was answered (or gave up)."""
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            if error is not None:
                self._first_event.set_exception(error)
            else:
                self._first_event.set_result(str(run_id))
            return True
        return False

    def state(self) -> dict[str, Any]:
        """A copy of the run's state (``run.json`` with the latest event per step)."""
        with self._lock:
            data = {**self._data, "steps": {k: dict(v)
                                            for k, v in self._data.get("steps", {}).items()}}
        if "started" in data and "finished" not in data:
            data["duration"] = round(time.time() - data["started"], 3)
        return data

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

    def _on_event(self, event: Any) -> None:
        """Called by the engine (in the run's thread) after each step state change."""
        with self._lock:
            if self.id is None:
                self.id = event.run_id
                self.registry.add(self)
            self._data = self._read(event.run_id) or self._data
            steps = self._data.setdefault("steps", {})
            step = steps.setdefault(event.step, {})
            step.update(status=event.status, attempt=event.attempt, elapsed=event.elapsed)
            if event.message:
                step["message"] = event.message
        self._settle(event.run_id)
        self._changed()

    def _read(self, run_id: str) -> dict[str, Any] | None:
        try:
            return dict(api.open_run(run_id, self.root).data)
        except CellpipeError:  # run.json is replaced atomically; a miss keeps the last state
            return None

    def _end(self) -> None:
        self.done = True
        self.registry.discard(self)
        self._changed()

    def _changed(self) -> None:
        with self._lock:
            self.version += 1
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


class RunRegistry:
    """The runs this server started that are still going, by run id."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._runs: dict[str, LiveRun] = {}
        self._lock = threading.Lock()

    async def start(
        self,
        notebook: Path,
        root: Path,
        parameters: Mapping[str, Any],
        *,
        engine: str,
        cache: bool,
        timeout: float,
    ) -> str | None:
        """Start ``api.run`` in a thread; return the run id once the engine made one.

        Raises:
            Exception: What ``api.run`` raised before the run started (a notebook that
                is not a pipeline, a bad parameter value, an unknown engine).
        """
        live = LiveRun(self, notebook, root)
        runner = partial(api.run, str(notebook), dict(parameters), engine=engine, cache=cache,
                         root=root, cancel=live.cancel)
        thread = threading.Thread(target=live.execute, args=(runner,),
                                  name=f"cellpipe-run-{notebook.name}", daemon=True)
        thread.start()
        return await live.started(timeout)

    def get(self, run_id: str, root: Path) -> LiveRun | None:
        """The live run ``run_id`` of the runs directory ``root``, if it is still going."""
        with self._lock:
            live = self._runs.get(run_id)
        return live if live is not None and live.root == root else None

    def live(self) -> list[LiveRun]:
        """Every run still going."""
        with self._lock:
            return list(self._runs.values())

    def add(self, live: LiveRun) -> None:
        """Register a run once its id is known."""
        if live.id is not None:
            with self._lock:
                self._runs[live.id] = live

    def discard(self, live: LiveRun) -> None:
        """Forget a run that ended (its ``run.json`` has the final state)."""
        with self._lock:
            if live.id is not None and self._runs.get(live.id) is live:
                del self._runs[live.id]
