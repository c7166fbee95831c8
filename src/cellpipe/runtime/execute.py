"""Executing one step of a spec in an IPython shell, in this process.

Exit codes tell whose fault a failure is: ``EXIT_USER`` (1) when the step's own code
raised or left a value that cannot be passed on, ``EXIT_INFRA`` (2) when cellpipe or its
surroundings failed (an input missing or corrupted, a spec that does not validate, a
store that cannot be written).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.errors import CellpipeError

EXIT_OK = 0
EXIT_USER = 1
EXIT_INFRA = 2
RESULT_FILE = "result.json"
PARAMETERS_GLOBAL = "__cellpipe_parameters__"


@dataclass(frozen=True)
class StepRequest:
    """What the runtime needs to run one step.

    Attributes:
        spec: The pipeline spec (dict).
        step: Name of the step to run.
        store: Where artifacts live (a directory or fsspec URL).
        parameters: Values of the run's parameters (JSON data).
        step_dir: Where the step's result, report and outputs listing are written.
        input_stores: Per producing step, the store to read its artifacts from, when it
            differs from ``store`` (cache hits reuse another run's artifacts).
        runtime: ``ipython`` (an IPython shell in this process, the default) or ``kernel``
            (the step as a notebook in a Jupyter kernel, through papermill).
    """

    spec: Mapping[str, Any]
    step: str
    store: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    step_dir: str = "."
    input_stores: Mapping[str, str] = field(default_factory=dict)
    runtime: str = "ipython"


@dataclass
class _CellRun:
    index: int
    source: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    execution_count: int | None = None
    error: dict[str, Any] | None = None


def run_step(request: StepRequest) -> int:
    """Run a step; write ``result.json`` and the report; return the exit code."""
    started = time.time()
    step_dir = Path(request.step_dir)
    step_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"step": request.step, "started": started, "status": "running"}
    cells: list[_CellRun] = []
    try:
        step = _find_step(request.spec, request.step)
        code = _run(request, step, cells, result)
    except CellpipeError as exc:
        code = EXIT_INFRA
        result["error"] = _error_dict(exc, kind="infrastructure")
        print(f"cellpipe: step {request.step!r} failed: {exc}", file=sys.stderr)
    except Exception as exc:  # a bug or an environment failure, not the user's code
        code = EXIT_INFRA
        result["error"] = {"kind": "infrastructure", "message": f"{type(exc).__name__}: {exc}",
                           "traceback": traceback.format_exc()}
        traceback.print_exc()
    result["status"] = "succeeded" if code == EXIT_OK else "failed"
    result["exit_code"] = code
    result["finished"] = time.time()
    result["duration"] = round(result["finished"] - started, 6)
    try:
        from cellpipe.runtime.report import write_report

        if request.runtime != "kernel":  # papermill's executed notebook is that report
            write_report(step_dir / "report.ipynb", request, cells)
    except Exception as exc:  # the report must never hide the step's own outcome
        print(f"cellpipe: could not write the report: {exc}", file=sys.stderr)
    write_text_atomic(step_dir / RESULT_FILE, json.dumps(result, indent=2, default=str) + "\n")
    return code


def _find_step(spec: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for step in spec.get("steps", []):
        if step["name"] == name:
            return step  # type: ignore[no-any-return]
    names = ", ".join(s["name"] for s in spec.get("steps", []))
    raise CellpipeError(f"the spec has no step {name!r}", step=name, hint=f"steps are: {names}")


def _run(
    request: StepRequest,
    step: Mapping[str, Any],
    cells: list[_CellRun],
    result: dict[str, Any],
) -> int:
    if request.runtime == "kernel":
        from cellpipe.runtime.kernel import run_in_kernel

        return run_in_kernel(request, step, result)
    shell = _make_shell()
    namespace = shell.user_ns
    namespace[PARAMETERS_GLOBAL] = dict(request.parameters)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    namespace.update(load_inputs(request, step))
    timings["load_inputs"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    prelude = prelude_code(step)
    if prelude.strip():
        outcome = shell.run_cell(prelude, store_history=False, silent=True)
        if not outcome.success:
            error = outcome.error_before_exec or outcome.error_in_exec
            result["error"] = {
                "kind": "user",
                "message": f"replaying imports and definitions failed: {_describe(error)}",
                "hint": "an import or definition from an earlier cell fails on its own; "
                "check the step's requirements",
            }
            return EXIT_USER
    for cell in step["cells"]:
        run = _run_cell(shell, cell["index"], cell["source"])
        cells.append(run)
        if run.error is not None:
            result["error"] = run.error
            timings["execute"] = time.perf_counter() - t0
            result["timings"] = timings
            return EXIT_USER
    timings["execute"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    code = save_outputs(request, step, namespace, result)
    timings["save_outputs"] = time.perf_counter() - t0
    result["timings"] = timings
    return code


def load_inputs(request: StepRequest, step: Mapping[str, Any]) -> dict[str, Any]:
    """Load every value the step reads from the store of the step that produced it.

    Raises:
        MarshalError: an input is missing or corrupted (cellpipe's side, not the user's).
    """
    from cellpipe.marshal import MarshalError, open_store

    store = open_store(request.store)
    values: dict[str, Any] = {}
    for variable, producer in step["reads"].items():
        source = request.input_stores.get(producer)
        try:
            values[variable] = (open_store(source) if source else store).load(producer,
                                                                              variable)
        except MarshalError as exc:
            raise type(exc)(
                f"cannot load input {variable!r} from step {producer!r}: {exc.message}",
                step=producer, variable=variable, path=exc.path, hint=exc.hint,
                type_name=exc.type_name,
            ) from exc
    return values


def save_outputs(
    request: StepRequest,
    step: Mapping[str, Any],
    namespace: Mapping[str, Any],
    result: dict[str, Any],
) -> int:
    """Save what the step leaves for later steps, and its metrics, into ``result``.

    Returns ``EXIT_USER`` when a value cannot be passed on (the user's to fix).
    """
    from cellpipe.marshal import MarshalError, open_store

    store = open_store(request.store)
    consumers = _consumers(request.spec, step["name"])
    names = list(step["writes"])
    if step.get("dynamic"):
        names = _dynamic_exports(namespace, names)
    outputs: dict[str, Any] = {}
    missing = []
    for name in names:
        if name not in namespace:
            missing.append(name)  # assigned on a branch that did not run
            continue
        try:
            meta = store.save(step["name"], name, namespace[name],
                              consumers=consumers.get(name, ()))
        except MarshalError as exc:
            result["error"] = _error_dict(exc, kind="user")
            print(f"cellpipe: {exc}", file=sys.stderr)
            return EXIT_USER
        outputs[name] = meta.to_dict()
    result["outputs"] = outputs
    result["not_produced"] = missing
    result["metrics"] = _metrics(step, namespace)
    return EXIT_OK


def _make_shell() -> Any:
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

    shell = StepShell.instance()
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


def prelude_code(step: Mapping[str, Any]) -> str:
    """The code before the first cell: replayed imports, setup, definitions, parameters."""
    code_map = step.get("code_map") or []
    if not code_map:
        return str(step["code"])
    lines = step["code"].split("\n")
    return "\n".join(lines[: code_map[0]["start"] - 2])


def _run_cell(shell: Any, index: int, source: str) -> _CellRun:
    from IPython.utils.capture import capture_output

    run = _CellRun(index=index, source=source)
    shell.displayhook.formatted = None
    with capture_output(stdout=True, stderr=True, display=True) as captured:
        outcome = shell.run_cell(source, store_history=True)
    run.execution_count = outcome.execution_count
    # Echo what the cell printed to the step's log, as the notebook would show it.
    if captured.stdout:
        sys.stdout.write(captured.stdout)
        run.outputs.append({"output_type": "stream", "name": "stdout", "text": captured.stdout})
    if captured.stderr:
        sys.stderr.write(captured.stderr)
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
        run.error = {
            "kind": "user",
            "message": _describe(error),
            "ename": type(error).__name__,
            "evalue": str(error),
            "cell": index,
            "line": line,
            "traceback": "".join(frames),
        }
        run.outputs.append(
            {"output_type": "error", "ename": type(error).__name__, "evalue": str(error),
             "traceback": [f.rstrip("\n") for f in frames]}
        )
        print(f"cellpipe: cell {index + 1}{f', line {line}' if line else ''}: "
              f"{_describe(error)}", file=sys.stderr)
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


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"


def _consumers(spec: Mapping[str, Any], step: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for other in spec.get("steps", []):
        for variable, producer in other["reads"].items():
            if producer == step:
                found.setdefault(variable, []).append(other["name"])
    return found


def _dynamic_exports(namespace: Mapping[str, Any], declared: list[str]) -> list[str]:
    """For steps the analyzer cannot follow: every plain global the step ends with."""
    import types

    names = list(declared)
    for name, value in namespace.items():
        if name.startswith("_") or name in names or name in ("In", "Out", "exit", "quit"):
            continue
        if isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        names.append(name)
    return names


def _metrics(step: Mapping[str, Any], namespace: Mapping[str, Any]) -> dict[str, Any]:
    import numbers

    metrics: dict[str, Any] = {}
    for name in step.get("metrics", []):
        value = namespace.get(name)
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            metrics[name] = value.item() if hasattr(value, "item") else value  # numpy scalars
        elif value is not None:
            try:
                metrics[name] = float(value)
            except (TypeError, ValueError):
                print(f"cellpipe: metric {name!r} is a {type(value).__name__}, not a number; "
                      "it is not reported", file=sys.stderr)
    return metrics


def _error_dict(exc: CellpipeError, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "message": exc.message,
        "cell": exc.cell,
        "line": exc.line,
        "variable": exc.variable,
        "hint": exc.hint,
        "step": exc.step,
        "path": exc.path,
        "type_name": getattr(exc, "type_name", None),
        "consumers": list(getattr(exc, "consumers", ())),
        "type": type(exc).__name__,
    }


def environment_fingerprint() -> str:
    """What the step's results depend on besides code and data: Python and key packages."""
    import hashlib
    import platform
    from importlib import metadata

    parts = [platform.python_version(), sys.platform]
    for name in ("cellpipe", "ipython", "numpy", "pandas", "scikit-learn", "pyarrow"):
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=-")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] + os.environ.get(
        "CELLPIPE_FINGERPRINT_SALT", ""
    )
