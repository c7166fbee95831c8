r"""``python -m cellpipe.runtime``: run one step of a pipeline spec.

Usage::

    python -m cellpipe.runtime --spec SPEC.json --step NAME --store DIR_OR_URL \\
        --step-dir DIR [--parameters PARAMS.json] [--param NAME=TEXT ...] \\
        [--input-store STEP=DIR ...] [--outputs-dir DIR [--artifacts]] \\
        [--carry-files [store|workflow]] [--publish URL] [--metrics-file FILE]

Cluster engines pass parameter values as text (``--param C=0.5``), converted to the types the
spec declares, and collect the step's metrics from ``--outputs-dir`` (``metrics.json`` and one
file per metric, for Argo's output parameters); with ``--artifacts`` also what their UIs show:
the report as HTML, its figures, classification metrics and models
(:class:`cellpipe.core.layout.StepOutputs` names the files). ``--metrics-file`` also writes
the metrics as ``NAME=VALUE`` lines, the text Katib's File metrics collector reads
(:func:`write_metrics_file`).

Exits 0 when the step succeeded, 1 when the step's code failed, 2 when cellpipe or its
surroundings did (see :mod:`cellpipe.runtime.execute`).

``--publish URL`` copies what the step leaves (its values when it succeeded, its result
and report either way) from a local ``--store`` to an object store, where the run's
submitter reads them back (:class:`cellpipe.ClusterRun`): Kubeflow Pipelines keeps a step's
data in its own artifact store, which nothing outside the cluster can read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cellpipe.core.layout import StepLayout, StepOutputs
from cellpipe.runtime.execute import EXIT_INFRA, StepRequest, run_step
from cellpipe.tracking.config import ENV_RUN


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the step, return its exit code."""
    parser = argparse.ArgumentParser(prog="python -m cellpipe.runtime", description=__doc__)
    parser.add_argument("--spec", required=True, help="the pipeline spec (JSON file)")
    parser.add_argument("--step", required=True, help="the step to run")
    parser.add_argument("--store", required=True, help="artifact store: directory or URL")
    parser.add_argument("--step-dir", required=True, help="where result and report go")
    parser.add_argument("--parameters", help="JSON file with the run's parameter values")
    parser.add_argument("--runtime", choices=["ipython", "kernel"], default="ipython",
                        help="an IPython shell in this process (default), or a Jupyter "
                        "kernel through papermill")
    parser.add_argument("--input-store", action="append", default=[], metavar="STEP=STORE",
                        help="read STEP's artifacts from STORE (reused cached results)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=TEXT",
                        help="a parameter value as text, converted to its declared type")
    parser.add_argument("--outputs-dir", help="write metrics.json and one file per metric here")
    parser.add_argument("--artifacts", action="store_true",
                        help="also write the report as HTML, its figures, classification "
                        "metrics and models into --outputs-dir (for a cluster's UI)")
    parser.add_argument("--carry-files", nargs="?", const="store", default="",
                        choices=["store", "workflow"],
                        help="steps share no working directory (cluster targets): 'store' "
                        "(the default) saves the files the step writes into the store and "
                        "restores the files it reads from earlier steps' stores; 'workflow' "
                        "leaves literal paths to the workflow's artifacts (Argo) and checks "
                        "their sha256")
    parser.add_argument("--publish", metavar="URL", default="",
                        help="also copy the step's values, result and report to this object "
                        "store (a cluster run's results, read back by ClusterRun)")
    parser.add_argument("--metrics-file", metavar="FILE",
                        help="also write the step's numeric metrics to FILE as NAME=VALUE "
                        "lines (Katib's File metrics collector, TEXT format)")
    args = parser.parse_args(argv)
    if args.artifacts and not args.outputs_dir:
        parser.error("--artifacts needs --outputs-dir")
    try:
        from cellpipe.core.spec import PipelineSpec
        from cellpipe.core.values import convert_parameter

        spec = PipelineSpec.from_json(Path(args.spec).read_text(encoding="utf-8"))
        parameters = (
            json.loads(Path(args.parameters).read_text(encoding="utf-8"))
            if args.parameters else {}
        )
        for item in args.param:
            name, _, text = item.partition("=")
            parameters[name] = convert_parameter(spec, name, text)
    except Exception as exc:
        print(f"cellpipe: cannot start step {args.step!r}: {exc}", file=sys.stderr)
        return EXIT_INFRA
    inputs = dict(item.split("=", 1) for item in args.input_store)
    request = StepRequest(spec=spec, step=args.step, store=args.store, parameters=parameters,
                          step_dir=args.step_dir, input_stores=inputs,
                          runtime=args.runtime, carry_files=args.carry_files,
                          artifacts_dir=args.outputs_dir if args.artifacts else "")
    code = run_step(request)
    if args.outputs_dir:
        write_outputs(Path(args.step_dir), Path(args.outputs_dir))
    if args.metrics_file:
        write_metrics_file(Path(args.step_dir), Path(args.metrics_file))
    publish_step_files(args.store, args.step, Path(args.step_dir))
    if os.environ.get(ENV_RUN):  # a cluster step of a tracked pipeline logs itself
        from cellpipe.tracking.step import track_step

        track_step(spec, args.step, Path(args.step_dir), parameters, code)
    if args.publish:
        code = publish_copy(args.publish, args.store, args.step, Path(args.step_dir), code)
    return code


def publish_copy(url: str, store: str, step: str, step_dir: Path, code: int) -> int:
    """Copy the step's values (when it succeeded), result and report to ``url``.

    The values keep their sidecars, each uploaded after its data as a store does. Failing
    to publish fails the step (exit 2): its submitter could not read its values back.
    """
    from cellpipe.core.layout import STORE_STEP_FILES, STORE_STEPS_DIR
    from cellpipe.marshal.remote import put_document
    from cellpipe.marshal.store import SIDECAR_SUFFIX, is_remote

    try:
        local = Path(store)
        if code == 0 and not is_remote(store) and local.is_dir():
            files = sorted(p for p in local.rglob("*") if p.is_file())
            # data before sidecars: a reader never finds a sidecar without its data
            for path in sorted(files, key=lambda p: p.name.endswith(SIDECAR_SUFFIX)):
                put_document(url, path.relative_to(local).as_posix(), path)
        for name in STORE_STEP_FILES:
            if (step_dir / name).is_file():
                put_document(url, f"{STORE_STEPS_DIR}/{step}/{name}", step_dir / name)
    except Exception as exc:
        print(f"cellpipe: step {step!r}: could not publish its results to {url}: {exc}",
              file=sys.stderr)
        return EXIT_INFRA
    return code


def publish_step_files(store: str, step: str, step_dir: Path) -> None:
    """Put the step's result and report into an object store, for the run's submitter.

    ``ClusterRun`` reads them back there; a pod's own folder is gone when the run ends.
    """
    from cellpipe.marshal.store import is_remote

    if not is_remote(store):
        return
    from cellpipe.core.layout import STORE_STEP_FILES, STORE_STEPS_DIR
    from cellpipe.marshal.remote import put_document

    for name in STORE_STEP_FILES:
        local = step_dir / name
        if local.is_file():
            try:
                put_document(store, f"{STORE_STEPS_DIR}/{step}/{name}", local)
            except Exception as exc:  # the step's values are stored; its report is extra
                print(f"cellpipe: step {step!r}: could not store its {name}: {exc}",
                      file=sys.stderr)


def write_outputs(step_dir: Path, outputs_dir: Path) -> None:
    """The step's metrics as ``metrics.json`` and one file per metric (for cluster engines)."""
    try:
        result = json.loads(StepLayout(step_dir).result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {}
    metrics = result.get("metrics") or {}
    outputs = StepOutputs(outputs_dir)
    outputs_dir.mkdir(parents=True, exist_ok=True)
    outputs.metrics.write_text(json.dumps(metrics, sort_keys=True) + "\n", encoding="utf-8")
    for name, value in metrics.items():
        outputs.metric(name).write_text(json.dumps(value), encoding="utf-8")


def write_metrics_file(step_dir: Path, path: Path) -> None:
    r"""The step's metrics as ``TIME NAME=VALUE`` lines, for Katib's metrics collector.

    Katib's File collector (format TEXT) reads ``NAME=VALUE`` pairs with its default filter
    ``([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)``: plain decimals, no exponent, so values are
    written positionally (``0.00001``, not ``1e-05``); the RFC 3339 time in front is the
    observation's time. Only this file is read (not the pod's stdout), so nothing the
    notebook prints can pass for a metric. A metric that is no finite number (a string,
    NaN) is left out: Katib then records the objective as unavailable and fails the trial,
    rather than ranking a value that is none.
    """
    from datetime import datetime, timezone

    from cellpipe.core.atomic import write_text_atomic

    try:
        result = json.loads(StepLayout(step_dir).result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = {}
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [f"{stamp} {name}={text}" for name, value in sorted((result.get("metrics") or {})
                                                                 .items())
             if (text := metric_text(value)) is not None]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "".join(line + "\n" for line in lines), durable=False)
    except OSError as exc:
        print(f"cellpipe: cannot write the metrics file {path}: {exc}", file=sys.stderr)


def metric_text(value: object) -> str | None:
    """A metric as a plain decimal (``-0.5``, ``3``, ``0.000012``); None if it is no number."""
    import math
    from decimal import Decimal

    if isinstance(value, bool):
        return "1" if value else "0"
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")  # the shortest repr, without an exponent
    return text if "." in text else f"{text}.0"


if __name__ == "__main__":
    sys.exit(main())
