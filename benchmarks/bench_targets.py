"""Benchmark: compiling a generated notebook for Argo Workflows and Kubeflow Pipelines.

Run from the repository root::

    python benchmarks/bench_targets.py [--cells 1000] [--repeat 3]

It only PRINTS figures; it never asserts. The notebook is bench_compile.py's ``chain``
shape: N cells, each cell step ``s{i}`` reading step ``s{i-1}``'s variables. Given the
spec (``api.compile_spec``, timed as the baseline in the same process) and a fixed image
map, it times:

* ``argo``: ``compile_argo`` (Hera's models → the Workflow dict) plus ``to_yaml``;
* ``kfp``:  ``compile_kfp`` (a component per step, compiled by the kfp SDK to IR YAML).

Each is run once to warm up, then ``--repeat`` times; the best is reported, with its
ratio to the spec compile and its time per step.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

from bench_compile import chain_notebook  # noqa: E402

from cellpipe import api  # noqa: E402


def best(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls after one warm-up, and the last result."""
    result = func()
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    """Parse arguments, compile, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from cellpipe.targets.argo.compile import compile_argo, to_yaml
    from cellpipe.targets.cluster import cluster_settings
    from cellpipe.targets.kfp.compile import compile_kfp

    nb = chain_notebook(args.cells)
    spec_time, spec = best(lambda: api.compile_spec(nb), args.repeat)
    steps = len(spec.steps)
    images = {s.name: f"registry.local/bench/chain-{s.name}:0123456789abcdef"
              for s in spec.steps}
    settings = cluster_settings(spec)
    argo_time, argo_text = best(lambda: to_yaml(compile_argo(spec, images, settings)),
                                args.repeat)
    kfp_time, kfp_text = best(lambda: compile_kfp(spec, images, settings=settings),
                              args.repeat)
    rows = [("spec (baseline)", spec_time, 0), ("argo", argo_time, len(argo_text)),
            ("kfp", kfp_time, len(kfp_text))]

    print(f"cellpipe target compile benchmark: python {platform.python_version()}, "
          f"{platform.platform()}; chain notebook of {args.cells} cells = {steps} steps; "
          f"best of {args.repeat}")
    print(f"{'target':<18}{'seconds':>9}{'x spec':>9}{'ms/step':>9}{'output KB':>11}")
    for name, seconds, size in rows:
        print(f"{name:<18}{seconds:>9.2f}{seconds / spec_time:>9.2f}"
              f"{1000 * seconds / steps:>9.2f}{size / 1024:>11.0f}")
    print("(argo and kfp start from the spec: their time is on top of the spec's)")


if __name__ == "__main__":
    main()
