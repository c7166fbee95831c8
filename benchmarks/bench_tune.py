"""Benchmark: tuning a model step (`cellpipe.tune`) vs the same trials as independent full runs.

The sample notebook ``sample_notebooks/tabular_tags.ipynb`` (load, clean, features, split,
three model branches, evaluate) is tuned for ``best_f1`` over ``max_depth`` and
``learning_rate``, which only the random-forest and gradient-boosting steps read. The
baseline runs the very parameter values the study drew, each as a run with the cache off
(every step every time), in the same process after the same warm-up. Prints (never
asserts) both times, their ratio, and how many times each step ran in each.

    python benchmarks/bench_tune.py [--trials 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cellpipe import api  # noqa: E402

SAMPLE = ROOT / "sample_notebooks" / "tabular_tags.ipynb"
SPACE = {"max_depth": "int(2, 8)", "learning_rate": "loguniform(0.01, 0.3)"}


def ran(runs: list[api.Run]) -> Counter[str]:
    """How many of ``runs`` executed each step (a cached step did not)."""
    counts: Counter[str] = Counter()
    for run in runs:
        for step, state in run.steps.items():
            counts[step] += state["status"] == "succeeded"
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"cellpipe tune benchmark: python {platform.python_version()}, "
          f"{platform.platform()}, {os.cpu_count()} cores; {args.trials} trials of "
          f"{SAMPLE.name}, space {SPACE}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        notebook = Path(shutil.copy(SAMPLE, tmp / SAMPLE.name))
        # warm-up (not counted): the warm server imports pandas and scikit-learn once
        warm = api.run(notebook, cache=False, root=tmp / "warm-up")
        assert warm.status == "succeeded", warm.steps

        start = time.perf_counter()
        study = api.tune(notebook, "best_f1", "maximize", SPACE, trials=args.trials,
                         seed=args.seed, root=tmp / "tune")
        tuning = time.perf_counter() - start
        trials = study.trials
        assert all(t.state == "COMPLETE" for t in trials), [t.reason for t in trials]
        tuned_runs = [t.run for t in trials]

        start = time.perf_counter()
        full_runs = [api.run(notebook, t.params, cache=False, root=tmp / "full")
                     for t in trials]
        independent = time.perf_counter() - start
        assert all(r.status == "succeeded" for r in full_runs)
        same = all(a.metrics == b.metrics for a, b in zip(tuned_runs, full_runs, strict=True))

        print(f"\n{'':<34} {'seconds':>8} {'per trial':>10}")
        print(f"{'tune (cache on)':<34} {tuning:>8.2f} {tuning / len(trials):>10.3f}")
        print(f"{'independent full runs (no cache)':<34} {independent:>8.2f} "
              f"{independent / len(trials):>10.3f}")
        print(f"ratio tune / independent: {tuning / independent:.2f}  "
              f"(independent / tune: {independent / tuning:.2f}x)")
        print(f"same metrics in every trial and its full run: {same}")
        print(f"best_f1 {study.best_value:.4f} with {study.best_params}")

        tuned, full = ran(tuned_runs), ran(full_runs)
        print(f"\n{'step':<16} {'ran in tune':>11} {'ran in full':>11}  reads tuned")
        spec = api.compile_spec(notebook)
        for step in spec.steps:
            reads = sorted(set(step.parameters) & set(SPACE))
            print(f"{step.name:<16} {tuned[step.name]:>11} {full[step.name]:>11}  "
                  f"{', '.join(reads) or '-'}")


if __name__ == "__main__":
    main()
