"""Tuning studies on disk: Optuna studies in SQLite under ``.cellpipe/tune/``, cellpipe's view.

Every study of a runs root lives in one SQLite file, ``<root>/tune/studies.db`` (Optuna's
own schema, so ``optuna-dashboard sqlite:///…/studies.db`` can open it too). A study
carries what it tunes as study attributes (notebook, objective, direction, space, sampler,
seed, trials wanted); each trial carries the id of its cellpipe run and, when it failed,
why. :class:`Study` and :class:`Trial` wrap Optuna's objects with those, so
``study.trials[3].run`` is the :class:`~cellpipe.runs_api.Run` of trial 3.

Optuna is imported on first use (the ``tune`` extra), never when cellpipe is imported.
"""

from __future__ import annotations

import io
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.core.atomic import write_bytes_atomic
from cellpipe.core.layout import TUNE_DIR, tune_storage
from cellpipe.errors import CellpipeError, MissingDependencyError

if TYPE_CHECKING:
    from cellpipe.runs_api import Run

__all__ = ["STATES", "Study", "StudySummary", "Trial", "import_optuna", "list_studies",
           "open_study", "storage_url"]

STATES = ("RUNNING", "COMPLETE", "FAIL", "PRUNED", "WAITING")
# Study attributes (Optuna's user attrs) that say what a study tunes.
ATTR_KEY = "cellpipe"
STALE = "its tuning session ended while it ran; a resumed study runs it again"


def import_optuna() -> Any:
    """Optuna, with its INFO logging off (cellpipe reports trials itself).

    Raises:
        MissingDependencyError: optuna is not installed (``pip install 'cellpipe[tune]'``).
    """
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependencyError.for_extra("optuna", "tune", "Tuning") from exc
    if optuna.logging.get_verbosity() < optuna.logging.WARNING:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(root: str | Path) -> str:
    """The SQLite URL of the studies of runs root ``root`` (its folder is created)."""
    path = tune_storage(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def open_storage(root: str | Path) -> Any:
    """Optuna's storage for ``root``; concurrent trials wait for SQLite's lock, not fail.

    Two processes opening a new file at once (a tuning session starting while ``--list``
    or ``--show`` looks) both create Optuna's tables and stamp its schema version; the one
    that loses that race opens it again, and finds them made.
    """
    optuna = import_optuna()
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(storage_url(root),
                                              engine_kwargs={"connect_args": {"timeout": 60}})
        except SQLAlchemyError:  # "table … already exists", the version row inserted twice
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Trial:
    """One trial of a study: a cellpipe run with some parameter values.

    Attributes:
        number: Its number in the study (from 0).
        params: The tuned parameters' values.
        value: The objective metric's value (None unless ``state`` is ``COMPLETE``).
        state: Optuna's state: ``COMPLETE``, ``FAIL``, ``RUNNING`` (or ``PRUNED``, ``WAITING``).
        reason: Why it failed (None when it did not).
        run_id: The id of its cellpipe run (None if it failed before the run started).
        duration: Seconds from its start to its end (None while it runs).
        root: The runs root its run is in.
        interrupted: It was stopped by Ctrl-C (a resumed study runs it again).
    """

    number: int
    params: dict[str, Any]
    value: float | None
    state: str
    reason: str | None = None
    run_id: str | None = None
    duration: float | None = None
    root: Path | None = field(default=None, repr=False)
    interrupted: bool = False

    @property
    def run(self) -> Run | None:
        """The cellpipe run of this trial (None if none started)."""
        if self.run_id is None or self.root is None:
            return None
        from cellpipe.runs_api import open_run

        return open_run(self.run_id, self.root)

    def to_dict(self) -> dict[str, Any]:
        """The trial as plain data (JSON)."""
        return {"number": self.number, "params": dict(self.params), "value": self.value,
                "state": self.state, "reason": self.reason, "run": self.run_id,
                "duration": self.duration, "interrupted": self.interrupted}

    @classmethod
    def from_frozen(cls, frozen: Any, root: Path | None) -> Trial:
        """Our view of an Optuna ``FrozenTrial``."""
        attrs = frozen.user_attrs
        duration = None
        if frozen.datetime_start is not None and frozen.datetime_complete is not None:
            duration = (frozen.datetime_complete - frozen.datetime_start).total_seconds()
        state = frozen.state.name
        value = frozen.value if state == "COMPLETE" else None
        reason, interrupted = attrs.get("reason"), bool(attrs.get("interrupted"))
        if state == "FAIL" and reason is None:  # left RUNNING by a killed session, then closed
            reason, interrupted = STALE, True
        return cls(number=frozen.number, params=dict(frozen.params), value=value, state=state,
                   reason=reason, run_id=attrs.get("run_id"), duration=duration, root=root,
                   interrupted=interrupted)


class Study:
    """A tuning study: what it tunes, its trials, the best of them.

    Attributes:
        name: The study's name (``--resume NAME``, ``--show NAME``).
        root: The runs root it and its trials' runs are in.
        settings: What it tunes: ``notebook``, ``objective``, ``direction``, ``space``
            (name → dimension text), ``sampler``, ``seed``, ``trials``.
        optuna_study: The Optuna study behind it.
    """

    def __init__(self, optuna_study: Any, root: Path) -> None:
        self.optuna_study = optuna_study
        self.name: str = optuna_study.study_name
        self.root = Path(root)
        self.settings: dict[str, Any] = dict(optuna_study.user_attrs.get(ATTR_KEY, {}))

    def __repr__(self) -> str:
        best = self.best_value
        shown = f", best {self.objective}={best:.4g}" if best is not None else ""
        return f"<cellpipe Study {self.name!r}: {len(self.trials)} trials{shown}>"

    @property
    def objective(self) -> str:
        """The metric the study optimizes."""
        return str(self.settings.get("objective", "value"))

    @property
    def direction(self) -> str:
        """``maximize`` or ``minimize``."""
        return str(self.optuna_study.direction.name.lower())

    @property
    def trials(self) -> list[Trial]:
        """Every trial, in the order they started."""
        return [Trial.from_frozen(t, self.root) for t in self.optuna_study.get_trials(
            deepcopy=False)]

    def trials_in(self, *states: str) -> list[Trial]:
        """The trials in these states (``COMPLETE``, ``FAIL``, …)."""
        return [t for t in self.trials if t.state in states]

    @property
    def best_trial(self) -> Trial | None:
        """The completed trial with the best value (None when no trial completed)."""
        done = self.trials_in("COMPLETE")
        if not done:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: (t.value, -t.number))

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best trial's parameter values."""
        best = self.best_trial
        return None if best is None else best.params

    @property
    def best_value(self) -> float | None:
        """The best value of the objective metric."""
        best = self.best_trial
        return None if best is None else best.value

    @property
    def best_run(self) -> Run | None:
        """The cellpipe run of the best trial."""
        best = self.best_trial
        return None if best is None else best.run

    def importances(self) -> dict[str, float]:
        """How much each tuned parameter explains the objective (Optuna's fANOVA), summing to 1.

        Raises:
            CellpipeError: fewer than two trials completed, or they do not vary enough.
        """
        done = self.trials_in("COMPLETE")
        if len(done) < 2:
            raise CellpipeError(
                f"parameter importances need at least 2 completed trials; study "
                f"{self.name!r} has {len(done)}",
                hint=f"run more trials: cellpipe tune NOTEBOOK --resume {self.name}")
        optuna = import_optuna()
        try:
            found = optuna.importance.get_param_importances(self.optuna_study)
        except (ValueError, RuntimeError) as exc:
            raise CellpipeError(f"cannot compute parameter importances of {self.name!r}: {exc}",
                                hint="the completed trials need differing parameter values"
                                ) from exc
        return {str(k): float(v) for k, v in found.items()}

    def plot_history(self, path: str | Path | None = None) -> Path:
        """Write the optimization-history plot (objective per trial, best so far) as PNG.

        ``path`` defaults to ``<root>/tune/<study>/history.png``; returns where it went.

        Raises:
            CellpipeError: no trial completed (there is nothing to plot).
            MissingDependencyError: matplotlib is not installed.
        """
        if not self.trials_in("COMPLETE"):
            raise CellpipeError(f"study {self.name!r} has no completed trial to plot",
                                hint=f"run trials first: cellpipe tune NOTEBOOK --resume "
                                f"{self.name}")
        try:
            import matplotlib
        except ImportError as exc:
            raise MissingDependencyError.for_extra("matplotlib", "tune",
                                                   "The optimization-history plot") from exc
        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")  # no display needed; a kernel's own backend is left alone
        import matplotlib.pyplot as plt

        optuna = import_optuna()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning: the plot API is stable here
            axes = optuna.visualization.matplotlib.plot_optimization_history(
                self.optuna_study, target_name=self.objective)
        figure = axes.figure
        figure.set_size_inches(8, 5)
        axes.set_title(f"{self.name}: {self.objective} ({self.direction})")
        buffer = io.BytesIO()
        # without bbox_inches="tight" the legend outside the axes is cut off
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(figure)
        target = Path(path) if path else self.root / TUNE_DIR / self.name / "history.png"
        write_bytes_atomic(target, buffer.getvalue())
        return target

    def to_dict(self) -> dict[str, Any]:
        """The study as plain data: its settings, trials and best trial."""
        best = self.best_trial
        return {"name": self.name, "root": str(self.root), **self.settings,
                "direction": self.direction,
                "best": best.to_dict() if best else None,
                "trials": [t.to_dict() for t in self.trials]}


@dataclass(frozen=True)
class StudySummary:
    """One line of ``cellpipe tune --list``."""

    name: str
    notebook: str
    objective: str
    direction: str
    trials: int
    complete: int
    best_value: float | None
    started: str | None


def open_study(name: str, root: str | Path) -> Study:
    """An existing study of runs root ``root``.

    Raises:
        CellpipeError: there is no such study (the hint names the closest, or lists them).
    """
    if not tune_storage(root).is_file():
        raise CellpipeError(f"there is no study {name!r}: {root} has no studies yet",
                            hint="start one with `cellpipe tune NOTEBOOK --objective METRIC "
                            "-p NAME=SPACE`")
    optuna = import_optuna()
    storage = open_storage(root)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        from cellpipe.core.diagnostics import did_you_mean

        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise CellpipeError(
            f"there is no study {name!r} in {tune_storage(root)}",
            hint=did_you_mean(name, set(names)) or (
                f"studies there: {', '.join(names)}" if names else
                "start one with `cellpipe tune NOTEBOOK --objective METRIC -p NAME=SPACE`"),
        ) from None
    return Study(study, Path(root))


def list_studies(root: str | Path) -> list[StudySummary]:
    """The studies of runs root ``root``, oldest first (none when it has no study file)."""
    if not tune_storage(root).is_file():
        return []
    optuna = import_optuna()
    storage = open_storage(root)
    found = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = Study(optuna.load_study(study_name=summary.study_name, storage=storage),
                      Path(root))
        trials = study.trials
        found.append(StudySummary(
            name=study.name, notebook=str(study.settings.get("notebook", "")),
            objective=study.objective, direction=study.direction, trials=len(trials),
            complete=sum(t.state == "COMPLETE" for t in trials),
            best_value=study.best_value,
            started=summary.datetime_start.isoformat(timespec="seconds")
            if summary.datetime_start else None))
    return sorted(found, key=lambda s: (s.started or "", s.name))
