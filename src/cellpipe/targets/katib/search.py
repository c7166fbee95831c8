"""What a Katib experiment searches: objective, space, budget and algorithm, checked.

The notebook's ``metadata.cellpipe.tune`` gives the defaults (the shape ``cellpipe tune``
reads too)::

    "cellpipe": {"tune": {"objective": "best_accuracy", "direction": "maximize",
                          "space": {"C": "loguniform(1e-3, 1e2)", "max_depth": "int(2, 8)"},
                          "trials": 20, "parallel": 2, "sampler": "tpe"}}

and the command line (``-p NAME=SPACE``, ``--objective``, ``--maximize``/``--minimize``,
``--trials``, ``--parallel``, ``--max-failed``, ``--sampler``) overrides it. A ``-p`` whose
text is not a space form (``-p seed=7``) fixes that parameter for every trial. Everything
is checked here, before anything is compiled: the objective is a metric the notebook
declares, the space names its parameters (:func:`cellpipe.core.space.parse_space`), the
algorithm is one Katib runs, a grid search has a finite grid, the budget fits Katib's rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cellpipe.core.diagnostics import did_you_mean
from cellpipe.core.space import Dimension, SpaceError, parse_space
from cellpipe.core.spec import PipelineSpec
from cellpipe.errors import CellpipeError

__all__ = ["ALGORITHMS", "DEFAULT_SAMPLER", "SEARCH_OPTIONS", "Search", "search_settings"]

# cellpipe's sampler names -> Katib's algorithm names. Katib serves tpe, random, grid and
# cmaes with Optuna (the samplers `cellpipe tune` uses); bayesianoptimization with
# scikit-optimize's Gaussian process.
ALGORITHMS: dict[str, str] = {
    "tpe": "tpe",
    "random": "random",
    "grid": "grid",
    "cmaes": "cmaes",
    "bayesianoptimization": "bayesianoptimization",
}
DEFAULT_SAMPLER = "tpe"
DIRECTIONS = ("maximize", "minimize")
DEFAULT_TRIALS = 12
DEFAULT_PARALLEL = 3
DEFAULT_MAX_FAILED = 3
# The keys of `options` (and of metadata.cellpipe.tune) a Katib compile reads.
SEARCH_OPTIONS = ("objective", "direction", "space", "trials", "parallel", "max_failed",
                  "sampler")
_FORM = re.compile(r"^\s*[A-Za-z_]\w*\s*\(")


@dataclass(frozen=True)
class Search:
    """A checked search.

    Attributes:
        objective: The metric Katib optimizes (declared by the notebook's metrics cell).
        direction: ``maximize`` or ``minimize``.
        dimensions: The tuned parameters, in the order given.
        fixed: Parameters set to one value for every trial (``-p NAME=VALUE``), typed.
        trials: How many trials in all (``maxTrialCount``).
        parallel: How many run at once (``parallelTrialCount``).
        max_failed: How many may fail before the experiment fails (``maxFailedTrialCount``).
        sampler: cellpipe's name of the algorithm (a key of :data:`ALGORITHMS`).
        notes: What the user should know about how the search was read.
    """

    objective: str
    direction: Literal["maximize", "minimize"]
    dimensions: tuple[Dimension, ...]
    fixed: tuple[tuple[str, Any], ...] = ()
    trials: int = DEFAULT_TRIALS
    parallel: int = DEFAULT_PARALLEL
    max_failed: int = DEFAULT_MAX_FAILED
    sampler: str = DEFAULT_SAMPLER
    notes: tuple[str, ...] = ()

    @property
    def algorithm(self) -> str:
        """Katib's name of the algorithm."""
        return ALGORITHMS[self.sampler]


def search_settings(spec: PipelineSpec, metadata: Any, given: Mapping[str, Any]) -> Search:
    """The search from the notebook's ``cellpipe.tune`` metadata and the options given.

    Args:
        spec: The pipeline (its parameters and metrics).
        metadata: The notebook's metadata (``cellpipe.tune`` is read from it), or None.
        given: What the command line (or an API caller) gave: the keys of
            :data:`SEARCH_OPTIONS`; a None value (or a missing key) keeps the metadata's.
            ``space`` is a list of ``NAME=SPACE`` (or ``NAME=VALUE``) strings or a mapping.

    Raises:
        CellpipeError: The objective, direction, algorithm or budget is missing or wrong.
        SpaceError: The space cannot be read, or a grid search has a continuous range.
    """
    tune, notes = _tune_metadata(metadata, spec.notebook.path or None)

    def pick(key: str) -> tuple[Any, str]:
        value = given.get(key)
        if value is not None:
            return value, f"--{key.replace('_', '-')}"
        return tune.get(key), f"notebook metadata cellpipe.tune.{key}"

    objective = _objective(spec, *pick("objective"))
    direction = _direction(objective, *pick("direction"))
    sampler = _sampler(*pick("sampler"))
    dimensions, fixed = _space(spec, given.get("space"), tune.get("space"))
    trials = _count(*pick("trials"), default=DEFAULT_TRIALS, minimum=1)
    parallel = _count(*pick("parallel"), default=min(DEFAULT_PARALLEL, trials), minimum=1)
    max_failed = _count(*pick("max_failed"), default=min(DEFAULT_MAX_FAILED, trials), minimum=0)
    if parallel > trials:
        raise CellpipeError(f"{parallel} parallel trials is more than the {trials} trials in all",
                            hint=f"give --parallel {trials} or fewer, or more --trials")
    if max_failed > trials:
        raise CellpipeError(f"--max-failed {max_failed} is more than the {trials} trials in all",
                            hint=f"give --max-failed {trials} or fewer")
    if sampler == "grid":
        for dimension in dimensions:
            dimension.grid()  # a continuous range has no grid: SpaceError
    return Search(objective=objective, direction=direction, dimensions=tuple(dimensions),
                  fixed=tuple(fixed), trials=trials, parallel=parallel, max_failed=max_failed,
                  sampler=sampler, notes=tuple(notes))


def _tune_metadata(metadata: Any, path: str | None) -> tuple[Mapping[str, Any], list[str]]:
    section = metadata.get("cellpipe") if isinstance(metadata, Mapping) else None
    tune = section.get("tune") if isinstance(section, Mapping) else None
    if tune is None:
        return {}, []
    if not isinstance(tune, Mapping):
        raise CellpipeError(f"notebook metadata cellpipe.tune: expected a mapping, got {tune!r}",
                            path=path, hint='write {"objective": METRIC, "space": {...}}')
    # `cellpipe tune` may read keys Katib has no use for: say so, do not refuse them.
    unread = sorted(str(key) for key in tune if key not in SEARCH_OPTIONS)
    notes = [f"katib: notebook metadata cellpipe.tune.{key} is not used by a Katib experiment"
             + (f" ({hint})" if (hint := did_you_mean(key, set(SEARCH_OPTIONS))) else "")
             for key in unread]
    return tune, notes


def _objective(spec: PipelineSpec, value: Any, where: str) -> str:
    names = [metric.name for metric in spec.metrics]
    if value is None:
        if len(names) == 1:
            return names[0]
        raise CellpipeError(
            "a Katib experiment needs an objective: the metric to optimize",
            hint=f"give --objective with one of the notebook's metrics ({', '.join(names)})"
            if names else "declare metrics in a cell tagged metrics, then give --objective NAME")
    if value not in names:
        raise CellpipeError(
            f"{where}: {value!r} is not a metric of the notebook",
            hint=did_you_mean(str(value), set(names))
            or (f"its metrics are: {', '.join(names)}" if names
                else "declare metrics in a cell tagged metrics (the names it assigns or prints)"))
    return str(value)


def _direction(objective: str, value: Any, where: str) -> Literal["maximize", "minimize"]:
    if value is None:
        raise CellpipeError(f"say whether to maximize or minimize {objective}",
                            hint="give --maximize or --minimize")
    if value == "maximize":
        return "maximize"
    if value == "minimize":
        return "minimize"
    raise CellpipeError(f"{where}: {value!r} is neither maximize nor minimize",
                        hint=did_you_mean(str(value), set(DIRECTIONS)) or "write maximize or "
                        "minimize")


def _sampler(value: Any, where: str) -> str:
    if value is None:
        return DEFAULT_SAMPLER
    name = str(value).lower()
    if name not in ALGORITHMS:
        raise CellpipeError(f"{where}: Katib has no algorithm {value!r}",
                            hint=did_you_mean(name, set(ALGORITHMS))
                            or f"use one of {', '.join(ALGORITHMS)}")
    return name


def _count(value: Any, where: str, *, default: int, minimum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CellpipeError(f"{where}: {value!r} is not a whole number of at least {minimum}",
                            hint=f"write e.g. {max(minimum, default)}")
    return value


def _space(spec: PipelineSpec, given: Any, metadata: Any
           ) -> tuple[list[Dimension], list[tuple[str, Any]]]:
    """The dimensions (the command line's, else the metadata's) and the fixed values."""
    from cellpipe.core.values import convert_parameter

    forms: Sequence[str] | Mapping[str, Any] = ()
    fixed: list[tuple[str, Any]] = []
    if isinstance(given, Mapping):
        forms = given
    elif given:
        entries = [str(entry) for entry in given]
        forms = [entry for entry in entries if _FORM.match(entry.partition("=")[2])]
        for entry in entries:
            if entry in forms:
                continue
            name, sep, text = entry.partition("=")
            if not sep or not name.strip():
                raise SpaceError(f"cannot read {entry!r} as NAME=SPACE or NAME=VALUE",
                                 hint="write e.g. -p lr=loguniform(1e-4, 1e-1) or -p seed=7")
            fixed.append((name.strip(), convert_parameter(spec, name.strip(), text.strip())))
    if not forms:
        forms = metadata if isinstance(metadata, Mapping) else ()
        if metadata is not None and not isinstance(metadata, Mapping):
            raise SpaceError("notebook metadata cellpipe.tune.space: expected a mapping of "
                             f"parameter names to spaces, got {metadata!r}",
                             hint='write {"lr": "loguniform(1e-4, 1e-1)", ...}')
    dimensions = parse_space(forms, spec)
    tuned = {dimension.name for dimension in dimensions}
    for name, _ in fixed:
        if name in tuned:
            raise SpaceError(f"parameter {name!r} is both searched and fixed", variable=name,
                             hint=f"give -p {name}=SPACE or -p {name}=VALUE, not both")
    return dimensions, fixed
