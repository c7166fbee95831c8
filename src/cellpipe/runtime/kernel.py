"""``--runtime kernel``: run a step as a notebook in a real Jupyter kernel, via papermill.

For code that needs a kernel (widgets, kernel-specific magics). The step becomes a
notebook: a parameters cell holding only the path of a JSON request file (papermill
injects that path; parameter *values* never enter code), a cell that loads the inputs and
binds the parameters from that file, the step's replayed imports and definitions, its
cells, and a cell that saves what the step leaves behind. Papermill's executed notebook
is the step's report. Values are the same as with the default in-process shell.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.core.layout import StepLayout
from cellpipe.core.spec import PARAMETERS_GLOBAL, PipelineSpec, StepSpec
from cellpipe.errors import StepError
from cellpipe.runtime.execute import (
    EXIT_INFRA,
    EXIT_OK,
    EXIT_USER,
    StepRequest,
    load_inputs,
    save_outputs,
)

_HELPER_TAG = "cellpipe-helper"
_REQUEST = "__cellpipe_request__"


def run_in_kernel(request: StepRequest, step: StepSpec, result: dict[str, Any],
                  kernel_name: str = "python3") -> int:
    """Execute ``step`` through papermill; fill ``result``; return the exit code."""
    try:
        import nbformat
        import papermill
    except ImportError:
        result["error"] = StepError("infrastructure", "--runtime kernel needs papermill",
                                    hint="pip install 'cellpipe[kernel]'").to_dict()
        return EXIT_INFRA
    step_dir = Path(request.step_dir)
    with tempfile.TemporaryDirectory(prefix="cellpipe-kernel-") as tmp:
        request_file = Path(tmp) / "request.json"
        partial = Path(tmp) / "partial.json"
        request_file.write_text(json.dumps({
            "spec": request.spec.to_dict(), "step": request.step, "store": request.store,
            "parameters": dict(request.parameters), "input_stores": dict(request.input_stores),
            "step_dir": str(step_dir), "partial": str(partial),
        }, default=str), encoding="utf-8")
        nb = _step_notebook(step)
        source = Path(tmp) / "step.ipynb"
        nbformat.write(nb, source)
        executed = StepLayout(step_dir).report
        try:
            papermill.execute_notebook(
                str(source), str(executed), parameters={_REQUEST: str(request_file)},
                kernel_name=kernel_name, progress_bar=False, log_output=True,
                cwd=str(Path.cwd()),
            )
        except papermill.PapermillExecutionError as exc:
            cell = _notebook_cell(step, exc.exec_count, executed)
            result["error"] = StepError("user", f"{exc.ename}: {exc.evalue}", cell=cell,
                                        ename=exc.ename, evalue=exc.evalue).to_dict()
            _tidy_report(executed)
            return EXIT_USER
        _tidy_report(executed)
        try:
            saved = json.loads(partial.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            result["error"] = StepError(
                "infrastructure", f"the kernel did not report its outputs: {exc}").to_dict()
            return EXIT_INFRA
    result.update({k: v for k, v in saved.items() if k != "exit_code"})
    return int(saved.get("exit_code", EXIT_OK))


def _step_notebook(step: StepSpec) -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}

    def helper(source: str, *tags: str) -> Any:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [_HELPER_TAG, *tags]})
        return cell

    nb.cells.append(helper(f"{_REQUEST} = ''", "parameters"))
    nb.cells.append(helper(
        "from cellpipe.runtime.kernel import enter as _cellpipe_enter\n"
        f"_cellpipe_enter({_REQUEST}, globals())\n"
        "del _cellpipe_enter"
    ))
    if step.prelude.strip():
        nb.cells.append(helper(step.prelude))
    for cell in step.cells:
        new = nbformat.v4.new_code_cell(cell.source, metadata={"cellpipe": {
            "cell": cell.index}})
        nb.cells.append(new)
    nb.cells.append(helper(
        "from cellpipe.runtime.kernel import leave as _cellpipe_leave\n"
        f"_cellpipe_leave({_REQUEST}, globals())"
    ))
    return nb


def _request(path: str) -> tuple[StepRequest, StepSpec, dict[str, Any]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    spec = PipelineSpec.from_dict(data["spec"], validate=False)  # written by run_in_kernel
    request = StepRequest(spec=spec, step=data["step"], store=data["store"],
                          parameters=data["parameters"], step_dir=data["step_dir"],
                          input_stores=data["input_stores"])
    return request, spec.step(request.step), data


def enter(path: str, namespace: MutableMapping[str, Any]) -> None:
    """In the kernel: load the step's inputs and its parameters' values into ``namespace``."""
    request, step, _ = _request(path)
    namespace[PARAMETERS_GLOBAL] = dict(request.parameters)
    namespace.update(load_inputs(request, step))


def leave(path: str, namespace: MutableMapping[str, Any]) -> None:
    """In the kernel: save what the step leaves behind; report to the runtime process."""
    request, step, data = _request(path)
    partial: dict[str, Any] = {}
    code = save_outputs(request, step, namespace, partial)
    partial["exit_code"] = code
    write_text_atomic(data["partial"], json.dumps(partial, default=str))


def _notebook_cell(step: StepSpec, exec_count: int | None,
                   executed: Path) -> int | None:
    """Map papermill's failing execution count back to the notebook's cell index."""
    try:
        import nbformat

        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return None
    for cell in nb.cells:
        if exec_count is not None and cell.get("execution_count") == exec_count:
            index = cell.metadata.get("cellpipe", {}).get("cell")
            return int(index) if index is not None else None
    return None


def _tidy_report(path: Path) -> None:
    """Drop cellpipe's helper cells from the report: it shows the step's own cells."""
    try:
        import nbformat

        nb = nbformat.read(path, as_version=4)
    except Exception:
        return
    helpers = {_HELPER_TAG, "injected-parameters"}  # papermill adds the latter
    nb.cells = [c for c in nb.cells if not helpers & set(c.metadata.get("tags", []))]
    write_text_atomic(path, nbformat.writes(nb))
