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
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.core.layout import StepLayout
from cellpipe.core.spec import PARAMETERS_GLOBAL, StepSpec
from cellpipe.errors import CellpipeError, StepError
from cellpipe.runtime.request import EXIT_INFRA, EXIT_OK, EXIT_USER, StepRequest
from cellpipe.runtime.shell import CellRun, describe_error, make_shell, run_cell
from cellpipe.runtime.shell import warm_shell as warm_shell
from cellpipe.runtime.state import (
    RANDOM_STATE,
    digests,
    random_state_digests,
)
from cellpipe.runtime.transfer import (
    check_assumptions,
    load_inputs,
    restore_files,
    save_files,
    save_outputs,
)

__all__ = ["EXIT_INFRA", "EXIT_OK", "EXIT_USER", "StepRequest", "environment_fingerprint",
           "load_inputs", "run_step", "save_outputs", "warm_shell"]


def run_step(request: StepRequest) -> int:
    """Run a step; write ``result.json`` and the report; return the exit code."""
    started = time.time()
    step_dir = Path(request.step_dir)
    step_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"step": request.step, "started": started, "status": "running"}
    cells: list[CellRun] = []
    try:
        step = request.spec.step(request.step)
        code = _run(request, step, cells, result)
    except CellpipeError as exc:
        code = EXIT_INFRA
        result["error"] = exc.to_dict(kind="infrastructure")
        print(f"cellpipe: step {request.step!r} failed: {exc}", file=sys.stderr)
    except Exception as exc:  # a bug or an environment failure, not the user's code
        code = EXIT_INFRA
        result["error"] = StepError.of_exception(exc).to_dict()
        traceback.print_exc()
    result["status"] = "succeeded" if code == EXIT_OK else "failed"
    result["exit_code"] = code
    result["finished"] = time.time()
    result["duration"] = round(result["finished"] - started, 6)
    try:
        from cellpipe.runtime.report import write_report

        if request.runtime != "kernel":  # papermill's executed notebook is that report
            write_report(StepLayout(step_dir).report, request, cells)
    except Exception as exc:  # the report must never hide the step's own outcome
        print(f"cellpipe: could not write the report: {exc}", file=sys.stderr)
    if request.artifacts_dir:
        _write_artifacts(request, step_dir, result)
    # Not synced: the engine folds it into the run's record as soon as the step ends.
    write_text_atomic(StepLayout(step_dir).result, json.dumps(result, indent=2, default=str) + "\n",
                      durable=False)
    return code


def _run(
    request: StepRequest,
    step: StepSpec,
    cells: list[CellRun],
    result: dict[str, Any],
) -> int:
    if request.runtime == "kernel":
        from cellpipe.runtime.kernel import run_in_kernel

        return run_in_kernel(request, step, result)
    shell = make_shell()
    namespace = shell.user_ns
    namespace[PARAMETERS_GLOBAL] = dict(request.parameters)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    namespace.update(load_inputs(request, step))
    if request.carry_files:
        restore_files(request, step)
    timings["load_inputs"] = time.perf_counter() - t0
    # What analysis says the step leaves unchanged: checked after it ran.
    unchanged = [n for n in step.reads if n not in step.writes and n != RANDOM_STATE]
    before = digests(namespace, unchanged)

    t0 = time.perf_counter()
    if step.prelude.strip():
        outcome = shell.run_cell(step.prelude, store_history=False, silent=True)
        if not outcome.success:
            error = outcome.error_before_exec or outcome.error_in_exec
            result["error"] = StepError(
                "user", f"replaying imports and definitions failed: {describe_error(error)}",
                hint="an import or definition from an earlier cell fails on its own; "
                "check the step's requirements").to_dict()
            return EXIT_USER
    random_before = random_state_digests()
    for cell in step.cells:
        run = run_cell(shell, cell.index, cell.source)
        cells.append(run)
        if run.error is not None:
            result["error"] = run.error
            timings["execute"] = time.perf_counter() - t0
            result["timings"] = timings
            return EXIT_USER
    timings["execute"] = time.perf_counter() - t0
    result["warnings"] = check_assumptions(step, namespace, before, random_before)

    t0 = time.perf_counter()
    code = save_outputs(request, step, namespace, result)
    if code == EXIT_OK and request.carry_files:
        result["files"] = save_files(request, step)
    timings["save_outputs"] = time.perf_counter() - t0
    if step.charts or (request.artifacts_dir and step.settings.models):
        _for_the_ui(request, step, namespace, result)
    result["timings"] = timings
    return code


def _for_the_ui(request: StepRequest, step: StepSpec, namespace: dict[str, Any],
                result: dict[str, Any]) -> None:
    """The step's classification metrics (always) and its models (``--artifacts``)."""
    from cellpipe.core.layout import StepOutputs
    from cellpipe.runtime.artifacts import classification_values, save_models

    try:
        charts, warnings = classification_values(step, namespace)
        if charts:
            result["classification"] = charts
        if request.artifacts_dir and step.settings.models:
            result["models"], more = save_models(step, namespace,
                                                 StepOutputs(Path(request.artifacts_dir)))
            warnings += more
    except Exception as exc:  # what the UI shows never changes the step's outcome
        message = f"could not keep the step's charts or models for the UI: {exc}"
        print(f"cellpipe: warning: {message}", file=sys.stderr)
        warnings = [{"kind": "artifacts", "message": message}]
    if warnings:
        result["warnings"] = [*result.get("warnings", []), *warnings]


def _write_artifacts(request: StepRequest, step_dir: Path, result: dict[str, Any]) -> None:
    """The report as HTML, the figures, the classification metrics: for the cluster's UI."""
    from cellpipe.core.layout import StepOutputs
    from cellpipe.runtime.artifacts import write_artifacts

    try:
        result["artifacts"] = write_artifacts(step_dir, StepOutputs(Path(request.artifacts_dir)),
                                              request.step, result)
    except Exception as exc:  # the UI's files never change the step's outcome
        message = f"could not write the step's artifacts for the UI: {exc}"
        print(f"cellpipe: warning: {message}", file=sys.stderr)
        result["warnings"] = [*result.get("warnings", []), {"kind": "artifacts",
                                                            "message": message}]


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

