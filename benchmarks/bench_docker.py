"""Benchmark: the docker engine's step images (build, one-line rebuild, layer size) and its
per-step run overhead against the local engine.

Prints (never asserts):
  1. a cold build of ``sample_notebooks/tabular_tags.ipynb``'s images (``api.build_images``):
     (a) with an empty wheel cache, so pip fetches every wheel, and (b) with the wheel
     cache that (a) filled. "Cold" means no image of it exists: each build uses its own
     throwaway base image (``FROM $CELLPIPE_BASE_IMAGE`` plus a unique label), whose new
     image id changes every hash, so nothing is reused and no one else's image is touched;
  2. a rebuild after appending `` # changed`` to the last line of one middle step's cell:
     seconds, rebuild / cold build (b), and which images were built or reused; a rebuild
     with nothing changed is shown for comparison;
  3. each step image's own layers: the top history entry, every layer above the dependency
     image, and image size - dependency image size (KB), with the dependency image's size;
  4. a generated chain of trivial steps (numpy only) run with ``engine="local"`` and
     ``engine="docker"`` (``cache=False``; images built beforehand, so the docker run only
     finds them): mean per-step duration (``run.steps[..]["duration"]``, which starts once
     the container is started), the run's time outside its steps (run - sum of steps: the
     chain is sequential, so this is scheduling, container create/start and the rest),
     docker - local per step, and the ratio of whole-run durations (``run.data
     ["duration"]``); median of --repeat runs per engine, each engine after one uncounted
     warm-up run. A counted run that had to build images (the runtime wheel, so every
     image, changes when cellpipe's source does) is marked and left out of the medians.

Everything the script builds descends from its throwaway base images and is removed at the
end (never a prune). Needs a Docker daemon and a local base image with Python 3.11:

    CELLPIPE_BASE_IMAGE=cellpipe-base:bookworm python benchmarks/bench_docker.py \
        [--repeat 3] [--steps 10]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cellpipe import api  # noqa: E402
from cellpipe.engines.docker.client import base_image, connect  # noqa: E402

SAMPLE = ROOT / "sample_notebooks" / "tabular_tags.ipynb"
KB = 1000
MB = 1000 * 1000


# -- images -----------------------------------------------------------------------------


def throwaway_base(client: Any, parent: str, label: str) -> tuple[str, str]:
    """A new image ``FROM parent`` with a unique label: (tag, image id)."""
    tag = f"cellpipe-bench-base:{label}"
    dockerfile = f"FROM {parent}\nLABEL cellpipe.bench={label}\n".encode()
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True,
                                   pull=False)
    return tag, str(image.id)


def remove_descendants(client: Any, roots: set[str]) -> int:
    """Remove every image whose parent chain reaches one of ``roots``, then the roots.

    The roots are this script's throwaway bases, so what descends from them (deps images,
    their untagged build stages, step images) was built here and by nothing else.
    """
    images = client.images.list(all=True)
    parent = {str(i.id): str(i.attrs.get("Parent") or "") for i in images}

    def depth(image_id: str) -> int:
        steps, current = 0, image_id
        while current and current not in roots:
            current = parent.get(current, "")
            steps += 1
        return steps if current in roots else -1

    mine = [(depth(i), i) for i in parent if i not in roots]
    removed = 0
    for _, image_id in sorted((d, i) for d, i in mine if d >= 0)[::-1]:  # leaves first
        with contextlib.suppress(Exception):  # already gone with a removed child
            client.images.remove(image_id, force=True)
            removed += 1
    for image_id in roots:
        with contextlib.suppress(Exception):
            client.images.remove(image_id, force=True)
            removed += 1
    return removed


def layer_sizes(client: Any, ref: str, deps_ref: str) -> tuple[int, int, int, int]:
    """(top history entry, layers above deps, image - deps image, new filesystem layers)."""
    history = client.api.history(ref)
    deps_history = client.api.history(deps_ref)
    above = history[: len(history) - len(deps_history)]
    image = client.images.get(ref)
    deps = client.images.get(deps_ref)
    new_layers = (len(image.attrs["RootFS"]["Layers"])
                  - len(deps.attrs["RootFS"]["Layers"]))
    return (int(history[0]["Size"]), sum(int(h["Size"]) for h in above),
            int(image.attrs["Size"]) - int(deps.attrs["Size"]), new_layers)


# -- notebooks --------------------------------------------------------------------------


def change_one_line(path: Path, step: str) -> str:
    """Append `` # changed`` to the last line of the cell tagged ``step:<step>``."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if f"step:{step}" in cell.metadata.get("tags", []):
            lines = cell.source.rstrip("\n").split("\n")
            lines[-1] += "  # changed"
            cell.source = "\n".join(lines)
            nbformat.write(nb, path)
            return lines[-1]
    raise SystemExit(f"no cell tagged step:{step} in {path}")


def chain_notebook(path: Path, steps: int) -> Path:
    """An imports cell, then ``steps`` chained steps: ``x_i = x_{i-1} + 1`` on a numpy array."""
    cells = [nbformat.v4.new_code_cell("import numpy as np"),
             nbformat.v4.new_code_cell("x_0 = np.zeros(3)", metadata={"tags": ["step:s0"]})]
    for i in range(1, steps):
        cells.append(nbformat.v4.new_code_cell(f"x_{i} = x_{i - 1} + 1",
                                               metadata={"tags": [f"step:s{i}"]}))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


# -- measuring --------------------------------------------------------------------------


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def timed_build(path: Path, base: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    images = api.build_images(path, base_image=base)
    return time.perf_counter() - start, images


def describe(images: Mapping[str, Any]) -> str:
    built = [s for s, i in images.items() if i.status == "built"]
    deps = sorted({i.deps_status for i in images.values()})
    steps = "all" if len(built) == len(images) else (", ".join(built) or "none")
    return f"built {len(built)}/{len(images)} ({steps}); deps {'/'.join(deps)}"


def build_row(label: str, seconds: float, images: Mapping[str, Any]) -> None:
    in_steps = sum(i.seconds for i in images.values())
    print(f"{label:<36} {seconds:>8.1f} {seconds - in_steps:>8.1f} {in_steps:>8.1f}  "
          f"{describe(images)}")


def note_built(built: list[str], image: Any) -> None:
    if image.status == "built":
        built.append(image.step)


def time_runs(path: Path, tmp: Path, engine: str, repeat: int, base: str
              ) -> list[tuple[float, float, float, int]]:
    """Per counted run: (whole run s, mean step s, run s outside steps, images built)."""
    runs = []
    for index in range(repeat + 1):  # run 0 is the warm-up
        root = tmp / f"runs-{engine}-{index}" / ".cellpipe"
        built: list[str] = []
        options: dict[str, Any] = {}
        if engine == "docker":
            options = {"base_image": base, "on_image": partial(note_built, built)}
        run = api.run(path, engine=engine, root=root, cache=False, **options)
        if run.status != "succeeded":
            raise SystemExit(f"{engine} run failed: {run.steps}")
        if index == 0:
            continue
        durations = [float(s["duration"]) for s in run.steps.values()]
        total = float(run.data["duration"])
        runs.append((total, sum(durations) / len(durations), total - sum(durations),
                     len(built)))
    return runs


def medians(runs: list[tuple[float, float, float, int]]) -> tuple[float, float, float]:
    """Medians over the runs that built no image (all runs if every one did)."""
    clean = [r for r in runs if not r[3]] or runs
    return tuple(statistics.median(r[i] for r in clean) for i in range(3))  # type: ignore


def target(ok: bool) -> str:
    return "ok" if ok else "OVER"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    client = connect()
    parent = base_image()
    version = client.version().get("Version", "?")
    print(f"cellpipe docker benchmark: python {platform.python_version()}, "
          f"{platform.platform()}, {os.cpu_count()} cores, docker {version}; "
          f"base {parent}")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="cellpipe-bench-docker-"))
    label = uuid.uuid4().hex[:12]
    roots: set[str] = set()
    try:
        base_a, id_a = throwaway_base(client, parent, f"{label}-a")
        roots.add(id_a)
        base_b, id_b = throwaway_base(client, parent, f"{label}-b")
        roots.add(id_b)
        notebook = tmp / "nb" / SAMPLE.name
        notebook.parent.mkdir()
        shutil.copyfile(SAMPLE, notebook)
        wheels = tmp / "wheels"

        print(f"\n== 1-2. images of {SAMPLE.name} ({len(api.compile_spec(notebook).steps)} "
              "steps): api.build_images ==")
        print("   plan s = requirements, wheels and hashes before building; "
              "build s = docker builds")
        print(f"{'build':<36} {'total s':>8} {'plan s':>8} {'build s':>8}  images")
        with environ(CELLPIPE_WHEEL_CACHE=str(wheels), PIP_CACHE_DIR=str(tmp / "pip")):
            cold_a, images_a = timed_build(notebook, base_a)
            build_row("(a) cold images, cold wheel cache", cold_a, images_a)
            fetched = sum(1 for _ in (wheels / "blobs").glob("*/*.whl"))
            cold_b, images_b = timed_build(notebook, base_b)
            build_row("(b) cold images, warm wheel cache", cold_b, images_b)
            same, unchanged = timed_build(notebook, base_b)
            build_row("no change", same, unchanged)
            names = list(images_b)
            step = names[len(names) // 2 - 1]
            line = change_one_line(notebook, step)
            rebuild, images_c = timed_build(notebook, base_b)
            build_row(f"one line changed in step {step!r}", rebuild, images_c)
        print(f"   wheels fetched by (a): {fetched}; changed line: {line.strip()!r}")
        expected = {s: ("built" if s == step else "reused") for s in names}
        got = {s: i.status for s, i in images_c.items()}
        deps_ok = {i.deps_status for i in images_c.values()} == {"reused"}
        print(f"   rebuild built only {step!r} with its deps image reused: "
              f"{'yes' if got == expected and deps_ok else 'NO: ' + str(got)}")
        ratio = rebuild / cold_b
        print(f"   rebuild / cold (b) = {rebuild:.2f} / {cold_b:.1f} = {ratio:.3f}  "
              f"target <= 0.15: {target(ratio <= 0.15)}")
        print(f"   rebuild / cold (a) = {rebuild / cold_a:.3f}; "
              f"no change / cold (b) = {same / cold_b:.3f}")
        if any(i.status == "built" for i in unchanged.values()):
            print("   NOTE: the build with nothing changed built images: cellpipe's source "
                  "changed during the benchmark (the runtime wheel is in every image)")

        print("\n== 3. each step image's own layers, above its dependency image (KB) ==")
        print(f"{'step':<16} {'top entry':>10} {'above deps':>11} {'size - deps':>12} "
              f"{'new layers':>11}")
        sizes = []
        for name, image in images_c.items():
            top, above, diff, layers = layer_sizes(client, image.ref, image.deps_ref)
            sizes.append((top, above, diff))
            print(f"{name:<16} {top / KB:>10.1f} {above / KB:>11.1f} {diff / KB:>12.1f} "
                  f"{layers:>11}")
        biggest = max(max(above, diff) for _, above, diff in sizes)
        print(f"{'max':<16} {max(s[0] for s in sizes) / KB:>10.1f} "
              f"{max(s[1] for s in sizes) / KB:>11.1f} {max(s[2] for s in sizes) / KB:>12.1f}"
              f"  target <= 1 MB: {target(biggest <= MB)}")
        deps_ref = next(iter(images_c.values())).deps_ref
        deps_size = int(client.images.get(deps_ref).attrs["Size"])
        base_size = int(client.images.get(base_b).attrs["Size"])
        print(f"   dependency image {deps_ref}: {deps_size / MB:.1f} MB "
              f"(base {base_size / MB:.1f} MB + {(deps_size - base_size) / MB:.1f} MB venv "
              "and user), shared by every step")

        (tmp / "chain").mkdir()
        chain = chain_notebook(tmp / "chain" / f"chain{args.steps}.ipynb", args.steps)
        with environ(CELLPIPE_WHEEL_CACHE=str(wheels)):
            built, chain_images = timed_build(chain, base_b)
            print(f"\n== 4. {args.steps} chained trivial steps (numpy), cache=False: docker vs "
                  f"local; median of {args.repeat} after 1 warm-up ==")
            print(f"   images built beforehand in {built:.1f} s ({describe(chain_images)})")
            local_runs = time_runs(chain, tmp, "local", args.repeat, base_b)
            docker_runs = time_runs(chain, tmp, "docker", args.repeat, base_b)
        print(f"{'engine':<8} {'run s':>7} {'mean step s':>12} {'outside steps s':>16}  "
              "[run s; * = the run built images]")
        figures = {}
        for engine, runs in (("local", local_runs), ("docker", docker_runs)):
            figures[engine] = medians(runs)
            total, per_step, outside = figures[engine]
            listed = " ".join(f"{r[0]:.2f}{'*' if r[3] else ''}" for r in runs)
            print(f"{engine:<8} {total:>7.2f} {per_step:>12.3f} {outside:>16.2f}  [{listed}]")
        (local_total, local_step, _), (docker_total, docker_step, _) = (
            figures["local"], figures["docker"])
        print(f"   per-step overhead of docker, step durations: {docker_step - local_step:+.3f} s "
              f"(docker / local {docker_step / local_step:.2f}); whole run: "
              f"{(docker_total - local_total) / args.steps:+.3f} s per step")
        print(f"   whole run docker / local = {docker_total / local_total:.2f}")
        if any(r[3] for r in docker_runs):
            print("   NOTE: a counted docker run built images (cellpipe's source changed "
                  "during the benchmark?); such runs are left out of the medians")
    finally:
        removed = remove_descendants(client, roots)
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"\nremoved {removed} images built by this script; "
              f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
