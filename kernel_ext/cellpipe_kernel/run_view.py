"""``%cellpipe run``: run the notebook's pipeline from its own kernel, with a live view.

The steps run as the CLI runs them (``cellpipe.api.run``: processes or containers, never
this kernel), so the run computes what a fresh top-to-bottom execution of the *saved*
notebook computes. The ended ``Run`` is put in the namespace as ``_cellpipe_run``
(``_cellpipe_run.load("model")``); the view as ``_cellpipe_view``.

``--background`` runs in a daemon thread and returns at once: the view keeps updating
while other cells run, ``_cellpipe_background`` (a :class:`RunHandle`) can be waited
on, and ``_cellpipe_run`` is set when the run ends. The thread never raises: an error
shows in the view. Ctrl-C reaches only the main thread, so the view has a Stop button
(and the handle a :meth:`RunHandle.stop`): the running steps end, the run is recorded
``cancelled`` and the steps that finished stay cached.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe import api
from cellpipe.errors import CellpipeError
from cellpipe_kernel.notebook import runs_root
from cellpipe_kernel.parsing import HelpShown, MagicParser

if TYPE_CHECKING:
    from cellpipe_kernel.widgets import RunView

__all__ = ["RunHandle", "make_parser", "run_command"]


def make_parser() -> argparse.ArgumentParser:
    """The parser of ``%cellpipe run``'s options."""
    parser = MagicParser(
        prog="%cellpipe run", allow_abbrev=False,
        description="Run the saved notebook as a pipeline (each step in its own process) "
        "and show its progress; the ended run is `_cellpipe_run`.",
    )
    parser.add_argument("--engine", choices=api.engine_names(), default="local",
                        help="steps as local processes, or each in a container [local]")
    parser.add_argument("-p", "--parameter", dest="params", action="extend", nargs="+",
                        default=[], metavar="NAME=VALUE",
                        help="a parameter value (converted to its declared type); "
                        "these win over the parameters form (`_cellpipe_params`)")
    parser.add_argument("--background", action="store_true",
                        help="return at once; the view updates while other cells run")
    parser.add_argument("--no-cache", action="store_true",
                        help="run every step, even unchanged ones")
    parser.add_argument("--step", dest="steps", action="extend", nargs="+", default=[],
                        metavar="STEP", help="run only these steps (inputs from the cache)")
    parser.add_argument("--from", dest="start", metavar="STEP",
                        help="run this step and everything after it")
    parser.add_argument("--to", dest="stop", metavar="STEP",
                        help="run this step and everything before it")
    # The dispatcher resolves --notebook; accepted here too, so passing it through is fine.
    parser.add_argument("--notebook", help=argparse.SUPPRESS)
    return parser


class RunHandle:
    """A run started with ``--background`` (``_cellpipe_background``).

    Attributes:
        view: The run's :class:`~cellpipe_kernel.widgets.RunView`.
        run: The ended ``Run`` (None while running, or when the run could not start).
        error: What stopped the run, if it raised.
        thread: The daemon thread running it.
    """

    def __init__(self, view: RunView) -> None:
        self.view = view
        self.run: Any = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self.cancel = threading.Event()  # set by stop() or the view's Stop button
        self._ended = threading.Event()

    def stop(self) -> None:
        """Stop the run: its running steps end, the finished ones stay cached."""
        self.cancel.set()

    @property
    def done(self) -> bool:
        """Whether the run has ended (``_cellpipe_run`` is set by then, if it ran)."""
        return self._ended.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run ends; return its ``Run``.

        Raises:
            TimeoutError: It is still running after ``timeout`` seconds.
            CellpipeError: (or whatever stopped it) the run could not run.
        """
        if not self._ended.wait(timeout):
            raise TimeoutError(f"the run is still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.run

    def __repr__(self) -> str:
        state = self.view.outcome or ("running" if not self.done else "ended")
        return f"<cellpipe background run {self.view.run_id or '(starting)'}: {state}>"


def parameters_for(shell: Any, spec: api.PipelineSpec, texts: list[str]) -> dict[str, Any]:
    """The parameters form's values (``_cellpipe_params``), then ``-p`` on top."""
    form = shell.user_ns.get("_cellpipe_params") or {}
    if not isinstance(form, Mapping):
        raise CellpipeError("_cellpipe_params is not a dict of parameter values",
                            hint="set it to {name: value} or delete it")
    declared = {p.name for p in spec.parameters}
    stale = sorted(set(form) - declared)
    if stale:  # a form filled before the parameter was removed from the notebook
        print(f"%cellpipe run: ignoring _cellpipe_params for {', '.join(stale)}: "
              "the notebook has no such parameter", file=sys.stderr)
    values = {k: api.convert_parameter(spec, k, v) for k, v in form.items() if k in declared}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise CellpipeError(f"-p {text!r} is not NAME=VALUE", hint="e.g. -p lr=0.01")
        values[name.strip()] = api.convert_parameter(spec, name.strip(), value)
    return values


# The step runtime puts the run's parameter values in this global: a cell that finds it
# runs inside a pipeline step.
_IN_STEP = api.PARAMETERS_GLOBAL


def in_kernel(shell: Any) -> bool:
    """Whether ``shell`` is a Jupyter kernel's (whose frontend may show widgets)."""
    return getattr(shell, "kernel", None) is not None


def run_command(shell: Any, argv: list[str], notebook: Path) -> Any:
    """``%cellpipe run [options]``: run ``notebook`` (the saved file) as a pipeline.

    Returns None; the ended run is ``shell.user_ns["_cellpipe_run"]``. With
    ``--background`` the run goes on in a thread and a :class:`RunHandle` is stored in
    ``shell.user_ns["_cellpipe_background"]``.

    Raises:
        UsageError: ``argv`` is not a valid command line.
        CellpipeError: the notebook is not a valid pipeline (``PipelineError``), a ``-p``
            value or step name is wrong (in the foreground: anything the run raises).
    """
    from cellpipe_kernel.widgets import RunView

    try:
        args = make_parser().parse_args(argv)
    except HelpShown:
        return None
    if _IN_STEP in shell.user_ns:
        raise CellpipeError(
            "%cellpipe run is running inside a step of a pipeline run: it would start the "
            "pipeline from within itself", hint="tag the cell `skip` so that pipelines "
            "leave it out")
    notebook = Path(notebook)
    spec = api.compile_spec(notebook)
    parameters = parameters_for(shell, spec, args.params)
    api.select_steps(spec, args.steps, args.start, args.stop)  # unknown names: raise now
    root = runs_root(notebook)
    kernel = in_kernel(shell)
    view = RunView(notebook, [s.name for s in spec.steps], engine=args.engine, root=root,
                   echo=not kernel)
    shell.user_ns["_cellpipe_view"] = view
    if kernel and view.widget is not None:
        view.display()

    cancel: threading.Event | None = None

    def start() -> Any:
        return api.run(notebook, parameters, engine=args.engine, cache=not args.no_cache,
                       step=args.steps, start=args.start, stop=args.stop, root=root,
                       on_event=view.on_event, cancel=cancel)

    if args.background:
        handle = RunHandle(view)
        cancel = handle.cancel
        view.allow_stop(handle.stop)  # the kernel reads the button's clicks between cells
        shell.user_ns["_cellpipe_background"] = handle

        def main() -> None:
            try:
                run = start()
                shell.user_ns["_cellpipe_run"] = run
                handle.run = run
                view.finish(run)
            except BaseException as exc:  # never out of the thread: the kernel must live
                handle.error = exc
                with contextlib.suppress(BaseException):  # nothing left to tell it with
                    view.fail(exc)
            finally:
                handle._ended.set()

        # The thread runs in a copy of this cell's context: ipykernel keeps the cell's
        # message there, so what the thread prints or displays goes to this cell.
        context = contextvars.copy_context()
        handle.thread = threading.Thread(target=context.run, args=(main,), daemon=True,
                                         name=f"cellpipe-run-{notebook.stem}")
        handle.thread.start()
        return None
    try:
        run = start()
    except BaseException as exc:
        view.fail(exc)
        if isinstance(exc, KeyboardInterrupt) and view.run_id:
            _keep_cancelled(shell, view.run_id, root, notebook)
        raise
    shell.user_ns["_cellpipe_run"] = run
    view.finish(run)
    return None


def _keep_cancelled(shell: Any, run_id: str, root: Path, notebook: Path) -> None:
    """After Ctrl-C: the cancelled run is still ``_cellpipe_run``; say how to resume it."""
    try:
        shell.user_ns["_cellpipe_run"] = api.open_run(run_id, root)
    except CellpipeError:
        return
    print(f"finished steps are kept; complete the run with "
          f"`cellpipe run {notebook} --resume {run_id}`", file=sys.stderr)
