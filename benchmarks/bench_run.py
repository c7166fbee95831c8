"""Benchmark: a notebook run as a pipeline vs the same notebook top to bottom with nbclient.

Prints (never asserts):
  (a) pipeline time / nbclient time for the sample notebooks and a generated 20-step chain
      of trivial steps, and the per-step overhead on that chain;
  (b) a cached rerun / the first run;
  (c) the 20-step chain run again in the same process with the warm server alive and the
      cache off, / nbclient;
  (d) generated chains of 10 to 2000 trivial steps, each run in a new process: total time,
      per-step cost, and the engine process's peak memory, so the growth is visible.
Each pipeline measurement in (a) starts a new warm server (the process that preloads the
notebook's modules and forks the steps), so its cost is counted, as on a user's first run;
(c) and (c2) reuse the server alive from the run before, in the same process and in a new
one; (d) reuses it across its sizes.

    python benchmarks/bench_run.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cellpipe import api  # noqa: E402
from cellpipe.engines.local.warm import stop_servers  # noqa: E402

SAMPLES = sorted((ROOT / "sample_notebooks").glob("*.ipynb"))


def _write(cells: list[object], path: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def chain_notebook(path: Path, steps: int = 20) -> Path:
    cells = [nbformat.v4.new_code_cell("x_0 = 1", metadata={"tags": ["step:s0"]})]
    for i in range(1, steps):
        cells.append(nbformat.v4.new_code_cell(f"x_{i} = x_{i - 1} + {i}",
                                               metadata={"tags": [f"step:s{i}"]}))
    return _write(cells, path)


def branches_notebook(path: Path) -> Path:
    """One producer, two CPU-bound branches (~1.5 s each), one step joining them."""
    work = ("total_{b} = 0\nfor i in range(n):\n    total_{b} += (i * {k}) % 7\n")
    cells = [
        nbformat.v4.new_code_cell("n = 12_000_000", metadata={"tags": ["step:size"]}),
        nbformat.v4.new_code_cell(work.format(b="a", k=3), metadata={"tags": ["step:left"]}),
        nbformat.v4.new_code_cell(work.format(b="b", k=5), metadata={"tags": ["step:right"]}),
        nbformat.v4.new_code_cell("both = total_a + total_b", metadata={"tags": ["step:join"]}),
    ]
    return _write(cells, path)


def time_nbclient(path: Path) -> float:
    import nbclient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def cold_server() -> None:
    """Stop the warm servers so the next run pays for starting one."""
    stop_servers()


def time_pipeline(path: Path, root: Path, *, cold: bool = True) -> tuple[float, object]:
    if cold:
        cold_server()
    start = time.perf_counter()
    run = api.run(path, root=root)
    elapsed = time.perf_counter() - start
    assert run.status == "succeeded", run.steps
    return elapsed, run


def step_seconds(run: object) -> float:
    return sum(s.get("duration", 0.0) for s in run.steps.values())  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", default="10,100,500,2000",
                        type=lambda text: [int(n) for n in text.split(",") if n],
                        help="chain lengths for (d)")
    args = parser.parse_args()
    print(f"cellpipe run benchmark: python {platform.python_version()}, "
          f"{platform.platform()}, {os.cpu_count()} cores; best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cases = [(p.stem, p) for p in SAMPLES]
        cases.append(("chain-20 (trivial)", chain_notebook(tmp / "chain20.ipynb")))
        cases.append(("2 CPU branches", branches_notebook(tmp / "branches.ipynb")))
        print("\n(a) first run as a pipeline vs top to bottom with nbclient "
              "(kernel start included)")
        print(f"{'notebook':<20} {'steps':>5} {'nbclient s':>10} {'pipeline s':>10} "
              f"{'ratio':>6} {'per-step overhead s':>20}")
        reruns = []
        for label, path in cases:
            steps = len(api.compile_spec(path).steps)
            nb_times = [time_nbclient(path) for _ in range(args.repeat)]
            pipe_times, runs = [], []
            for i in range(args.repeat):
                root = tmp / f"{path.stem}-{i}" / ".cellpipe"
                elapsed, run = time_pipeline(path, root)
                pipe_times.append(elapsed)
                runs.append((root, run))
            nb_best, pipe_best = min(nb_times), min(pipe_times)
            overhead = (pipe_best - nb_best) / steps
            print(f"{label:<20} {steps:>5} {nb_best:>10.2f} {pipe_best:>10.2f} "
                  f"{pipe_best / nb_best:>6.2f} {overhead:>20.3f}")
            root, _ = runs[0]
            cached = min(time_pipeline(path, root, cold=False)[0] for _ in range(args.repeat))
            reruns.append((label, pipe_best, cached))
        print("\n(b) cached rerun (nothing changed) / first run")
        print(f"{'notebook':<20} {'first s':>8} {'cached s':>9} {'ratio':>6}")
        for label, first_time, cached in reruns:
            print(f"{label:<20} {first_time:>8.2f} {cached:>9.3f} {cached / first_time:>6.3f}")
        print("\ntargets (issue 3): chains <= 1.15, parallel branches < 0.8, per-step overhead "
              "<= 0.15 s, cached/first <= 0.05")
        chain = tmp / "chain20.ipynb"
        nb_best = min(time_nbclient(chain) for _ in range(args.repeat))
        root = tmp / "warm" / ".cellpipe"
        time_pipeline(chain, root)  # starts the warm server
        warm = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            run = api.run(chain, root=root, cache=False)
            warm.append(time.perf_counter() - start)
            assert run.status == "succeeded"
        print("\n(c) chain-20 again in the same session (warm server alive, --no-cache) "
              "vs nbclient")
        print(f"nbclient {nb_best:.2f} s, pipeline {min(warm):.2f} s, ratio "
              f"{min(warm) / nb_best:.2f}, per step {min(warm) / 20 * 1000:.0f} ms "
              "(targets: <= 0.8, <= 20 ms)")
        cli = []
        for _ in range(args.repeat):
            cli.append(scale_run(chain, root)[0])
        print("(c2) chain-20 as `cellpipe run --no-cache` in a new process, the previous "
              "run's warm server alive: api.run in that process "
              f"{min(cli):.2f} s, ratio {min(cli) / nb_best:.2f}")
        print("\n(d) chains of trivial steps, each `cellpipe run` in a new process")
        print(f"{'steps':>6} {'total s':>8} {'per step ms':>12} {'engine peak MB':>15}")
        for size in args.scale:
            path = chain_notebook(tmp / f"chain{size}.ipynb", steps=size)
            total, peak = scale_run(path, tmp / f"scale-{size}" / ".cellpipe")
            print(f"{size:>6} {total:>8.2f} {total / size * 1000:>12.1f} {peak:>15.0f}")
    shutil.rmtree(tmp_name, ignore_errors=True)


SCALE_PROBE = """
import resource, sys, time
from cellpipe import api
start = time.perf_counter()
run = api.run(sys.argv[1], root=sys.argv[2], cache=False)
assert run.status == "succeeded", run.status
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def scale_run(path: Path, root: Path) -> tuple[float, float]:
    """(seconds of api.run, the engine process's peak RSS in MB), in a new process."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", SCALE_PROBE, str(path), str(root)],
                          check=True, capture_output=True, text=True)
    total, peak = done.stdout.split()[-2:]
    return float(total), float(peak)


if __name__ == "__main__":
    main()
