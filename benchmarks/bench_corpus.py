"""Benchmark: the corpus of realistic notebooks (tests/corpus) as pipelines.

For each notebook, prints (never asserts) in one table:
  - whether it is faithful (every name it ends with top to bottom, nbclient, equals what
    the pipeline's ``Run.load`` gives), refused by lint (with the code), or neither;
  - nbclient top-to-bottom time, a first pipeline run (cache off, a new warm server) and
    their ratio, measured in this process one after the other.

    python benchmarks/bench_corpus.py [--workers 2] [NAME ...]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_run import cold_server  # noqa: E402

from cellpipe import api  # noqa: E402
from tests.engines.faithful import assert_faithful, notebook_values  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def measure(path: Path, workers: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="cellpipe-corpus-"))
    copy = work / "corpus"
    shutil.copytree(CORPUS, copy, ignore=shutil.ignore_patterns("test_*.py", "__pycache__",
                                                                ".cellpipe"))
    notebook = copy / path.name
    row: dict[str, object] = {"notebook": path.stem}
    try:
        errors = [d for d in api.lint(notebook).diagnostics if d.severity == "error"]
        if errors:
            row["verdict"] = f"refused ({', '.join(sorted({d.code for d in errors}))})"
            return row
        started = time.perf_counter()
        notebook_values(notebook, work)
        row["nbclient"] = time.perf_counter() - started
        cold_server()
        started = time.perf_counter()
        api.run(notebook, root=work / "timed", cache=False, workers=workers)
        row["pipeline"] = time.perf_counter() - started
        try:
            assert_faithful(notebook, work, workers=workers)
            row["verdict"] = "faithful"
        except AssertionError as exc:
            row["verdict"] = "DIFFERS: " + str(exc).splitlines()[0][:60]
    except Exception:
        row["verdict"] = "ERROR: " + traceback.format_exc().splitlines()[-1][:60]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    paths = sorted(CORPUS.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names]
    print(f"python {platform.python_version()}, {len(paths)} notebooks, workers={args.workers}")
    rows = [measure(path, args.workers) for path in paths]
    print(f"{'notebook':<26} {'verdict':<30} {'nbclient':>9} {'pipeline':>9} {'ratio':>6}")
    for row in rows:
        nb, pipe = row.get("nbclient"), row.get("pipeline")
        ratio = f"{pipe / nb:.2f}" if isinstance(nb, float) and isinstance(pipe, float) else ""
        print(f"{row['notebook']:<26} {row['verdict']!s:<30} "
              f"{f'{nb:.2f}s' if isinstance(nb, float) else '':>9} "
              f"{f'{pipe:.2f}s' if isinstance(pipe, float) else '':>9} {ratio:>6}")
    faithful = sum(1 for r in rows if r["verdict"] == "faithful")
    refused = sum(1 for r in rows if str(r["verdict"]).startswith("refused"))
    timed = [r for r in rows if isinstance(r.get("pipeline"), float)]
    total_nb = sum(float(r["nbclient"]) for r in timed)  # type: ignore[arg-type]
    total_pipe = sum(float(r["pipeline"]) for r in timed)  # type: ignore[arg-type]
    print(f"faithful {faithful}/{len(rows)}, refused by lint with a reason {refused}, "
          f"other {len(rows) - faithful - refused}")
    if timed:
        print(f"total: nbclient {total_nb:.1f}s, pipeline {total_pipe:.1f}s, "
              f"ratio {total_pipe / total_nb:.2f}")


if __name__ == "__main__":
    main()
