"""Marshalling between steps: round-trip time and peak memory of cellpipe's artifact store.

    python benchmarks/bench_marshal.py [--dir DIR] [--repeat 3] [--array-mb 512] [--frame-rows N]

(c) Round trip (save + load + touch the data) of a float64 array through a local
    ArtifactStore vs np.save/np.load and pickle protocol 5, and of a mixed DataFrame vs
    DataFrame.to_pickle/pd.read_pickle. Best of --repeat after one uncounted warm-up, all
    runs shown. Every run writes new files into a fresh directory (as a pipeline run does),
    and the directory is deleted after the clock stops, for every method alike. All files
    live in one scratch directory on one disk and stay in the page cache (nothing is
    dropped): these are page-cache figures, and only the store's fsync waits for the disk.
(d) Peak memory (ru_maxrss; VmHWM and anonymous vs file-backed resident memory from
    /proc/self/status) of fresh processes that load the array and sum all of it, or 1% of
    it. Linux carries a process's ru_maxrss over fork + exec, so each is started from a small
    launcher process rather than from this (large) one.

Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from cellpipe.marshal import open_store

Run = Callable[[str], object]  # gets a fresh, empty directory to write into


def timed(run: Run, scratch: str, repeat: int) -> list[float]:
    times = []
    for attempt in range(repeat + 1):  # attempt 0 warms up: first-touch page faults
        where = tempfile.mkdtemp(dir=scratch)
        start = time.perf_counter()
        run(where)
        elapsed = time.perf_counter() - start
        shutil.rmtree(where)
        if attempt:
            times.append(elapsed)
    return times


def row(label: str, times: list[float], reference: float | None, target: str = "") -> str:
    best = min(times)
    runs = " ".join(f"{t:.3f}" for t in times)
    ratio = f"{best / reference:5.2f}x" if reference else "    -"
    return f"{label:<46} {best:7.3f}  {ratio}  [{runs}]  {target}".rstrip()


def header(title: str) -> None:
    print(f"\n== {title} ==")
    print(f"{'method':<46} {'best s':>7}  {'ratio':>6}  [runs]")


# -- (c) the array ---------------------------------------------------------------------


def bench_array(scratch: str, megabytes: int, repeat: int) -> None:
    array = np.random.default_rng(0).random(megabytes * 1024 * 1024 // 8)

    def with_numpy(where: str) -> None:
        path = os.path.join(where, "weights.npy")
        np.save(path, array)
        np.load(path).sum()

    def with_pickle(where: str) -> None:
        path = os.path.join(where, "weights.pkl")
        with open(path, "wb") as handle:
            pickle.dump(array, handle, protocol=5)
        with open(path, "rb") as handle:
            pickle.load(handle).sum()

    def with_store(where: str, durable: bool | None = None, verify: bool = False) -> None:
        store = open_store(where, durable=durable)
        store.save("train", "weights", array)
        store.load("train", "weights", verify=verify).sum()

    def save_only(where: str) -> None:
        open_store(where).save("train", "weights", array)

    import blake3

    view = memoryview(array).cast("B")
    sha = timed(lambda _: hashlib.sha256(view).hexdigest(), scratch, repeat)
    fast = timed(lambda _: blake3.blake3(view, max_threads=blake3.blake3.AUTO).hexdigest(),
                 scratch, repeat)
    header(f"(c) {megabytes} MB float64 array: save + load + arr.sum()")
    base = min(numpy := timed(with_numpy, scratch, repeat))
    print(row("np.save / np.load", numpy, None))
    print(row("pickle protocol 5 dump / load", timed(with_pickle, scratch, repeat), base))
    ours = timed(with_store, scratch, repeat)
    print(row("cellpipe store, local default", ours, base, "target <= 1.15x"))
    print("   (no fsync; BLAKE3 while writing; the load trusts the unchanged file's identity)")
    full = timed(lambda where: with_store(where, verify=True), scratch, repeat)
    print(row("cellpipe store, full verification on load", full, base, "target <= 1.50x"))
    synced = timed(lambda where: with_store(where, durable=True), scratch, repeat)
    print(row("cellpipe store, durable=True (fsync)", synced, base))
    print(row("cellpipe store, save only", timed(save_only, scratch, repeat), base))
    print(row("one BLAKE3 pass over the array (in memory)", fast, base))
    print(row("one sha256 pass over the array (in memory)", sha, base))


# -- (c) the frame ---------------------------------------------------------------------


def mixed_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 1 << 40, rows),
            "clicks": rng.integers(0, 100, rows).astype("int32"),
            "score": rng.random(rows),
            "price": rng.normal(100, 15, rows),
            "name": pd.Series([f"user-{k}" for k in rng.integers(0, 1_000_000, rows)]),
            "colour": pd.Categorical.from_codes(
                rng.integers(0, 5, rows), ["red", "green", "blue", "cyan", "gray"]
            ),
            "seen": pd.date_range("2024-01-01", periods=rows, freq="s", tz="UTC"),
            "visits": pd.array(rng.integers(0, 10, rows), dtype="Int64"),
        }
    )


def touch_all(frame: pd.DataFrame) -> None:
    for column in ("user_id", "clicks", "score", "price", "visits"):
        frame[column].sum()
    frame["name"].str.len().sum()
    frame["colour"].cat.codes.sum()
    frame["seen"].max()


def shallow(frame: pd.DataFrame) -> None:
    frame.memory_usage(deep=False)


def bench_frame(scratch: str, rows: int, repeat: int) -> None:
    frame = mixed_frame(rows)
    megabytes = frame.memory_usage(deep=True).sum() / 1e6
    for touch, label in ((shallow, "df.memory_usage(deep=False)"), (touch_all, "every column")):

        def with_pickle(where: str, touch: Callable[[pd.DataFrame], None] = touch) -> None:
            path = os.path.join(where, "frame.pkl")
            frame.to_pickle(path)
            touch(pd.read_pickle(path))

        def with_store(
            where: str, fmt: str = "arrow", touch: Callable[[pd.DataFrame], None] = touch
        ) -> None:
            store = open_store(where, frame_format=fmt)
            store.save("prep", "frame", frame)
            touch(store.load("prep", "frame"))

        header(f"(c) {megabytes:.0f} MB mixed DataFrame ({rows:,} rows): save + load + {label}")
        base = min(pickled := timed(with_pickle, scratch, repeat))
        print(row("df.to_pickle / pd.read_pickle", pickled, None))
        ours = timed(with_store, scratch, repeat)
        print(row("cellpipe store, Arrow IPC (local default)", ours, base, "target <= 1.30x"))
        parquet = timed(lambda where: with_store(where, "parquet"), scratch, repeat)
        print(row("cellpipe store, Parquet (remote default)", parquet, base))

    where = tempfile.mkdtemp(dir=scratch)
    arrow = open_store(os.path.join(where, "a")).save("prep", "frame", frame)
    parquet_meta = open_store(os.path.join(where, "p"), frame_format="parquet").save(
        "prep", "frame", frame
    )
    frame.to_pickle(os.path.join(where, "frame.pkl"))
    pickled_size = os.path.getsize(os.path.join(where, "frame.pkl"))
    with open(os.path.join(where, "a", "prep", arrow.file), "rb") as handle:
        data = handle.read()
    import blake3

    hashing = min(timed(lambda _: blake3.blake3(data, max_threads=blake3.blake3.AUTO)
                        .hexdigest(), scratch, repeat))
    shutil.rmtree(where)
    print(
        f"   files: {arrow.format} {arrow.size / 1e6:.0f} MB, {parquet_meta.format} "
        f"{parquet_meta.size / 1e6:.0f} MB, pickle {pickled_size / 1e6:.0f} MB; one BLAKE3 pass "
        f"over the Arrow file {hashing:.3f} s (two = {2 * hashing:.3f} s)"
    )


# -- (d) peak memory -------------------------------------------------------------------

# Runs its arguments as a command: a small parent, so the child's ru_maxrss starts small.
LAUNCH = (
    "import subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True, "
    "text=True); print(done.stdout, end=''); print(done.stderr, end='', file=sys.stderr); "
    "sys.exit(done.returncode)"
)

PEAK = """
import resource, sys
import numpy as np
kind, part = sys.argv[1], float(sys.argv[2])
if kind == "store":
    from cellpipe.marshal import open_store
    array = open_store(sys.argv[3]).load("train", "weights")
    array[: int(len(array) * part)].sum()
elif kind == "np":
    array = np.load(sys.argv[3])
    array[: int(len(array) * part)].sum()
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
mb = lambda key: int(status[key].split()[0]) / 1024
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(peak, mb("VmHWM"), mb("RssAnon"), mb("RssFile"))
"""


def measure(*arguments: str) -> list[float]:
    command = [sys.executable, "-c", LAUNCH, sys.executable, "-c", PEAK, *arguments]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return [float(value) for value in done.stdout.split()]


def bench_memory(scratch: str, megabytes: int) -> None:
    array = np.random.default_rng(0).random(megabytes * 1024 * 1024 // 8)
    where = tempfile.mkdtemp(dir=scratch)
    store_root = os.path.join(where, "store")
    open_store(store_root).save("train", "weights", array)
    npy = os.path.join(where, "weights.npy")
    np.save(npy, array)
    del array
    print(f"\n== (d) peak memory of a fresh process that loads the {megabytes} MB array ==")
    print(f"{'process':<42} {'ru_maxrss MB':>12} {'VmHWM MB':>9} {'anon MB':>8} {'file MB':>8}")
    cases = [("nothing", "0", npy, "python + import numpy, nothing loaded")]
    for kind, source, label in (("store", store_root, "store.load"), ("np", npy, "np.load")):
        cases.append((kind, "1.0", source, f"{label} + sum()"))
        cases.append((kind, "0.01", source, f"{label} + sum of the first 1%"))
    for kind, part, source, label in cases:
        peak, high_water, anon, mapped = measure(kind, part, source)
        print(f"{label:<42} {peak:12.0f} {high_water:9.0f} {anon:8.0f} {mapped:8.0f}")
    shutil.rmtree(where)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="scratch parent directory")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--array-mb", type=int, default=512)
    parser.add_argument("--frame-rows", type=int, default=1_850_000)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="cellpipe-bench-", dir=args.dir)
    started = time.perf_counter()
    try:
        print(
            f"cellpipe marshal benchmark: python {platform.python_version()}, numpy "
            f"{np.__version__}, pandas {pd.__version__}, {platform.platform()}, "
            f"{os.cpu_count()} cores"
        )
        free = shutil.disk_usage(scratch).free / 2**30
        print(f"scratch: {scratch} ({free:.0f} GiB free); page cache warm, never dropped")
        bench_array(scratch, args.array_mb, args.repeat)
        bench_frame(scratch, args.frame_rows, args.repeat)
        bench_memory(scratch, args.array_mb)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
