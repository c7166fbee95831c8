"""The ``%%step`` cell magic and the ``%cellpipe`` line magic (``%load_ext cellpipe``).

A front end: it parses, calls :mod:`cellpipe.api` once, and shows the result.
:func:`usage_errors` is the one place where cellpipe's errors become IPython
``UsageError``s (one line, no traceback); the user's own code in a ``%%step`` body is not
in it, so its exceptions reach IPython untouched.
"""

from __future__ import annotations

import ast
import linecache
import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
    output_can_be_silenced,
)
from IPython.display import display

from cellpipe import api
from cellpipe.errors import AnnotationError, CellpipeError, PipelineError
from cellpipe_kernel.display import show_comparison, show_graph, show_lint, show_runs
from cellpipe_kernel.notebook import find_notebook
from cellpipe_kernel.parsing import HelpShown, MagicParser

COMMANDS = ("lint", "graph", "params", "runs", "run", "submit", "compare", "tune")


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn cellpipe's errors into ``UsageError`` (IPython prints those as one line).

    A ``PipelineError`` first lists its diagnostics. Anything else propagates: an
    unexpected error deserves its traceback, and no path here exits the kernel.
    """
    try:
        yield
    except PipelineError as exc:
        for diagnostic in exc.diagnostics:
            known = isinstance(diagnostic, api.Diagnostic)
            text = diagnostic.format() if known else str(diagnostic)
            print(text, file=sys.stderr)
        raise UsageError(str(exc)) from exc
    except CellpipeError as exc:
        raise UsageError(str(exc)) from exc


@magics_class
class CellpipeMagics(Magics):
    """``%%step NAME [options]`` marks a step; ``%cellpipe COMMAND`` lints, draws and runs."""

    # No $var / {var} expansion: the header must read as the static analyzer reads it.
    @no_var_expand
    # `x;` on the body's last line hides its value, as in any cell.
    @output_can_be_silenced
    @cell_magic
    def step(self, line: str, cell: str) -> Any:
        """``%%step NAME [--after A B] [--gpu N] [--cpu N] [--memory SIZE] [--image REF] ...``.

        Checks the header with the same parser as ``cellpipe lint``, then runs the body in
        the user namespace exactly as the cell would run without the magic. ``--skip``
        only keeps the cell out of the pipeline: here the body still runs.
        """
        __tracebackhide__ = True  # IPython hides this frame in the body's tracebacks
        with usage_errors():
            check_step_header(line, cell)
        return run_step_body(self.shell, line, cell)

    @line_magic
    def cellpipe(self, line: str) -> Any:
        """``%cellpipe lint|graph|params|runs|run|submit|compare|tune ...`` (``-h``)."""
        with usage_errors():
            return self._dispatch(line)

    def _dispatch(self, line: str) -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%cellpipe: cannot split {line!r} into words: {exc}") from None
        if words and not words[0].startswith("-") and words[0] not in COMMANDS:
            suggestion = api.did_you_mean(words[0], set(COMMANDS))
            raise UsageError(
                f"%cellpipe has no command {words[0]!r}"
                + (f"; {suggestion}" if suggestion else "")
                + f" (commands: {', '.join(COMMANDS)}; %cellpipe -h for help)"
            )
        if words and words[0] == "submit":
            given, rest = take_notebook_option(words[1:])
            from cellpipe_kernel.submit_view import submit_command

            if {"-h", "--help"} & set(rest):
                return submit_command(self.shell, rest, Path(given or "."))
            return submit_command(self.shell, rest, self._notebook(given))
        if words and words[0] == "tune":
            given, rest = take_notebook_option(words[1:])
            from cellpipe_kernel.tune_view import tune_command

            if {"-h", "--help"} & set(rest):
                return tune_command(self.shell, rest, Path(given or "."))
            return tune_command(self.shell, rest, self._notebook(given))
        if words and words[0] == "run":
            # `run` has its options in run_view; only --notebook is read here.
            given, rest = take_notebook_option(words[1:])
            try:
                notebook = self._notebook(given)
            except CellpipeError:
                if not {"-h", "--help"} & set(rest):
                    raise
                notebook = Path(given or ".")  # `run -h` prints its help without one
            from cellpipe_kernel.run_view import run_command

            if not {"-h", "--help"} & set(rest):
                self._say_drift(notebook, "run")
            return run_command(self.shell, rest, notebook)
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(words)
            if extra:  # said by the command's own parser, so its usage line is the one shown
                where = parser.commands.get(args.command, parser)
                where.error(f"unrecognized arguments: {' '.join(extra)}")
        except HelpShown:
            return None  # -h printed the help
        if args.command is None:
            parser.print_help()
            return None
        if args.command == "compare":
            self._compare(args)
            return None
        notebook = self._notebook(args.notebook)
        if args.command == "lint":
            self._say_drift(notebook, "lint")
            show_lint(api.lint(notebook, target=args.target), notebook)
        elif args.command == "graph":
            show_graph(notebook, args.format)
        elif args.command == "params":
            self._params(notebook)
        else:
            show_runs(notebook)
        return None

    def _say_drift(self, notebook: Path, command: str) -> None:
        """Say when the saved file differs from what this kernel ran (see drift.py)."""
        from cellpipe_kernel.drift import note

        if self.shell is not None:
            line = note(self.shell, notebook, command)
            if line:
                print(line, file=sys.stderr)

    def _notebook(self, given: str | None) -> Path:
        user_ns = self.shell.user_ns if self.shell is not None else {}
        return find_notebook(user_ns, given)

    def _compare(self, args: Any) -> None:
        """Show the comparison; leave it in the namespace as ``_cellpipe_compare``."""
        try:
            notebook: Path | None = self._notebook(args.notebook)
        except CellpipeError:
            if args.notebook is not None:
                raise
            notebook = None  # no session: the runs beside the kernel's folder (or $CELLPIPE_HOME)
        comparison = api.compare(args.runs, notebook=notebook)
        show_comparison(comparison, args.metrics, args.plot)
        assert self.shell is not None
        self.shell.user_ns["_cellpipe_compare"] = comparison

    def _params(self, notebook: Path) -> None:
        from cellpipe_kernel.params_form import ParamsForm

        parameters = api.lint(notebook, environment=False).to_dict()["parameters"]
        if not parameters:
            print(f"{notebook.name} has no parameters: tag the cell that assigns them "
                  "`parameters` (and save the notebook)")
            return
        assert self.shell is not None
        display(ParamsForm(parameters, self.shell.user_ns))


def register(ipython: InteractiveShell) -> None:
    """Register the magics on ``ipython``; registering again just replaces them."""
    from cellpipe_kernel.drift import install

    ipython.register_magics(CellpipeMagics)
    install(ipython)  # remember what runs: %cellpipe lint/run compare it with the file


# -- %%step -------------------------------------------------------------------------------


def check_step_header(line: str, cell: str) -> None:
    """Parse the header with the analyzer's parser; raise its first problem.

    Raises:
        AnnotationError: The header does not follow the ``%%step`` grammar.
    """
    diagnostics: list[api.Diagnostic] = []
    api.parse_cell((), f"%%step {line}\n{cell}", 0, diagnostics)
    if diagnostics:
        first, more = diagnostics[0], len(diagnostics) - 1
        message = first.message + (f" (and {more} more problem(s) in the header)" if more else "")
        raise AnnotationError(message, hint=first.hint)


def run_step_body(shell: Any, line: str, cell: str) -> Any:
    """Run a ``%%step`` body as IPython runs a cell; return the last expression's value.

    Like ``%%time``, the body is transformed, parsed, compiled and executed here rather
    than through a nested ``run_cell``: a nested ``run_cell`` prints the traceback itself
    and swallows the error, so "run all" would go on past a failing step (or, re-raised,
    the traceback shows twice), and it fires the pre/post-run events a second time. Here
    an exception leaves the magic unchanged and IPython reports it once, for the cell.
    The value of a last expression is returned, so IPython shows it as the cell's ``Out``.

    Line numbers are those of the cell as the user sees it: the header is line 1, so the
    body's first line is line 2 — what the editor's gutter, the analyzer's diagnostics and
    a debugger's breakpoints say. (``%%time`` numbers from the body, ``<timed exec>`` line
    1, which points one line above the error in the editor.) The code is compiled under
    the cell's own file name when it can be found, whose source cache then holds the cell
    as typed, so the traceback's ``Cell In[N], line L`` and its excerpt match the cell.
    """
    __tracebackhide__ = True
    raw = f"%%step {line}".rstrip() + "\n" + cell
    code = shell.transform_cell(cell)
    # IPython drops leading blank lines; count them back so line numbers stay the cell's.
    source = "\n" * (1 + _leading_blank_lines(cell)) + code
    filename = _cell_filename(shell, raw, source)
    try:
        tree = shell.compile.ast_parse(source, filename=filename)
    except SyntaxError:
        # Shown as IPython shows a plain cell's (caret, no stack through the magic); the
        # UsageError then fails the cell, so "run all" stops here too.
        shell.showsyntaxerror(filename)
        raise UsageError(
            "the %%step body has a syntax error (shown above); it did not run"
        ) from None
    tree = shell.transform_ast(tree)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    namespaces = (shell.user_global_ns, shell.user_ns)
    exec(shell.compile(tree, filename, "exec"), *namespaces)
    if last is None:
        return None
    expression = ast.Expression(last.value)
    return eval(shell.compile(expression, filename, "eval"), *namespaces)


def _leading_blank_lines(text: str) -> int:
    count = 0
    for row in text.splitlines():
        if row and not row.isspace():
            break
        count += 1
    return count


def _cell_filename(shell: Any, raw: str, source: str) -> str:
    """The file name to compile the body under, with ``raw`` as its cached source."""
    filename = _calling_cell(shell)
    if filename is None:  # called from code, not from a cell: a name of its own
        filename = str(shell.compile.cache(source, shell.execution_count, raw_code=raw))
    lines = [row + "\n" for row in raw.splitlines()]
    linecache.cache[filename] = (len(raw), None, lines, filename)
    return filename


def _calling_cell(shell: Any) -> str | None:
    """The file name of the cell whose ``%%step`` is running, if it is one."""
    run_cell_magic = getattr(type(shell).run_cell_magic, "__code__", None)
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code is not run_cell_magic:
        frame = frame.f_back
    caller = frame.f_back if frame is not None else None
    if caller is None or caller.f_code.co_name != "<module>":
        return None
    filename = caller.f_code.co_filename
    first = linecache.getline(filename, 1)
    known = getattr(shell.compile, "format_code_name", lambda name: None)(filename)
    if known is None or not first.startswith(("get_ipython().run_cell_magic('step'", "%%step")):
        return None
    return filename


# -- %cellpipe ----------------------------------------------------------------------------


def build_parser() -> MagicParser:
    """The ``%cellpipe`` command line (``run`` is parsed by the run view)."""
    parser = MagicParser(
        prog="%cellpipe",
        description="cellpipe in the notebook. Commands read the SAVED notebook: save first. "
        "Without --notebook, the notebook is the kernel's own (its Jupyter session).",
        epilog="examples: %cellpipe lint | %cellpipe graph --format mermaid | "
        "%cellpipe params | %cellpipe run -p lr=0.1 | %cellpipe runs | "
        "%cellpipe compare RUN RUN | "
        "%cellpipe submit --target argo --watch (its own -h)",
    )
    parser.commands = {}
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=MagicParser)
    notebook_help = "the .ipynb file (default: this kernel's notebook)"
    for name, help_text in (
        ("lint", "check the notebook: every problem, with its cell, line and fix"),
        ("graph", "draw the pipeline's DAG"),
        ("params", "a form for the parameters cell's values (used by %cellpipe run)"),
        ("runs", "the runs of this notebook: status, parameters, metrics"),
    ):
        # argparse %-formats help (not descriptions)
        command = commands.add_parser(name, help=help_text.replace("%", "%%"),
                                      description=help_text)
        parser.commands[name] = command
        command.add_argument("--notebook", metavar="PATH", help=notebook_help)
        if name == "lint":
            command.add_argument("--target", metavar="TARGET",
                                 help="also what a run on this cluster target (argo, kfp, …) "
                                 "would break on (CP6xx)")
        if name == "graph":
            command.add_argument("--format", choices=("svg", "mermaid", "dot"), default="svg",
                                 help="svg (needs graphviz; else Mermaid), mermaid or dot")
    compare_help = ("runs side by side: parameters that differ, metrics, which steps ran "
                    "and why, metrics plotted over the runs (left in `_cellpipe_compare`)")
    command = commands.add_parser("compare", help=compare_help, description=compare_help)
    parser.commands["compare"] = command
    command.add_argument("runs", nargs="*", metavar="RUN",
                         help="run ids (or unique prefixes, or `latest`); two or more")
    command.add_argument("--metric", dest="metrics", action="append", default=[],
                         metavar="NAME", help="plot this metric (repeatable) [every one]")
    command.add_argument("--plot", metavar="PATH", help="also write the plot here (PNG)")
    command.add_argument("--notebook", metavar="PATH", help=notebook_help)
    commands.add_parser("run", help="run the pipeline with a live view (%%cellpipe run -h)",
                        add_help=False)
    commands.add_parser("tune", help="tune parameters for the best metric, with a live table "
                        "of trials (%%cellpipe tune -h)", add_help=False)
    return parser


def take_notebook_option(words: Sequence[str]) -> tuple[str | None, list[str]]:
    """Split ``--notebook PATH`` (or ``--notebook=PATH``) off ``run``'s arguments."""
    given: str | None = None
    rest: list[str] = []
    items = iter(words)
    for word in items:
        if word == "--notebook":
            given = next(items, None)
            if given is None:
                raise UsageError("%cellpipe run: --notebook needs a PATH")
        elif word.startswith("--notebook="):
            given = word.partition("=")[2]
        else:
            rest.append(word)
    return given, rest
