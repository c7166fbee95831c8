"""The child side of a step process: redirect output to the step log, run the runtime."""

from __future__ import annotations

import contextlib
import os
import sys


def run_child(argv: list[str], log_path: str, cwd: str) -> None:
    """Entry point of a step process (forked from the warm server, or spawned)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):  # replaced streams
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.chdir(cwd)
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # the notebook's own modules import as in Jupyter
    code = 2
    try:
        from cellpipe.runtime.__main__ import main

        code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
