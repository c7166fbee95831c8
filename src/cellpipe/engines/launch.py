"""What an engine's launcher is given and gives back.

The options of a run, one step's launch, and the handle of a started step. The scheduler
(``engines.scheduler``) is the same for every engine; an engine supplies a
:class:`Launcher`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cellpipe.core.layout import ROOT_NAME
from cellpipe.events import StepEvent

__all__ = ["Launcher", "RunOptions", "StepHandle", "StepLaunch"]


@dataclass
class RunOptions:
    """How to run.

    Attributes:
        parameters: Values for the notebook's parameters (already typed).
        workers: Steps at most at once (default: CPU count).
        cache: Reuse unchanged steps' results.
        selected: Only these steps run; the others must come from the cache.
        resume: Id of a run to complete in place.
        root: The ``.cellpipe`` directory.
        notebook_dir: Working directory of the steps.
        on_event: Called on every step state change.
        runtime: ``ipython`` (default) or ``kernel`` (each step in a Jupyter kernel).
        cancel: Set it (from any thread) to stop the run: the running steps are ended,
            the run is recorded ``cancelled``, and the steps that finished stay cached.
        on_end: Called with the run's record once it has ended (succeeded, failed or
            cancelled) and ``run.json`` holds its final state; what it raises is not the
            run's failure (the MLflow tracking of :mod:`cellpipe.tracking` listens here).
    """

    parameters: Mapping[str, Any] = field(default_factory=dict)
    workers: int | None = None
    cache: bool = True
    selected: set[str] | None = None
    resume: str | None = None
    root: Path = Path(ROOT_NAME)
    notebook_dir: Path = Path(".")
    runtime: str = "ipython"
    on_event: Callable[[StepEvent], None] | None = None
    cancel: threading.Event | None = None
    on_end: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class StepLaunch:
    """What a launcher needs to start one attempt of one step.

    Attributes:
        step: The step's name.
        argv: Arguments of ``python -m cellpipe.runtime`` (paths are absolute).
        log: The step's log file; the step's stdout and stderr are appended to it.
        step_dir: The step's directory in the run (result, report).
        run_dir: The run's directory (spec, parameters, artifacts).
        input_stores: Stores of earlier runs this step reads (reused cached results).
    """

    step: str
    argv: list[str]
    log: Path
    step_dir: Path
    run_dir: Path
    input_stores: tuple[str, ...] = ()


class StepHandle(Protocol):
    """A started step: something :func:`multiprocessing.connection.wait` can wait on."""

    @property
    def sentinel(self) -> Any:
        """A file descriptor (or object with ``fileno``) that is ready when the step ends."""

    @property
    def exitcode(self) -> int | None:
        """The exit code once ended (negative: killed by that signal)."""

    @property
    def failure_message(self) -> str | None:
        """Why the step ended, when the engine knows better than the exit code (OOM)."""

    def join(self, timeout: float | None = None) -> None:
        """Wait for the step to end (``exitcode`` is set after)."""

    def stop(self) -> None:
        """End the step now (terminate, then kill) and wait for it."""

    def describe(self) -> dict[str, Any]:
        """Fields recorded in the step's state (``pid``, ``container``, …)."""


class Launcher(Protocol):
    """How an engine starts steps."""

    def fingerprint(self, step: str) -> str:
        """What a step's results depend on besides code, inputs and parameters."""

    def start(self, launch: StepLaunch) -> StepHandle:
        """Start one attempt of a step."""
