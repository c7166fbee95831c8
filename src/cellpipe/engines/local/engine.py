"""The local engine: each step a process on this machine, independent steps in parallel.

Step processes start from a warm interpreter: a fork server that imported IPython, the
runtime and the notebook's own imports once (``multiprocessing``'s ``forkserver`` with a
preload list), so a step costs little more than its code. Where fork is not available,
steps are spawned fresh.
"""

from __future__ import annotations

import ast
import contextlib
import multiprocessing
import multiprocessing.forkserver
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from cellpipe.engines.scheduler import (
    Engine,
    Launcher,
    RunOptions,
    StepEvent,
    StepLaunch,
    check_selection,
)

__all__ = ["LocalEngine", "RunOptions", "StepEvent", "check_selection"]


class LocalEngine(Engine):
    """Runs each step as a process forked from a warm server (or spawned)."""

    name = "local"

    def _launcher(self, spec: Mapping[str, Any], options: RunOptions) -> Launcher:
        return _ProcessLauncher(spec, options)


class _ProcessLauncher:
    def __init__(self, spec: Mapping[str, Any], options: RunOptions) -> None:
        from cellpipe.runtime.execute import environment_fingerprint

        self.context = _context(spec)
        self.options = options
        self._fingerprint = environment_fingerprint()

    def fingerprint(self, step: str) -> str:
        return self._fingerprint

    def start(self, launch: StepLaunch) -> _ProcessHandle:
        from cellpipe.engines.local.worker import run_child

        process = self.context.Process(
            target=run_child,
            args=(launch.argv, str(launch.log), str(self.options.notebook_dir)),
            name=f"cellpipe-{launch.step}", daemon=False,
        )
        with _SERVER_LOCK, _main_module_hidden():
            process.start()
        return _ProcessHandle(process)


class _ProcessHandle:
    """A step process, as the scheduler sees it."""

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


_SERVER_PRELOAD: list[str] | None = None
# Runs in threads of one process share the fork server: one run must not stop it (to warm
# it for another notebook) while another run is handing it a step, nor hide ``__main__``
# while another restores it. Switching the server and starting a step hold this lock.
_SERVER_LOCK = threading.Lock()


def _context(spec: Mapping[str, Any]) -> Any:
    """A multiprocessing context whose processes start warm (forkserver) when possible."""
    global _SERVER_PRELOAD
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    preload = _preload_modules(spec)
    with _SERVER_LOCK:
        if preload != _SERVER_PRELOAD:
            server = getattr(multiprocessing.forkserver, "_forkserver", None)
            stop = getattr(server, "_stop", None)
            if _SERVER_PRELOAD is not None and stop is not None:
                stop()  # a server warmed for another notebook: start a new one
            context.set_forkserver_preload(preload)
            _SERVER_PRELOAD = preload
    return context


def _preload_modules(spec: Mapping[str, Any]) -> list[str]:
    """IPython, the runtime, and every module the notebook imports (imported, never run)."""
    modules = ["IPython.core.interactiveshell", "IPython.utils.capture",
               "cellpipe.engines.local.worker", "cellpipe.runtime.__main__",
               "cellpipe.runtime.execute", "cellpipe.runtime.report", "cellpipe.core.spec",
               "cellpipe.marshal", "cellpipe.runtime.warm"]
    for step in spec["steps"]:
        for statement in step.get("imports", []):
            modules.extend(_imported_modules(statement))
        for cell in step["cells"]:
            try:
                tree = ast.parse(cell["source"])
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    modules.extend(_imported_modules(ast.unparse(node)))
    return sorted(dict.fromkeys(modules))


def _imported_modules(statement: str) -> list[str]:
    try:
        node = ast.parse(statement).body[0]
    except (SyntaxError, IndexError):
        return []
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module]
    return []


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


