"""The local engine: each step a process on this machine, independent steps in parallel.

Step processes fork from a warm server (:mod:`cellpipe.engines.local.warm`) that imported
IPython, the runtime and the notebook's installed modules once and built the step shell,
so a step costs little more than its code. The server is started while the notebook is
analyzed (:meth:`LocalEngine.warm_up`) and kept for a short idle time after the run, so
the next run of the same environment and module set starts warm. Where fork or Unix
sockets are not available, or the server cannot start, steps are spawned fresh.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cellpipe.core.spec import PipelineSpec
from cellpipe.engines.local.warm import WarmServer, preload_modules
from cellpipe.engines.scheduler import (
    Engine,
    Launcher,
    RunOptions,
    StepEvent,
    StepHandle,
    StepLaunch,
    check_selection,
)

__all__ = ["LocalEngine", "RunOptions", "StepEvent", "check_selection"]


class LocalEngine(Engine):
    """Runs each step as a process forked from a warm server (or spawned)."""

    name = "local"

    def __init__(self) -> None:
        self._server: WarmServer | None = None

    def warm_up(self, sources: Iterable[str], notebook_dir: Path) -> None:
        """Start (or find) the warm server for these cells now; it loads while we analyze."""
        self._server = _server(preload_modules(sources, notebook_dir))

    def _launcher(self, spec: PipelineSpec, options: RunOptions) -> Launcher:
        server = self._server
        if server is None:
            sources = [cell.source for step in spec.steps for cell in step.cells]
            sources += [line for step in spec.steps for line in step.imports]
            server = _server(preload_modules(sources, options.notebook_dir))
        return _ProcessLauncher(server, options)


def _server(preload: list[str]) -> WarmServer | None:
    """The warm server for ``preload``, started if needed; None where none can run."""
    if not hasattr(os, "fork") or sys.platform == "win32":
        return None
    try:
        return WarmServer(preload).start()
    except OSError as exc:
        print(f"cellpipe: steps start without a warm server ({exc})", file=sys.stderr)
        return None


class _ProcessLauncher:
    def __init__(self, server: WarmServer | None, options: RunOptions) -> None:
        from cellpipe.runtime.execute import environment_fingerprint

        self.server = server
        self.options = options
        self._fingerprint = environment_fingerprint()

    def fingerprint(self, step: str) -> str:
        return self._fingerprint

    def start(self, launch: StepLaunch) -> StepHandle:
        cwd = str(self.options.notebook_dir)
        if self.server is not None:
            try:
                return self.server.fork(launch.argv, str(launch.log), cwd)
            except ConnectionError as exc:
                print(f"cellpipe: {exc}; spawning steps instead", file=sys.stderr)
                self.server = None
        from cellpipe.engines.local.worker import run_child

        process = multiprocessing.get_context("spawn").Process(
            target=run_child, args=(launch.argv, str(launch.log), cwd),
            name=f"cellpipe-{launch.step}", daemon=False,
        )
        with _main_module_hidden():
            process.start()
        return _ProcessHandle(process)


class _ProcessHandle:
    """A spawned step process, as the scheduler sees it."""

    failure_message = None

    def __init__(self, process: Any) -> None:
        self.process = process

    @property
    def sentinel(self) -> Any:
        return self.process.sentinel

    @property
    def exitcode(self) -> int | None:
        code: int | None = self.process.exitcode
        return code

    def join(self, timeout: float | None = None) -> None:
        self.process.join(timeout)

    def stop(self) -> None:
        _kill(self.process)

    def describe(self) -> dict[str, Any]:
        return {"pid": self.process.pid}


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a step process without multiprocessing re-importing the caller's ``__main__``.

    Spawn and forkserver children import the parent's main script (by path or module
    name) before running the target. A step never needs it; importing it costs time, fails
    for stdin or a kernel, and would re-run a user's script that calls ``cellpipe.run``
    without an ``if __name__ == "__main__"`` guard.
    """
    main = sys.modules.get("__main__")
    saved = {key: getattr(main, key) for key in ("__file__", "__spec__") if hasattr(main, key)}
    try:
        for key in saved:
            if key == "__spec__":
                main.__spec__ = None  # type: ignore[union-attr]
            else:
                delattr(main, key)
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


def _kill(process: Any) -> None:
    if process.is_alive():
        process.terminate()
        process.join(2)
    if process.is_alive():
        process.kill()
    process.join()


