"""Tuning from Python: ``cellpipe.tune(notebook, objective, space=…) -> Study``.

Optuna searches (its samplers: TPE, random, grid, CMA-ES); cellpipe runs each trial as
an ordinary local run (:func:`cellpipe.runs_api.run`) with the step cache on, so the steps
that read none of the tuned parameters run once, in the first trial, and come from the
cache in every later one: tuning a model step never reloads or re-cleans the data.

A trial whose run fails, lacks the objective metric or gives a value that is not a finite
number is recorded as ``FAIL`` with the reason, and the study goes on. The study is kept
in SQLite under the runs root (``.cellpipe/tune/studies.db``), so Ctrl-C leaves every
finished trial there and ``resume=NAME`` goes on where it stopped: the interrupted trial
runs again first, then new ones until the study has ``trials`` finished ones.

Settings come from the arguments, then a ``config`` mapping (a YAML file's), then the
notebook's ``metadata.cellpipe.tune`` (``objective``, ``direction``, ``space``, ``trials``,
``sampler``, ``seed``), then the defaults (maximize, 20 trials, TPE).
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.core.space import Dimension, parse_space
from cellpipe.errors import CellpipeError, MissingDependencyError
from cellpipe.tune_session import OnTrial, TrialSession, TuningInterrupted, close_stale
from cellpipe.tune_study import ATTR_KEY, Study, import_optuna, open_storage, open_study

if TYPE_CHECKING:
    from cellpipe.core.notebook import Notebook, NotebookLike
    from cellpipe.core.spec import PipelineSpec

__all__ = ["DIRECTIONS", "SAMPLERS", "TuneSettings", "TuningInterrupted", "resolve_settings",
           "tune"]

SAMPLERS = ("tpe", "random", "grid", "cmaes")
DIRECTIONS = ("maximize", "minimize")
DEFAULT_TRIALS = 20
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

@dataclass(frozen=True)
class TuneSettings:
    """What a study tunes, resolved and checked against the notebook.

    Attributes:
        notebook: The notebook's path (``<memory>`` for one built in memory).
        objective: The metric to optimize (one the notebook's metrics cell declares).
        direction: ``maximize`` or ``minimize``.
        space: One dimension per tuned parameter.
        trials: How many finished trials the study should have.
        sampler: ``tpe``, ``random``, ``grid`` or ``cmaes``.
        seed: The sampler's seed (None: not reproducible).
        parameters: Values of parameters that are not tuned but set for every trial.
    """

    notebook: str
    objective: str
    direction: str
    space: tuple[Dimension, ...]
    trials: int
    sampler: str
    seed: int | None
    parameters: Mapping[str, Any]

    def to_attrs(self) -> dict[str, Any]:
        """What the study keeps of them (its user attributes), as plain data."""
        return {"notebook": self.notebook, "objective": self.objective,
                "direction": self.direction, "space": {d.name: d.text for d in self.space},
                "dimensions": [d.to_dict() for d in self.space], "sampler": self.sampler,
                "seed": self.seed, "trials": self.trials, "parameters": dict(self.parameters)}


def resolve_settings(
    notebook: Notebook, spec: PipelineSpec, *, objective: str | None = None,
    direction: str | None = None, space: Mapping[str, Any] | Iterable[str] | None = None,
    trials: int | None = None, sampler: str | None = None, seed: int | None = None,
    parameters: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None,
) -> TuneSettings:
    """The study's settings: arguments, then ``config``, then ``metadata.cellpipe.tune``.

    Raises:
        CellpipeError: the objective is no metric of the notebook, the direction or the
            sampler is unknown, the space cannot feed the notebook's parameters (a
            ``SpaceError`` naming the parameter), or ``trials`` is below 1.
    """
    from cellpipe.core.diagnostics import did_you_mean
    from cellpipe.core.values import convert_parameter

    layers = [dict(config or {}), _metadata_settings(notebook)]

    def pick(name: str, given: Any, default: Any) -> Any:
        if given is not None:
            return given
        return next((layer[name] for layer in layers if layer.get(name) is not None), default)

    metrics = [m.name for m in spec.metrics]
    chosen = pick("objective", objective, None)
    if chosen is None:
        raise CellpipeError(
            "say which metric to optimize", path=notebook.path,
            hint=f"--objective METRIC (the notebook's metrics: {', '.join(metrics) or 'none'})"
            if metrics else "tag a cell `metrics` that assigns the number to optimize")
    if chosen not in metrics:
        raise CellpipeError(
            f"the notebook has no metric {chosen!r} to optimize", path=notebook.path,
            variable=str(chosen),
            hint=did_you_mean(str(chosen), set(metrics)) or (
                f"its metrics are: {', '.join(metrics)}" if metrics else
                "tag a cell `metrics` that assigns the number to optimize"))
    way = str(pick("direction", direction, "maximize")).lower()
    if way not in DIRECTIONS:
        raise CellpipeError(f"unknown direction {way!r}",
                            hint=did_you_mean(way, set(DIRECTIONS)) or "maximize or minimize")
    kind = str(pick("sampler", sampler, "tpe")).lower()
    if kind not in SAMPLERS:
        raise CellpipeError(f"unknown sampler {kind!r}",
                            hint=did_you_mean(kind, set(SAMPLERS))
                            or f"samplers: {', '.join(SAMPLERS)}")
    raw_space = space if space is not None else pick("space", None, None)
    if raw_space is None:
        names = ", ".join(p.name for p in spec.parameters) or "none"
        raise CellpipeError("the search space is empty", path=notebook.path,
                            hint=f"give -p NAME=SPACE for the parameters to tune ({names}), "
                            "or metadata.cellpipe.tune.space")
    if isinstance(raw_space, str) or not isinstance(raw_space, (Mapping, Iterable)):
        raise CellpipeError(f"a search space maps parameter names to ranges, not {raw_space!r}",
                            hint='e.g. {"C": "loguniform(1e-3, 10)"}')
    dimensions = tuple(parse_space(raw_space, spec))
    if kind == "grid":
        for dimension in dimensions:
            dimension.grid()  # a continuous range: a SpaceError naming the parameter
    count = pick("trials", trials, None)
    size = _grid_size(dimensions) if kind == "grid" else None
    count = int(count) if count is not None else (size or DEFAULT_TRIALS)
    if count < 1:
        raise CellpipeError(f"trials must be at least 1, not {count}", hint="--trials 20")
    if size is not None:
        count = min(count, size)  # a grid has so many points
    seeded = pick("seed", seed, None)
    tuned = {d.name for d in dimensions}
    fixed = {k: convert_parameter(spec, k, v) for k, v in (parameters or {}).items()
             if k not in tuned}
    where = notebook.path if notebook.path == "<memory>" else str(Path(notebook.path).resolve())
    return TuneSettings(notebook=where, objective=str(chosen), direction=way,
                        space=dimensions, trials=count, sampler=kind,
                        seed=None if seeded is None else int(seeded), parameters=fixed)


def tune(
    notebook: NotebookLike,
    objective: str | None = None,
    direction: str | None = None,
    space: Mapping[str, Any] | Iterable[str] | None = None,
    trials: int | None = None,
    parallel: int = 1,
    sampler: str | None = None,
    seed: int | None = None,
    *,
    timeout: float | None = None,
    study: str | None = None,
    resume: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    root: str | Path | None = None,
    cache: bool = True,
    workers: int | None = None,
    on_trial: OnTrial | None = None,
    track: str | bool | None = None,
    cancel: threading.Event | None = None,
) -> Study:
    """Search ``space`` for the parameter values with the best ``objective`` metric.

    Each trial is a cellpipe run of ``notebook`` (the local engine, its step cache on
    unless ``cache=False``); ``parallel`` trials run at once (the first one alone, so the
    steps no tuned parameter reaches are cached before the others start). ``timeout``
    (seconds) starts no trial after it. ``on_trial(study, trial)`` is called when a trial
    starts (state ``RUNNING``) and when it ends. ``study`` names a new study (default:
    notebook, objective and time); ``resume`` goes on with an existing one, whose
    objective, direction, space and sampler must be the same (``trials`` may grow).

    ``track`` logs the study to MLflow as :func:`cellpipe.run` logs a run (a URI; False:
    not; None: the notebook's ``cellpipe.tracking`` metadata, else
    ``$MLFLOW_TRACKING_URI``): one parent run for the study (its space, the best value and
    parameters, the history plot) with each trial's run a nested child run.

    ``cancel``, when set (from another thread), stops the session as Ctrl-C does: no trial
    starts after it, the running ones' runs are cancelled and recorded as interrupted, and
    :class:`TuningInterrupted` is raised (the server's ``POST /cellpipe/tune/<study>/cancel``).

    ``space`` maps names to ranges (``{"C": "loguniform(1e-3, 10)"}``, or ``["C=…"]``);
    see :mod:`cellpipe.core.space`. ``parameters`` sets untuned parameters for every trial.

    Returns:
        The :class:`~cellpipe.tune_study.Study` (``best_params``, ``best_value``,
        ``best_run``, ``trials``).

    Raises:
        CellpipeError: before any trial runs: a bad objective, direction, sampler or space,
            a study name taken (or, resuming, missing or different).
        TuningInterrupted: Ctrl-C; the finished trials are kept (``.study``).
    """
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.core.layout import default_root

    if parallel < 1:
        raise CellpipeError(f"parallel must be at least 1, not {parallel}", hint="--parallel 2")
    nb = load_notebook(notebook)
    spec = compile_spec(nb)
    path = None if nb.path == "<memory>" else nb.path
    runs_root = Path(root) if root else default_root(path)
    if resume is not None:
        existing = open_study(resume, runs_root)
        settings = _resumed_settings(existing, nb, spec, objective=objective,
                                     direction=direction, space=space, trials=trials,
                                     sampler=sampler, seed=seed, parameters=parameters,
                                     config=config)
        handle = existing
    else:
        settings = resolve_settings(nb, spec, objective=objective, direction=direction,
                                    space=space, trials=trials, sampler=sampler, seed=seed,
                                    parameters=parameters, config=config)
        handle = _create_study(import_optuna(), study or _default_name(nb, settings.objective),
                               runs_root, settings)
    optuna = import_optuna()  # imported once the settings hold: a typo is told at once
    close_stale(handle)
    done = [t for t in handle.trials_in("COMPLETE", "FAIL", "PRUNED") if not t.interrupted]
    handle.optuna_study.sampler = _sampler(optuna, settings, seed_offset=len(handle.trials))
    if settings.trials != handle.settings.get("trials"):
        handle.settings["trials"] = settings.trials
        handle.optuna_study.set_user_attr(ATTR_KEY, handle.settings)
    _requeue_interrupted(handle)
    session = TrialSession(handle, nb, settings, runs_root, cache=cache, workers=workers,
                           on_trial=on_trial, track=track, cancel=cancel)
    with _tracked_study(nb, spec, handle, settings, track) as parent:
        session.drive(max(0, settings.trials - len(done)), parallel, timeout)
        if parent is not None:
            _log_best(parent, handle, settings)
    return handle


@contextlib.contextmanager
def _tracked_study(notebook: Notebook, spec: PipelineSpec, study: Study,
                   settings: TuneSettings, track: str | bool | None) -> Iterator[Any]:
    """Inside, the trials' runs are children of one MLflow run of the study (None: untracked)."""
    from cellpipe.tracking_api import run_tracking

    tracking = run_tracking(notebook.metadata, spec.pipeline.name, track)
    if tracking is None:
        yield None
        return
    from cellpipe.tracking import parent_run

    space = {d.name: d.text for d in settings.space}
    with parent_run(tracking, f"tune {study.name}", params={
            "objective": settings.objective, "direction": settings.direction,
            "sampler": settings.sampler, **{f"space.{k}": v for k, v in space.items()}},
            tags={"cellpipe.kind": "tune", "cellpipe.study": study.name,
                  "cellpipe.notebook": spec.notebook.path,
                  "mlflow.source.name": spec.notebook.path}) as parent:
        yield parent


def _log_best(parent: Any, study: Study, settings: TuneSettings) -> None:
    """The study's best value and parameters on its parent run (nothing when none finished)."""
    best_value, best_params = study.best_value, study.best_params
    if best_value is None or best_params is None:
        return
    parent.log_metrics({f"best_{settings.objective}": best_value})
    parent.log_params({f"best.{k}": v for k, v in best_params.items()})


# -- studies: made, resumed, sampled --------------------------------------------------------


def _metadata_settings(notebook: Notebook) -> dict[str, Any]:
    section = notebook.metadata.get("cellpipe") if isinstance(notebook.metadata, dict) else None
    found = section.get("tune") if isinstance(section, dict) else None
    if found is None:
        return {}
    if not isinstance(found, dict):
        raise CellpipeError("metadata.cellpipe.tune must be an object", path=notebook.path,
                            hint='e.g. {"objective": "accuracy", "space": {"C": "loguniform('
                            '1e-3, 10)"}}')
    return dict(found)


def _default_name(notebook: Notebook, objective: str) -> str:
    stem = Path(notebook.path).stem if notebook.path != "<memory>" else "notebook"
    name = f"{stem}-{objective}-{time.strftime('%Y%m%d-%H%M%S')}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip("-._") or "study"


def _create_study(optuna: Any, name: str, root: Path, settings: TuneSettings) -> Study:
    if not _STUDY_NAME.match(name):
        raise CellpipeError(f"{name!r} cannot name a study (its plot is a folder of that name)",
                            hint="use letters, digits, '.', '_' and '-', starting with a "
                            "letter or digit")
    storage = open_storage(root)
    try:
        created = optuna.create_study(storage=storage, study_name=name,
                                      direction=settings.direction)
    except optuna.exceptions.DuplicatedStudyError:
        raise CellpipeError(f"there is already a study {name!r}",
                            hint=f"continue it with --resume {name}, or give another --study"
                            ) from None
    created.set_user_attr(ATTR_KEY, settings.to_attrs())
    return Study(created, root)


def _resumed_settings(study: Study, notebook: Notebook, spec: PipelineSpec,
                      **given: Any) -> TuneSettings:
    """The settings of a resumed study; what differs from its own is refused."""
    kept = study.settings
    if kept.get("notebook") and notebook.path != "<memory>" and \
            Path(kept["notebook"]).resolve() != Path(notebook.path).resolve():
        raise CellpipeError(f"study {study.name!r} tunes {kept['notebook']}, not "
                            f"{notebook.path}", hint="resume it with its own notebook")
    stored = {k: kept.get(k) for k in ("objective", "direction", "space", "sampler", "seed")}
    settings = resolve_settings(
        notebook, spec, objective=given["objective"] or stored["objective"],
        direction=given["direction"] or stored["direction"],
        space=given["space"] if given["space"] is not None else stored["space"],
        trials=given["trials"] or kept.get("trials"),
        sampler=given["sampler"] or stored["sampler"],
        seed=given["seed"] if given["seed"] is not None else stored["seed"],
        parameters=given["parameters"] if given["parameters"] is not None
        else kept.get("parameters"), config=given["config"])
    now = settings.to_attrs()
    for key in ("objective", "direction", "sampler", "seed"):
        if now[key] != stored[key]:
            raise CellpipeError(
                f"study {study.name!r} was started with {key} {stored[key]!r}, not "
                f"{now[key]!r}", hint="resume it as it was started, or start a new study")
    if now["parameters"] != (kept.get("parameters") or {}):
        raise CellpipeError(
            f"study {study.name!r} sets {kept.get('parameters') or 'no other parameters'} in "
            f"every trial, not {now['parameters']}", hint="resume it without --set (it keeps "
            "its own), or start a new study")
    if now["dimensions"] != kept.get("dimensions"):
        was = ", ".join(f"{k}={v}" for k, v in (stored["space"] or {}).items())
        raise CellpipeError(f"study {study.name!r} searches {was}; a resumed study keeps its "
                            "space", hint="leave out -p to keep it, or start a new study")
    return settings


def _sampler(optuna: Any, settings: TuneSettings, seed_offset: int) -> Any:
    """The sampler; a resumed seeded study seeds with ``seed + trials so far``.

    (Seeded again with the same seed, a resumed study would draw its first values again.)
    """
    seed = None if settings.seed is None else settings.seed + seed_offset
    if settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        grid = {d.name: d.grid() for d in settings.space}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if importlib.util.find_spec("cmaes") is None:  # Optuna's CMA-ES sampler needs it
        raise MissingDependencyError.for_extra("cmaes", "tune", "The CMA-ES sampler")
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def _grid_size(dimensions: Iterable[Dimension]) -> int:
    size = 1
    for dimension in dimensions:
        size *= len(dimension.grid())
    return size


def _requeue_interrupted(study: Study) -> None:
    """A trial Ctrl-C stopped runs again first (unless its values ran since)."""
    trials = study.trials
    finished = {_params_key(t.params) for t in trials
                if not t.interrupted and t.state in ("COMPLETE", "FAIL", "PRUNED")}
    waiting = {_params_key(t.params) for t in trials if t.state == "WAITING"}
    for trial in trials:
        key = _params_key(trial.params)
        if trial.interrupted and trial.params and key not in finished | waiting:
            study.optuna_study.enqueue_trial(trial.params)
            waiting.add(key)


def _params_key(params: Mapping[str, Any]) -> str:
    import json

    return json.dumps(dict(params), sort_keys=True, default=str)
