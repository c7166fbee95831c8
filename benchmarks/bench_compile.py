"""Benchmark: analysis + compile time of cellpipe, and the cold start of ``cellpipe compile``.

Run from the repository root::

    python benchmarks/bench_compile.py [--sizes 100,500,1000,2000] [--repeat 3]

It only PRINTS figures (and the targets next to them); it never asserts, so a slow
machine does not turn it into a failing test. See benchmarks/README.md for measured output.

Part 1 times ``api.compile_spec(nb)`` (read, plan, link, lint, build the spec) on generated
notebooks of three shapes:

* ``chain``     each cell is step ``s{i}``, reading step ``s{i-1}``'s variables (linear chain);
* ``chain+fn``  the same chain plus one untagged cell at the top holding only imports and 20
                function definitions (they read module-level globals from a ``parameters``
                cell and call one another); every step calls one or two of them. This is the
                case where a per-step-pair re-analysis (Kale 2.3: 40 s for 200 steps) blows up;
* ``fan-out``   one producer step, N-2 independent steps each reading the producer's output,
                then one final step reading ALL N-2 outputs (a list literal, 8 names a line).

Each configuration gets one warm-up run (not counted), then ``--repeat`` timed runs with the
garbage collector collected before (but left enabled during) each; the best is reported.
``file`` times the same compile given the path of the notebook written to a .ipynb file
(so it includes JSON parsing and nbformat's reading).

Part 2 runs ``cellpipe compile sample_notebooks/tabular_tags.ipynb -o <tmp>.json`` as a new
process (best and median of 5, after one warm-up), next to ``python -c pass`` measured the
same way in the same run, and lists the heavy third-party packages such a process imports.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from cellpipe import api
from cellpipe.errors import PipelineError

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_notebooks" / "tabular_tags.ipynb"
N_FUNCTIONS = 20
TARGET_CELLS = 1000
TARGET_SECONDS = 1.0
TARGET_CLI_SECONDS = 0.3  # issue 13: lint/compile of a sample as a new process
TARGET_FIRST_STEP = 0.5  # issue 13: from `cellpipe run` to the first step's code
HEAVY = ("IPython", "pandas", "numpy", "rich", "jsonschema", "nbformat", "click")

v4 = nbformat.v4


# --------------------------------------------------------------------------- notebooks


def _step(source: str, name: str) -> Any:
    return v4.new_code_cell(source, metadata={"tags": [f"step:{name}"]})


def _chain_body(i: int, call: str | None) -> str:
    lines = [
        f"x_{i} = x_{i - 1} * 2 + len(items_{i - 1})",
        f"items_{i} = [v + {i % 7} for v in items_{i - 1}][-5:]",
        f"total_{i} = {call if call else f'sum(items_{i}) + x_{i} % 11'}",
        f"print(f'step {i}: x={{x_{i}}} total={{total_{i}}}')",
    ]
    return "\n".join(lines)


def _functions_cell() -> str:
    """Only imports and 20 functions; each reads module globals and calls another one."""
    lines = ["import math", "import statistics", "from collections import Counter", ""]
    for k in range(N_FUNCTIONS):
        lines.append(f"def f{k}(value, items):")
        lines.append(f'    """Helper {k}: scale, shift and summarize."""')
        lines.append("    base = value * SCALE + OFFSET")
        if k >= 2:
            lines.append(f"    base += f{k - 1}(base % 97, items[:3]) - f{k // 3}(1, items[:1])")
        elif k == 1:
            lines.append("    base += f0(base % 97, items[:3])")
        lines.append("    counts = Counter(v % LABELS for v in items)")
        lines.append("    spread = statistics.pstdev(items) if len(items) > 1 else 0.0")
        lines.append("    return base + len(counts) + math.floor(spread)")
        lines.append("")
    return "\n".join(lines)


def chain_notebook(n: int, functions: bool = False) -> Any:
    """A linear chain of ``n`` step cells (plus a functions cell and a parameters cell)."""
    cells = []
    if functions:
        cells.append(v4.new_code_cell(_functions_cell()))
        cells.append(v4.new_code_cell("SCALE = 3\nOFFSET = 7\nLABELS = 4",
                                      metadata={"tags": ["parameters"]}))
    cells.append(_step("x_0 = 1\nitems_0 = [1, 2, 3, 4]", "s0"))
    for i in range(1, n):
        call = None
        if functions:
            a, b = i % N_FUNCTIONS, (i * 3 + 1) % N_FUNCTIONS
            call = f"f{a}(x_{i}, items_{i})" + (f" + f{b}(x_{i - 1}, items_{i})" if i % 2 else "")
        cells.append(_step(_chain_body(i, call), f"s{i}"))
    return v4.new_notebook(cells=cells)


def fanout_notebook(n: int) -> Any:
    """One producer, ``n - 2`` independent readers of it, one step reading all of them."""
    cells = [_step("base = [i * i for i in range(100)]\nscale = len(base) / 10", "produce")]
    for i in range(1, n - 1):
        cells.append(_step(
            f"part_{i} = [v * {i} for v in base[{i % 50}:{i % 50 + 10}]]\n"
            f"score_{i} = sum(part_{i}) / (scale + {i})",
            f"b{i}",
        ))
    names = [f"score_{i}" for i in range(1, n - 1)]
    rows = ["    " + ", ".join(names[k:k + 8]) + "," for k in range(0, len(names), 8)]
    final = "scores = [\n" + "\n".join(rows) + "\n]\nbest = max(scores)\nprint(best, len(scores))"
    cells.append(_step(final, "combine"))
    return v4.new_notebook(cells=cells)


def deep_calls_notebook(depth: int, steps: int = 200) -> Any:
    """Helpers f0..f{depth-1}, each calling the previous two; ``steps`` steps call the last.

    The call graph has exponentially many paths; a walk per path (not per function) would
    take minutes here, so this shape shows the per-step memo of definitions at work.
    """
    lines = ["GAIN = 2", ""]
    for k in range(depth):
        calls = " + ".join(f"g{j}(v - 1)" for j in (k - 1, k - 2) if j >= 0) or "GAIN"
        lines += [f"def g{k}(v):", f"    return v if v < 1 else {calls}", ""]
    cells = [v4.new_code_cell("\n".join(lines))]
    cells.append(_step("x_0 = 1", "s0"))
    for i in range(1, steps):
        cells.append(_step(f"x_{i} = g{depth - 1}(x_{i - 1} % 3)", f"s{i}"))
    return v4.new_notebook(cells=cells)


def bench_deep_calls(depths: list[int]) -> None:
    print("\n== notebook functions calling each other: 200 steps calling the deepest of K "
          "helpers (each calls the previous two) ==")
    print(f"{'K':>4} {'best s':>8}")
    for depth in depths:
        nb = deep_calls_notebook(depth)
        clean_spec(nb, f"deep/{depth}")
        best = best_of(api.compile_spec, 3, lambda nb=nb: copy.deepcopy(nb))
        print(f"{depth:>4} {best:>8.3f}")


SHAPES: dict[str, Callable[[int], Any]] = {
    "chain": lambda n: chain_notebook(n),
    "chain+fn": lambda n: chain_notebook(n, functions=True),
    "fan-out": fanout_notebook,
}


# --------------------------------------------------------------------------- timing


def best_of(func: Callable[[Any], Any], repeat: int, make_arg: Callable[[], Any]) -> float:
    """Best wall time of ``func(arg)`` over ``repeat`` runs, after one uncounted warm-up."""
    func(make_arg())
    times = []
    for _ in range(repeat):
        arg = make_arg()  # a fresh copy, made outside the timed region
        gc.collect()
        start = time.perf_counter()
        func(arg)
        times.append(time.perf_counter() - start)
    return min(times)


def clean_spec(nb: Any, label: str) -> api.PipelineSpec:
    """Compile once; refuse to time a notebook with lint errors (its timing would be moot)."""
    try:
        return api.compile_spec(copy.deepcopy(nb))
    except PipelineError as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        detail = f", e.g. {first.code} {first.message} (cell {first.cell})" if first else ""
        sys.exit(f"generated {label} notebook does not compile: {exc}{detail}")


def bench_compile(sizes: list[int], repeat: int, with_file: bool) -> None:
    print(f"== analysis + compile: api.compile_spec(nb), best of {repeat} after 1 warm-up ==")
    print(f"   target: {TARGET_CELLS} cells under {TARGET_SECONDS:.1f} s, linear growth "
          "(ratio = us/cell vs the smallest size; ~1.0 is linear)")
    header = (f"{'shape':<9} {'cells':>6} {'lines':>7} {'steps':>6} {'best s':>8} "
              f"{'us/cell':>8} {'ratio':>6} {'lines/s':>9}")
    if with_file:
        header += f" {'file s':>8}"
    print(header + "  target")
    print("-" * (len(header) + 8))
    tmp = Path(tempfile.mkdtemp(prefix="cellpipe-bench-"))
    try:
        for shape, make in SHAPES.items():
            base_per_cell = None
            for n in sizes:
                nb = make(n)
                n_cells = len(nb.cells)
                n_lines = sum(c.source.count("\n") + 1 for c in nb.cells)
                steps = len(clean_spec(nb, f"{shape}/{n}").steps)
                best = best_of(api.compile_spec, repeat, lambda nb=nb: copy.deepcopy(nb))
                per_cell = best / n_cells * 1e6
                base_per_cell = base_per_cell or per_cell
                row = (f"{shape:<9} {n_cells:>6} {n_lines:>7} {steps:>6} {best:>8.3f} "
                       f"{per_cell:>8.0f} {per_cell / base_per_cell:>6.2f} {n_lines / best:>9.0f}")
                if with_file:
                    path = tmp / f"{shape}-{n}.ipynb"
                    nbformat.write(nb, str(path))
                    row += f" {best_of(api.compile_spec, repeat, lambda p=path: p):>8.3f}"
                if n == TARGET_CELLS:
                    verdict = "ok" if best < TARGET_SECONDS else "OVER"
                    row += f"  < {TARGET_SECONDS:.1f} s: {verdict}"
                print(row, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- cold CLI


def cellpipe_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m cellpipe.cli.main``."""
    script = Path(sys.executable).parent / ("cellpipe.exe" if os.name == "nt" else "cellpipe")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cellpipe.cli.main"]


def _user_env() -> dict[str, str]:
    """The environment a user's shell has: Python writes its bytecode caches (some CI and
    sandbox shells set PYTHONDONTWRITEBYTECODE, which makes every start recompile)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_process(argv: list[str], runs: int, cwd: str | None = None) -> tuple[float, float]:
    """(best, median) wall seconds of a new process, after one uncounted warm-up."""
    subprocess.run(argv, check=True, capture_output=True, env=_user_env(), cwd=cwd)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=_user_env(), cwd=cwd)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


IMPORTS_PROBE = """
import sys
from cellpipe.cli.main import main
try:
    main(["compile", sys.argv[1], "-o", sys.argv[2]], standalone_mode=False)
finally:
    heavy = {heavy!r}
    print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))))
"""

# What a user's environment may hold that has made the CLI slow before (jsonschema's format
# checkers import rfc3987-syntax, ~2 s) or may: listed with their versions.
ENVIRONMENT = ("jupyterlab", "notebook", "jsonschema", "rfc3987-syntax", "nbformat",
               "nbconvert", "kfp", "hera", "docker", "pandas", "pyarrow", "ipykernel")


def _found_packages() -> str:
    from importlib import metadata

    found = []
    for name in ENVIRONMENT:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found) or "none of them"


FIRST_STEP_NB = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "id": "a", "outputs": [],
         "metadata": {"tags": ["step:first"]}, "source": "import time\nt_first = time.time()"},
        {"cell_type": "code", "execution_count": None, "id": "b", "outputs": [],
         "metadata": {"tags": ["step:second"]}, "source": "later = t_first"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def time_first_step(command: list[str], runs: int, *, cold: bool) -> tuple[float, float]:
    """(best first-step latency, best whole run) of `cellpipe run`, as a new process.

    The latency is from starting `cellpipe run --no-cache` to the moment the first step's
    code runs (the step records time.time()); the runs after one uncounted warm-up (which
    fills the distribution map's cache, as any earlier run in this environment does).
    ``cold``: every warm server is stopped before each run (a user's first run in a
    while: the server starts while the notebook is analyzed); otherwise the previous run's
    server is alive (a user running again).
    """
    import json

    from cellpipe.engines.local.warm import stop_servers
    from cellpipe.marshal import open_store

    with tempfile.TemporaryDirectory(prefix="cellpipe-bench-") as tmp:
        nb = Path(tmp) / "first.ipynb"
        nb.write_text(json.dumps(FIRST_STEP_NB), encoding="utf-8")
        argv = [*command, "run", str(nb), "--no-cache"]
        subprocess.run(argv, check=True, capture_output=True, env=_user_env(), cwd=tmp)
        latencies, totals = [], []
        for _ in range(runs):
            if cold:
                stop_servers()
            start = time.time()
            subprocess.run(argv, check=True, capture_output=True, env=_user_env(), cwd=tmp)
            totals.append(time.time() - start)
            run_dir = sorted((Path(tmp) / ".cellpipe" / "runs").iterdir())[-1]
            state = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            store = open_store(state["steps"]["first"]["store"])
            latencies.append(float(store.load("first", "t_first")) - start)  # type: ignore[arg-type]
    return min(latencies), min(totals)


def bench_cli(runs: int = 5) -> None:
    command = cellpipe_command()
    with tempfile.TemporaryDirectory(prefix="cellpipe-bench-") as tmp:
        out = str(Path(tmp) / "x.json")
        compile_argv = [*command, "compile", str(SAMPLE), "-o", out]
        baseline = time_process([sys.executable, "-c", "pass"], runs)
        compile_ = time_process(compile_argv, runs)
        lint = time_process([*command, "lint", str(SAMPLE)], runs)
        probe = subprocess.run(
            [sys.executable, "-c", IMPORTS_PROBE.format(heavy=HEAVY), str(SAMPLE), out],
            check=True, capture_output=True, text=True, env=_user_env(),
        )
    shown = " ".join(Path(command[0]).name if i == 0 else a for i, a in enumerate(command))
    print(f"\n== cold start: `{shown} compile|lint {SAMPLE.relative_to(REPO)}`, "
          f"new process, {runs} runs after 1 warm-up ==")
    print(f"environment: {_found_packages()}")
    print(f"{'process':<22} {'best s':>8} {'median s':>9}")
    print(f"{'python -c pass':<22} {baseline[0]:>8.3f} {baseline[1]:>9.3f}")
    for name, figures in (("cellpipe compile", compile_), ("cellpipe lint", lint)):
        print(f"{name:<22} {figures[0]:>8.3f} {figures[1]:>9.3f}"
              f"  target <= {TARGET_CLI_SECONDS:.1f} s: "
              f"{'ok' if figures[0] <= TARGET_CLI_SECONDS else 'OVER'}")
    print(f"{'compile - python':<22} {compile_[0] - baseline[0]:>8.3f} "
          f"{compile_[1] - baseline[1]:>9.3f}")
    imported = probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else ""
    print(f"heavy packages imported by a compile (of {', '.join(HEAVY)}): {imported or 'none'}")
    print("`cellpipe run` of a 2-step notebook, new process: when the first step's code "
          "runs after the command starts, and the whole run")
    for label, cold in (("no warm server alive", True), ("previous run's server alive", False)):
        latency, total = time_first_step(command, runs, cold=cold)
        verdict = "ok" if latency <= TARGET_FIRST_STEP else "OVER"
        print(f"  {label:<28} first step {latency:.3f} s (target <= {TARGET_FIRST_STEP:.1f} s: "
              f"{verdict}); whole run {total:.3f} s = {total / baseline[0]:.0f}x python -c pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,1000,2000",
                        help="comma-separated cell counts (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (best kept)")
    parser.add_argument("--no-file", action="store_true", help="skip the read-from-.ipynb column")
    parser.add_argument("--no-cli", action="store_true", help="skip the new-process timing")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print(f"cellpipe benchmark: python {platform.python_version()}, {platform.platform()}, "
          f"{os.cpu_count()} cores")
    bench_compile(sizes, max(1, args.repeat), with_file=not args.no_file)
    bench_deep_calls([10, 20, 30, 60])
    if not args.no_cli:
        bench_cli()


if __name__ == "__main__":
    main()
