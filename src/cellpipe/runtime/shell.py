"""The step's IPython shell: built once (in the warm server), running one cell at a time.

Each cell runs as in Jupyter (magics, ``!cmd``, ``display()``, inline figures); an error is
reported with the cell and the line of the user's own code it came from.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from cellpipe.errors import StepError

_SHELL: list[Any] = []  # the shell the warm server built: each forked step gets a copy


def warm_shell() -> None:
    """Build the step shell now (the local engine's warm server calls this before forking).

    Building an IPython shell costs ~80 ms (its traits, input transformers, regexes); done
    once in the server, each forked step starts with a pristine copy. The shell keeps no
    history (no sqlite file, no saving thread), so it is safe to fork.
    """
    if not _SHELL:
        shell = _build_shell()
        shell.transform_cell("x = 1\n")  # compiles the tokenizer's regexes; runs nothing
        _SHELL.append(shell)


def make_shell() -> Any:
    """The step's shell: the warm server's (fresh for this process), or one built now."""
    if _SHELL:
        shell = _SHELL[0]
        _inline_figures()
        return shell
    return _build_shell()


def _build_shell() -> Any:
    from IPython.core.displayhook import DisplayHook
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets import Type

    class StepDisplayHook(DisplayHook):
        """Keeps a cell's result for its ``execute_result``, as a kernel sends it.

        A terminal's ``Out[n]: …`` on stdout would show the result twice in the report.
        """

        formatted: tuple[dict[str, Any], dict[str, Any]] | None = None

        def write_output_prompt(self) -> None:
            return None

        def write_format_data(
            self, format_dict: dict[str, Any], md_dict: dict[str, Any] | None = None
        ) -> None:
            self.formatted = (format_dict, md_dict or {})

    class StepShell(InteractiveShell):
        """IPython as a kernel runs it, minus the kernel: no GUI event loop to start."""

        displayhook_class = Type(StepDisplayHook)

        def enable_gui(self, gui: str | None = None) -> None:
            # %matplotlib inline (Jupyter's default) draws into outputs; nothing to run.
            return None

    from traitlets.config import Config

    config = Config()
    # A step is not an interactive session: its cells are not the user's IPython history
    # (and the history's sqlite file and saving thread would not survive a fork).
    config.HistoryManager.enabled = False
    shell = StepShell.instance(config=config)
    shell.colors = "NoColor"
    _inline_figures()
    return shell


INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def _inline_figures() -> None:
    """Make matplotlib draw into the cell outputs (the report), as Jupyter's kernel does.

    ipykernel sets ``MPLBACKEND`` to the inline backend unless the user chose one; the
    step does the same. When the warm server already imported matplotlib, it read the
    variable before it was set here, so the setting goes to ``rcParams`` too (no backend
    is loaded yet: the server imports modules and runs nothing).
    """
    if os.environ.get("MPLBACKEND"):
        return
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        matplotlib.rcParams["backend"] = INLINE_BACKEND


class _Tee:
    """A text stream writing to ``kept`` (the report's capture) and to ``log`` at once."""

    def __init__(self, kept: Any, log: Any) -> None:
        self._kept = kept
        self._log = log

    def write(self, text: str) -> int:
        self._kept.write(text)
        with contextlib.suppress(Exception):  # a closed log must not fail the cell
            self._log.write(text)
            if "\n" in text:
                self._log.flush()
        return len(text)

    def flush(self) -> None:
        self._kept.flush()
        with contextlib.suppress(Exception):
            self._log.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kept, name)


@dataclass
class CellRun:
    """One cell as it ran: its outputs, and its error when it raised."""

    index: int
    source: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    execution_count: int | None = None
    error: dict[str, Any] | None = None


def run_cell(shell: Any, index: int, source: str) -> CellRun:
    """Run cell ``index`` in ``shell``, capturing its outputs; an error names its line."""
    from IPython.utils.capture import capture_output

    run = CellRun(index=index, source=source)
    shell.displayhook.formatted = None
    log_out, log_err = sys.stdout, sys.stderr
    with capture_output(stdout=True, stderr=True, display=True) as captured:
        # What the cell prints goes to the report and, as it prints it, to the step's log
        # (the panel follows the log of a running step).
        sys.stdout = _Tee(sys.stdout, log_out)
        sys.stderr = _Tee(sys.stderr, log_err)
        outcome = shell.run_cell(source, store_history=True)
    run.execution_count = outcome.execution_count
    if captured.stdout:
        run.outputs.append({"output_type": "stream", "name": "stdout", "text": captured.stdout})
    if captured.stderr:
        run.outputs.append({"output_type": "stream", "name": "stderr", "text": captured.stderr})
    for output in captured.outputs:
        run.outputs.append(
            {"output_type": "display_data", "data": output.data, "metadata": output.metadata or {}}
        )
    if shell.displayhook.formatted is not None and outcome.success:
        data, metadata = shell.displayhook.formatted
        run.outputs.append(
            {
                "output_type": "execute_result",
                "data": data,
                "metadata": metadata,
                "execution_count": outcome.execution_count,
            }
        )
    error = outcome.error_before_exec or outcome.error_in_exec
    if error is not None:
        frames = traceback.format_exception(type(error), error, error.__traceback__)
        line = _user_line(error)
        run.error = StepError("user", describe_error(error), cell=index, line=line,
                              ename=type(error).__name__, evalue=str(error),
                              traceback="".join(frames)).to_dict()
        run.outputs.append(
            {"output_type": "error", "ename": type(error).__name__, "evalue": str(error),
             "traceback": [f.rstrip("\n") for f in frames]}
        )
        print(f"cellpipe: cell {index + 1}{f', line {line}' if line else ''}: "
              f"{describe_error(error)}", file=sys.stderr)
    return run


def _user_line(error: BaseException) -> int | None:
    """The line in the cell where the error was raised (IPython names cells <ipython-input…>)."""
    if isinstance(error, SyntaxError):
        return error.lineno
    line = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        name = frame.f_code.co_filename
        if name.startswith("<ipython-input") or "/ipykernel_" in name or name.startswith("<cell"):
            line = lineno
    return line


def describe_error(error: BaseException | None) -> str:
    """``Type: message`` of an exception (or "unknown error")."""
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"

