"""Running pipelines from Python: ``cellpipe.run(notebook, …) -> Run``.

Kept apart from :mod:`cellpipe.api` (which stays cheap to import for lint and compile);
``cellpipe.api`` re-exports these names.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellpipe.core.values import ParameterError, convert_parameter  # noqa: F401  (public here)
from cellpipe.errors import CellpipeError


def select_steps(
    spec: Mapping[str, Any], step: Iterable[str] = (), start: str | None = None,
    stop: str | None = None,
) -> set[str] | None:
    """Which steps to run for ``--step``/``--from``/``--to`` (None: all)."""
    from cellpipe.engines.scheduler import check_selection

    names = [*step, *(n for n in (start, stop) if n)]
    if not names:
        return None
    check_selection(spec, names)
    upstream = {s["name"]: set(s["upstream"]) for s in spec["steps"]}
    downstream: dict[str, set[str]] = {n: set() for n in upstream}
    for name, parents in upstream.items():
        for parent in parents:
            downstream[parent].add(name)

    def closure(start_name: str, edges: Mapping[str, set[str]]) -> set[str]:
        seen, todo = {start_name}, [start_name]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    selected = set(upstream)
    if start:
        selected &= closure(start, downstream)
    if stop:
        selected &= closure(stop, upstream)
    if step:
        selected = set(step) if not (start or stop) else selected | set(step)
    return selected


@dataclass
class Run:
    """A pipeline run: its id, directory, status and metrics; values by name."""

    id: str
    path: Path
    data: dict[str, Any]

    @property
    def status(self) -> str:
        """``succeeded``, ``failed``, ``cancelled`` (or ``running``)."""
        return str(self.data["status"])

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's metrics, by name."""
        return dict(self.data.get("metrics", {}))

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameter values the run used."""
        return dict(self.data.get("parameters", {}))

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        """Per step: status, timings, why it ran, outputs, error."""
        return dict(self.data.get("steps", {}))

    def load(self, name: str) -> Any:
        """The value ``name`` holds at the end of the notebook (from its last producer)."""
        from cellpipe.marshal import open_store

        spec = json.loads((self.path / "spec.json").read_text(encoding="utf-8"))
        for step in reversed(spec["steps"]):
            state = self.data["steps"].get(step["name"], {})
            if name in state.get("outputs", {}):
                return open_store(state["store"]).load(step["name"], name)
            if name in step["writes"]:
                raise CellpipeError(
                    f"{name!r} is made by step {step['name']!r}, which "
                    f"{state.get('status', 'did not run')} in run {self.id}",
                    step=step["name"], variable=name,
                )
        raise CellpipeError(f"no step of run {self.id} produces {name!r}", variable=name,
                            hint="only values assigned at the top level of a step are kept")

    def log(self, step: str) -> str:
        """The step's log (what it printed)."""
        path = self.path / "steps" / step / "log.txt"
        if not path.exists():
            raise CellpipeError(f"step {step!r} has no log in run {self.id}", step=step)
        return path.read_text(encoding="utf-8", errors="replace")


def run(
    notebook: Any,
    parameters: Mapping[str, Any] | None = None,
    *,
    split: str | None = None,
    engine: str = "local",
    workers: int | None = None,
    cache: bool = True,
    step: Iterable[str] = (),
    start: str | None = None,
    stop: str | None = None,
    resume: str | None = None,
    root: str | Path | None = None,
    runtime: str = "ipython",
    on_event: Callable[[Any], None] | None = None,
    base_image: str | None = None,
    registry: str | None = None,
    requirements: str | Path | None = None,
    network: str = "none",
    on_image: Callable[[Any], None] | None = None,
) -> Run:
    """Compile a notebook and run it; returns when the run has ended (see :class:`Run`).

    ``engine="docker"`` builds (or reuses) each step's image and runs each step in a
    container; ``base_image``, ``registry``, ``requirements`` (a requirements file whose
    lines win over the found pins), ``network`` and ``on_image`` apply to it only.
    """
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.engines.local import RunOptions
    from cellpipe.engines.runs import default_root

    runner = make_engine(engine, base_image=base_image, registry=registry,
                         requirements=requirements, network=network, on_image=on_image)
    nb = load_notebook(notebook)
    spec = compile_spec(nb, split=split)
    values = {k: convert_parameter(spec, k, v) for k, v in (parameters or {}).items()}
    path = None if nb.path == "<memory>" else nb.path
    options = RunOptions(
        parameters=values, workers=workers, cache=cache,
        selected=select_steps(spec, step, start, stop), resume=resume,
        root=Path(root) if root else default_root(path),
        notebook_dir=Path(path).resolve().parent if path else Path.cwd(),
        on_event=on_event, runtime=runtime,
    )
    record = runner.run(spec, options)
    return Run(record.id, record.path, record.data)


ENGINES = ("local", "docker")


def make_engine(
    engine: str,
    *,
    base_image: str | None = None,
    registry: str | None = None,
    requirements: str | Path | None = None,
    network: str = "none",
    on_image: Callable[[Any], None] | None = None,
) -> Any:
    """The engine named ``engine`` (``local`` or ``docker``)."""
    if engine == "local":
        from cellpipe.engines.local import LocalEngine

        return LocalEngine()
    if engine == "docker":
        from cellpipe.engines.docker.engine import DockerEngine
        from cellpipe.engines.docker.requirements import read_requirements_file

        lines = read_requirements_file(requirements) if requirements else []
        return DockerEngine(base_image=base_image, registry=registry, requirements=lines,
                            network=network, on_image=on_image)
    from cellpipe.core.diagnostics import did_you_mean

    raise CellpipeError(f"unknown engine {engine!r}",
                        hint=did_you_mean(engine, set(ENGINES)) or "use local or docker")


def build_images(
    notebook: Any,
    *,
    split: str | None = None,
    base_image: str | None = None,
    registry: str | None = None,
    requirements: str | Path | None = None,
    on_image: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Build (or reuse) every step's image; returns step name → ``StepImage``."""
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.engines.docker.builder import ImageBuilder
    from cellpipe.engines.docker.requirements import read_requirements_file

    nb = load_notebook(notebook)
    spec = compile_spec(nb, split=split)
    path = None if nb.path == "<memory>" else nb.path
    builder = ImageBuilder(
        notebook_dir=Path(path).resolve().parent if path else Path.cwd(),
        base_image=base_image, registry=registry,
        requirements=read_requirements_file(requirements) if requirements else [],
        on_image=on_image,
    )
    images: dict[str, Any] = builder.build(spec)
    return images


def sweep(
    notebook: Any, grid: Mapping[str, list[Any]], **options: Any
) -> list[Run]:
    """Run every combination of ``grid``'s values; unchanged upstream steps come from cache."""
    return [run(notebook, values, **options) for values in sweep_grid(grid)]


def sweep_grid(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of a parameter grid, in order (the last name varies fastest)."""
    names = list(grid)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(grid[n] for n in names))]


def open_run(run_id: str, root: str | Path) -> Run:
    """Open an existing run."""
    from cellpipe.engines.runs import RunsDirectory

    record = RunsDirectory(root).load(run_id)
    return Run(record.id, record.path, record.data)
