"""Running pipelines from Python: ``cellpipe.run(notebook, …) -> Run``.

Kept apart from :mod:`cellpipe.api` (which stays cheap to import for lint and compile);
``cellpipe.api`` re-exports these names.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.core.layout import RunLayout
from cellpipe.core.spec import NameOrigin, PipelineSpec
from cellpipe.core.values import ParameterError, convert_parameter  # noqa: F401  (public here)
from cellpipe.errors import CellpipeError

if TYPE_CHECKING:
    from cellpipe.core.notebook import NotebookLike
    from cellpipe.engines.docker.builder import StepImage
    from cellpipe.engines.scheduler import Engine
    from cellpipe.events import StepEvent


def select_steps(
    spec: PipelineSpec, step: Iterable[str] = (), start: str | None = None,
    stop: str | None = None,
) -> set[str] | None:
    """Which steps to run for ``--step``/``--from``/``--to`` (None: all)."""
    from cellpipe.core.dag import downstream_of, reachable
    from cellpipe.engines.scheduler import check_selection

    names = [*step, *(n for n in (start, stop) if n)]
    if not names:
        return None
    check_selection(spec, names)
    upstream = {s.name: set(s.upstream) for s in spec.steps}
    downstream = downstream_of(upstream)
    selected = set(upstream)
    if start:
        selected &= reachable(downstream, [start])
    if stop:
        selected &= reachable(upstream, [stop])
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

    @property
    def tracking(self) -> dict[str, Any] | None:
        """Where the run was tracked in MLflow (None: it was not).

        ``uri``, ``experiment``, ``run_id`` (MLflow's), ``source``; or ``uri`` and ``error``
        when tracking failed.
        """
        found = self.data.get("tracking")
        return dict(found) if isinstance(found, dict) else None

    def load(self, name: str) -> Any:
        """The value ``name`` holds at the end of the notebook, as a top-to-bottom run leaves it.

        A step's output comes from the last step that made it; a parameter is its value
        in this run (unless a step reassigned it); an import is replayed; a notebook
        function or class is defined again, with the values it reads from this run.

        Raises:
            CellpipeError: the name is not part of the pipeline (assigned only in a cell
                marked skip), was not kept (a value nobody downstream reads that cannot be
                saved, e.g. a closed file), or its step did not succeed; the message says
                which.
        """
        return _Resolver(self).value(name)

    def names(self) -> list[str]:
        """Every name :meth:`load` can answer for, sorted."""
        return sorted(_Resolver(self).names())

    def values(self) -> list[dict[str, Any]]:
        """Each name the notebook ends with: its kind, type, size and where it comes from.

        Names that cannot be loaded are listed too, with ``note`` saying why.
        """
        return _Resolver(self).describe()

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """What steps did that analysis did not see, each naming its step.

        An input changed in place, or a draw from the global random state in a step that
        was not marked.
        """
        found = []
        for step, state in self.steps.items():
            for warning in state.get("warnings", []):
                found.append({"step": step, **warning})
        return found

    def verify(self) -> list[dict[str, Any]]:
        """Check every artifact the run's steps left, in full (size and digest).

        Returns one row per artifact: ``step``, ``name``, ``algorithm``, ``size``, ``ok``
        and, when damaged or missing, ``problem``. Nothing is trusted by file identity
        here: each file is read and hashed.
        """
        from cellpipe.marshal import MarshalError, open_store

        rows: list[dict[str, Any]] = []
        for step, state in self.steps.items():
            outputs = state.get("outputs") or {}
            if not outputs:
                continue
            store = open_store(state.get("store") or RunLayout(self.path).artifacts)
            for variable, meta in sorted(outputs.items()):
                row: dict[str, Any] = {"step": step, "name": variable,
                                       "algorithm": meta.get("algorithm", "sha256"),
                                       "size": meta.get("size", 0), "ok": True}
                try:
                    store.verify(meta["step"], meta["name"])
                except MarshalError as exc:
                    row.update(ok=False, problem=exc.message)
                rows.append(row)
        return rows

    def log(self, step: str) -> str:
        """The step's log (what it printed)."""
        path = RunLayout(self.path).step(step).log
        if not path.exists():
            raise CellpipeError(f"step {step!r} has no log in run {self.id}", step=step)
        return path.read_text(encoding="utf-8", errors="replace")


def run(
    notebook: NotebookLike,
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
    on_event: Callable[[StepEvent], None] | None = None,
    base_image: str | None = None,
    registry: str | None = None,
    requirements: str | Path | None = None,
    network: str = "none",
    on_image: Callable[[StepImage], None] | None = None,
    cancel: threading.Event | None = None,
    track: str | bool | None = None,
) -> Run:
    """Compile a notebook and run it; returns when the run has ended (see :class:`Run`).

    Setting ``cancel`` (a :class:`threading.Event`, from another thread) stops the run:
    its running steps end, it is recorded ``cancelled``, and the finished steps stay cached.

    ``engine="docker"`` builds (or reuses) each step's image and runs each step in a
    container; ``base_image``, ``registry``, ``requirements`` (a requirements file whose
    lines win over the found pins), ``network`` and ``on_image`` apply to it only.

    ``track`` is an MLflow tracking URI to log the run to once it ends (``False``: not
    tracked; ``None``: the notebook's ``cellpipe.tracking`` metadata, else
    ``$MLFLOW_TRACKING_URI``); see :mod:`cellpipe.tracking`. Inside
    :func:`cellpipe.tracking.parent_run` the run is a child of that parent. A tracking
    failure is a :class:`~cellpipe.tracking.TrackingWarning` and ``Run.tracking["error"]``,
    never a lost run.

    Raises:
        MissingDependencyError: tracking was asked for (``track`` or the metadata) and
            MLflow's client is not installed; nothing ran.
    """
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.core.layout import default_root
    from cellpipe.engines.local import RunOptions
    from cellpipe.tracking_api import run_tracking, tracker

    runner = make_engine(engine, base_image=base_image, registry=registry,
                         requirements=requirements, network=network, on_image=on_image)
    nb = load_notebook(notebook)
    path = None if nb.path == "<memory>" else nb.path
    notebook_dir = Path(path).resolve().parent if path else Path.cwd()
    # The warm server loads the notebook's modules while the notebook is analyzed.
    runner.warm_up([c.source for c in nb.cells if c.cell_type == "code"], notebook_dir)
    spec = compile_spec(nb, split=split)
    values = {k: convert_parameter(spec, k, v) for k, v in (parameters or {}).items()}
    tracking = run_tracking(nb.metadata, spec.pipeline.name, track)
    options = RunOptions(
        parameters=values, workers=workers, cache=cache,
        selected=select_steps(spec, step, start, stop), resume=resume,
        root=Path(root) if root else default_root(path),
        notebook_dir=notebook_dir, on_event=on_event, runtime=runtime, cancel=cancel,
        on_end=tracker(tracking, notebook_dir) if tracking is not None else None,
    )
    record = runner.run(spec, options)
    return Run(record.id, record.path, record.data)


def make_engine(
    engine: str,
    *,
    base_image: str | None = None,
    registry: str | None = None,
    requirements: str | Path | None = None,
    network: str = "none",
    on_image: Callable[[StepImage], None] | None = None,
) -> Engine:
    """The engine named ``engine`` (``local``, ``docker`` or a plugin's).

    Each engine takes the options it knows from these (:meth:`Engine.from_options`).
    """
    from cellpipe.plugins import ENGINES

    return ENGINES.load(engine).from_options(base_image=base_image, registry=registry,
                                             requirements=requirements, network=network,
                                             on_image=on_image)


def build_images(
    notebook: NotebookLike,
    *,
    split: str | None = None,
    base_image: str | None = None,
    registry: str | None = None,
    requirements: str | Path | None = None,
    on_image: Callable[[StepImage], None] | None = None,
    tracked: bool | None = None,
) -> dict[str, StepImage]:
    """Build (or reuse) every step's image; returns step name → ``StepImage``.

    ``tracked`` (None: when the notebook's ``cellpipe.tracking`` metadata names a server)
    adds MLflow's client (``mlflow-skinny``) to every image, for steps that log themselves.
    """
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.engines.docker.builder import ImageBuilder
    from cellpipe.engines.docker.requirements import read_requirements_file
    from cellpipe.tracking_api import tracking_requirements

    nb = load_notebook(notebook)
    spec = compile_spec(nb, split=split)
    path = None if nb.path == "<memory>" else nb.path
    builder = ImageBuilder(
        notebook_dir=Path(path).resolve().parent if path else Path.cwd(),
        base_image=base_image, registry=registry,
        requirements=[*(read_requirements_file(requirements) if requirements else []),
                      *tracking_requirements(nb, spec, tracked)],
        on_image=on_image,
    )
    return builder.build(spec)


def sweep(
    notebook: NotebookLike, grid: Mapping[str, list[Any]], *,
    track: str | bool | None = None, **options: Any
) -> list[Run]:
    """Run every combination of ``grid``'s values; unchanged upstream steps come from cache.

    Tracked (``track``, as :func:`run`), the runs are nested MLflow runs under one parent
    run of the sweep.
    """
    from cellpipe.tracking_api import sweep_child, sweep_tracking

    runs = []
    with sweep_tracking(notebook, grid, track=track, split=options.get("split")) as parent:
        for values in sweep_grid(grid):
            with sweep_child(parent, values):
                runs.append(run(notebook, values, track=track, **options))
    return runs


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


class _Resolver:
    """Answers for names of a run from its spec's ``names`` and the steps' outputs."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.spec = PipelineSpec.from_json(RunLayout(run.path).spec.read_text(encoding="utf-8"))
        self.names_map: Mapping[str, NameOrigin] = self.spec.names or {}
        self.order = {s.name: i for i, s in enumerate(self.spec.steps)}
        self.cache: dict[str, Any] = {}

    def state(self, step: str) -> dict[str, Any]:
        return dict(self.run.data.get("steps", {}).get(step, {}))

    def dynamic_output(self, name: str, after_cell: int | None) -> str | None:
        """The last dynamic step (exec, globals()) after ``after_cell`` that exported ``name``."""
        for step in reversed(self.spec.steps):
            last = step.last_cell
            if after_cell is not None and last <= after_cell:
                return None
            if step.dynamic and name in self.state(step.name).get("outputs", {}):
                return str(step.name)
        return None

    def names(self) -> set[str]:
        found = {n for n, source in self.names_map.items() if source.kind != "skip"
                 and not self.not_kept(n, source)}
        for step in self.spec.steps:
            outputs = self.state(step.name).get("outputs", {})
            found |= {n for n in outputs if n.isidentifier()}
        return found

    def not_kept(self, name: str, source: NameOrigin) -> str | None:
        if source.kind != "value" or source.step is None:
            return None
        state = self.state(source.step)
        note = state.get("not_kept", {}).get(name)
        return str(note["message"]) if note else None

    def value(self, name: str) -> Any:
        if name in self.cache:
            return self.cache[name]
        source = self.names_map.get(name)
        producer = self.dynamic_output(name, source.cell if source else None)
        if producer is not None:
            found = self.output(producer, name)
        elif source is None:
            found = self.legacy(name)
        else:
            found = self.resolve(name, source)
        self.cache[name] = found
        return found

    def resolve(self, name: str, source: NameOrigin) -> Any:
        kind = source.kind
        if kind == "skip":
            cell = (source.cell or 0) + 1
            raise CellpipeError(
                f"{name!r} is not part of the pipeline (cell {cell} is marked skip): the "
                "notebook's value comes from that cell, which no step runs",
                variable=name, cell=cell - 1,
                hint=f"remove the skip tag from cell {cell} to make it part of a step")
        if kind == "parameter":
            return self.run.parameters.get(name)
        if kind == "import":
            namespace: dict[str, Any] = {}
            try:
                exec(compile(source.source or "", f"<cellpipe import {name}>", "exec"), namespace)
            except Exception as exc:
                raise CellpipeError(
                    f"{name!r} comes from {source.source!r}, which fails here: "
                    f"{type(exc).__name__}: {exc}", variable=name,
                    hint="the steps may have had a sys.path addition or a working directory "
                    "this process lacks; run it where the notebook runs") from exc
            return namespace[name]
        if kind == "definition":
            namespace = {"__name__": "__main__"}
            for needed in source.reads or ():
                if needed in self.names_map or self.dynamic_output(needed, None):
                    try:
                        namespace[needed] = self.value(needed)
                    except CellpipeError:
                        continue  # read only when called: it fails then, as it would
            exec(compile(source.source or "", f"<cellpipe definition {name}>", "exec"), namespace)
            return namespace[name]
        return self.output(str(source.step), name)

    def output(self, step: str, name: str) -> Any:
        from cellpipe.marshal import open_store

        state = self.state(step)
        if name in state.get("outputs", {}):
            return open_store(state["store"]).load(step, name)
        note = state.get("not_kept", {}).get(name)
        if note:
            raise CellpipeError(f"{name!r} from step {step!r}: {note['message']}",
                                step=step, variable=name,
                                hint="a value a later step reads is always kept; read it in "
                                "a step, or turn it into data (e.g. read the file's contents)")
        status = state.get("status", "did not run")
        if status in ("succeeded", "cached"):
            raise CellpipeError(
                f"step {step!r} did not assign {name!r} in run {self.run.id} (the branch "
                "that assigns it did not run)", step=step, variable=name)
        raise CellpipeError(f"{name!r} is made by step {step!r}, which {status} in run "
                            f"{self.run.id}", step=step, variable=name)

    def legacy(self, name: str) -> Any:
        """A name ``names`` does not list: a star import's, or an older run's output."""
        for step in reversed(self.spec.steps):
            if name in self.state(step.name).get("outputs", {}) or name in step.writes:
                return self.output(step.name, name)
        for statement in reversed(self.spec.star_imports or ()):
            namespace: dict[str, Any] = {}
            try:
                exec(compile(statement, "<cellpipe star import>", "exec"), namespace)
            except Exception:
                continue
            if name in namespace:
                return namespace[name]
        from cellpipe.core.diagnostics import did_you_mean

        raise CellpipeError(
            f"the notebook does not end with a name {name!r} (no step, parameter, import or "
            f"definition of run {self.run.id} makes it)", variable=name,
            hint=did_you_mean(name, self.names()) or "see `cellpipe show RUN --values`")

    def describe(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for name, source in sorted(self.names_map.items()):
            seen.add(name)
            row: dict[str, Any] = {"name": name, "kind": source.kind}
            if source.kind == "value":
                producer = self.dynamic_output(name, source.cell) or str(source.step)
                state = self.state(producer)
                meta = state.get("outputs", {}).get(name)
                row["step"] = producer
                if meta:
                    row.update({"type": meta.get("type"), "size": meta.get("size"),
                                "format": meta.get("format")})
                elif name in state.get("not_kept", {}):
                    row.update({"type": state["not_kept"][name].get("type"),
                                "note": state["not_kept"][name]["message"]})
                else:
                    row["note"] = f"step {producer} {state.get('status', 'did not run')}"
            elif source.kind == "parameter":
                value = self.run.parameters.get(name)
                row.update({"type": type(value).__name__, "value": value})
            elif source.kind in ("import", "definition"):
                row["source"] = (source.source or "").splitlines()[0][:80]
            else:
                row["note"] = f"not part of the pipeline (cell {(source.cell or 0) + 1} " \
                    "is marked skip)"
            rows.append(row)
        for step in self.spec.steps:
            for name, meta in self.state(step.name).get("outputs", {}).items():
                if name not in seen and name.isidentifier():
                    seen.add(name)
                    rows.append({"name": name, "kind": "value", "step": step.name,
                                 "type": meta.get("type"), "size": meta.get("size"),
                                 "format": meta.get("format")})
        return sorted(rows, key=lambda r: r["name"])


def warm_servers() -> list[dict[str, Any]]:
    """This user's warm servers, which local steps fork from.

    Each: its pid, its running steps, its socket, and seconds since it was last used.
    """
    from cellpipe.engines.local.warm import list_servers

    return list_servers()


def stop_warm_servers() -> int:
    """Ask every warm server of this user to exit once its running steps end; how many."""
    from cellpipe.engines.local.warm import stop_servers

    return stop_servers()
