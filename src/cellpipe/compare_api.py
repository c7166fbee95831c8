"""Comparing runs: ``cellpipe.compare(runs, …) -> Comparison``.

A comparison reads only the local run history (``run.json`` of each run), so it works the
same for every engine that writes it (``local``, ``docker``): the parameters that differ
(and those that are the same), the metrics side by side with each one's change from the
first run, and for every step whether it ran or came from the cache in each run, and why.
:meth:`Comparison.plot` draws the metrics over the runs as a PNG (matplotlib, imported
only then).

Runs of different notebooks can be compared: names are matched as they are, a name one
run lacks shows as missing, and :attr:`Comparison.notes` says the runs' notebooks differ.

Kept apart from :mod:`cellpipe.api` (cheap to import); ``cellpipe.api`` re-exports it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellpipe.errors import CellpipeError
from cellpipe.runs_api import Run

__all__ = ["Comparison", "compare"]

# How many known run ids an unknown-id error lists (the newest).
_KNOWN_SHOWN = 8
# A step's states that mean it was started in that run (not reused, skipped or blocked).
_STARTED = ("succeeded", "failed", "running", "retrying")


@dataclass(frozen=True)
class Comparison:
    """Runs side by side; every list inside is in the order the runs were given.

    Attributes:
        runs: The runs compared, in the order given.
        parameters: The parameters whose value differs between the runs: name → the value
            in each run (None where a run has no such parameter).
        same_parameters: The parameters every run gives the same value: name → value.
        metrics: Every metric any run has: name → the value in each run (None: missing).
        steps: Every step any run has, in pipeline order: name → per run its state
            (None when that run's pipeline has no such step): ``status``, ``ran`` (it was
            started in this run), ``cached`` (its results were reused), ``reason`` (why
            it ran, was reused or did not run), ``cached_from`` (the run it was reused
            from), ``duration`` (seconds), ``error`` (a failure's message) and
            ``changed_outputs`` (the outputs whose content differs from the first run's;
            None for the first run, or when either run left no outputs).
        notes: What to keep in mind reading the comparison (different notebooks, runs
            that did not succeed, a parameter some run lacks).
    """

    runs: tuple[Run, ...]
    parameters: dict[str, list[Any]]
    same_parameters: dict[str, Any]
    metrics: dict[str, list[Any]]
    steps: dict[str, list[dict[str, Any] | None]]
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"<Comparison of {len(self.runs)} runs ({', '.join(self.ids)}): "
                f"{len(self.parameters)} parameter(s) differ, {len(self.metrics)} metric(s), "
                f"{len(self.steps)} step(s)>")

    @property
    def ids(self) -> list[str]:
        """The run ids, in order."""
        return [r.id for r in self.runs]

    def change(self, metric: str) -> list[float | None]:
        """Each run's value of ``metric`` minus the first run's (None where not numeric)."""
        values = self.metrics[metric]
        first = values[0]
        return [None if i == 0 or not (_number(first) and _number(v)) else v - first
                for i, v in enumerate(values)]

    def labels(self) -> list[str]:
        """Per run: its id (and status), then the parameters that differ (``lr=0.1``).

        The status is shown unless the run succeeded; one parameter a line, four at most.
        """
        labels = []
        for index, run in enumerate(self.runs):
            shown = [f"{name}={_short(values[index])}" for name, values in self.parameters.items()]
            head = run.id if run.status == "succeeded" else f"{run.id} ({run.status})"
            labels.append("\n".join([head, *shown[:4], *(["…"] if len(shown) > 4 else [])]))
        return labels

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON data (``cellpipe compare --format json``)."""
        return {
            "runs": [_run_summary(r) for r in self.runs],
            "notes": list(self.notes),
            "parameters": {"differ": self.parameters, "same": self.same_parameters},
            "metrics": {name: {"values": values, "change": self.change(name)}
                        for name, values in self.metrics.items()},
            "steps": self.steps,
        }

    def tables(self) -> dict[str, tuple[list[str], list[list[str]]]]:
        """The comparison as text tables for the front ends: section → (headers, rows).

        Sections: ``runs``, ``parameters`` (those that differ), ``metrics`` (each later
        run's value followed by its change from the first) and ``steps``.
        """
        ids = self.ids
        runs = [[r.id, Path(str(r.data.get("notebook", ""))).name,
                 str(r.data.get("engine", "")), r.status,
                 f"{float(r.data.get('duration') or 0):.1f}s"] for r in self.runs]
        parameters = [[name, *(_short(v) for v in values)]
                      for name, values in self.parameters.items()]
        metrics = []
        for name, values in self.metrics.items():
            cells = [name]
            for value, delta in zip(values, self.change(name), strict=True):
                text = "—" if value is None else _short(value)
                if delta is not None:
                    text += f" ({_signed(delta, values[0])})"
                cells.append(text)
            metrics.append(cells)
        steps = [[name, *(_step_text(state) for state in states)]
                 for name, states in self.steps.items()]
        return {
            "runs": (["run", "notebook", "engine", "status", "duration"], runs),
            "parameters": (["parameter", *ids], parameters),
            "metrics": (["metric", *ids], metrics),
            "steps": (["step", *ids], steps),
        }

    def numeric_metrics(self) -> list[str]:
        """The metrics with a number in at least one run (what :meth:`plot` can draw)."""
        return [name for name, values in self.metrics.items() if any(map(_number, values))]

    def png(self, metrics: Sequence[str] | None = None) -> bytes:
        """The metric-over-runs plot as PNG bytes (see :meth:`plot`)."""
        import io

        names = self._plotted(metrics)
        try:
            import matplotlib
        except ImportError as exc:
            from cellpipe.errors import MissingDependencyError

            raise MissingDependencyError.for_extra("matplotlib", "plot",
                                                   "Plotting metrics over runs") from exc
        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        # A Figure of its own (not pyplot): no global state, no GUI backend, thread-safe.
        figure = Figure(figsize=(max(6.0, 1.9 * len(self.runs)), 4.2), dpi=100)
        axes = figure.add_subplot()
        positions = list(range(len(self.runs)))
        for name in names:
            values = [float(v) if _number(v) else math.nan for v in self.metrics[name]]
            axes.plot(positions, values, marker="o", label=name)
        axes.set_xticks(positions, self.labels(), fontsize=7)
        axes.set_xlim(-0.5, len(self.runs) - 0.5)
        axes.set_xlabel("run (in the order given)")
        axes.set_ylabel(names[0] if len(names) == 1 else "metric value")
        axes.set_title(f"{names[0] if len(names) == 1 else 'metrics'} over runs")
        axes.grid(True, alpha=0.3)
        if len(names) > 1:
            axes.legend(fontsize=8)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def plot(self, path: str | Path, metrics: Sequence[str] | None = None) -> Path:
        """Write the metric-over-runs plot to ``path`` as PNG; returns the path.

        One line per metric (``metrics`` chooses which; default: every numeric one); x is
        the runs in the order given, labelled by id and the parameters that differ.

        Raises:
            CellpipeError: A metric in ``metrics`` is unknown or has no numeric value, or
                no run has a numeric metric.
            MissingDependencyError: matplotlib is not installed (``cellpipe[plot]``).
        """
        from cellpipe.core.atomic import write_bytes_atomic

        target = Path(path)
        write_bytes_atomic(target, self.png(metrics))
        return target

    def _plotted(self, metrics: Sequence[str] | None) -> list[str]:
        numeric = self.numeric_metrics()
        if not metrics:
            if not numeric:
                raise CellpipeError(
                    "none of the runs has a numeric metric to plot",
                    hint="tag the cell that computes them `metrics` (names assigned there "
                    "are the pipeline's metrics), then run again")
            return numeric
        from cellpipe.core.diagnostics import did_you_mean

        for name in metrics:
            if name not in numeric:
                known = ", ".join(numeric) or "none"
                what = f"metric {name!r} has no numeric value" if name in self.metrics \
                    else f"there is no metric {name!r}"
                raise CellpipeError(
                    f"{what} in these runs (numeric metrics: {known})",
                    hint=did_you_mean(name, set(numeric)) or None)
        return list(dict.fromkeys(metrics))


def compare(runs: Iterable[Run | str], *, root: str | Path | None = None,
            notebook: str | Path | None = None) -> Comparison:
    """Compare runs of the local run history (see :class:`Comparison`).

    Args:
        runs: Two or more runs: :class:`Run` objects, or ids (a unique prefix of one, or
            ``latest``) looked up under ``root``.
        root: The ``.cellpipe`` directory the ids are in [``$CELLPIPE_HOME``, or
            ``.cellpipe`` beside ``notebook``, or in the current directory].
        notebook: A notebook whose runs directory is meant (when ``root`` is not given).

    Raises:
        CellpipeError: Fewer than two runs, the same run twice, or an id that is not a run
            (the message lists the known ids).
    """
    from cellpipe.core.layout import default_root

    given = list(runs)
    if len(given) < 2:
        raise CellpipeError(
            f"comparing needs at least two runs (got {len(given)})",
            hint="name two or more run ids (or `latest`); list them with `cellpipe runs`")
    base = Path(root) if root else default_root(notebook)
    opened = [r if isinstance(r, Run) else _open(str(r), base) for r in given]
    seen: set[str] = set()
    for r in opened:
        if r.id in seen:
            raise CellpipeError(f"run {r.id} is given twice", hint="name each run once")
        seen.add(r.id)
    return _build(tuple(opened))


def _open(ref: str, root: Path) -> Run:
    """A run by id, unique prefix or ``latest``; unknown: an error listing the known ids."""
    from cellpipe.engines.runs import RunsDirectory

    directory = RunsDirectory(root)
    ids = directory.ids()
    matches = [i for i in ids if i.startswith(ref)]
    if ref != "latest" and ref not in ids and len(matches) != 1:
        if not ids:
            raise CellpipeError(f"no run {ref!r}: there are no runs under {directory.runs}",
                                hint="start one with `cellpipe run NOTEBOOK`, or pass --root")
        if matches:
            raise CellpipeError(f"{ref!r} matches several runs: {', '.join(matches)}",
                                hint="give more of the id")
        shown = ids[-_KNOWN_SHOWN:]
        older = f" (and {len(ids) - len(shown)} older)" if len(ids) > len(shown) else ""
        raise CellpipeError(
            f"no run {ref!r} under {directory.runs}; known runs, newest last: "
            f"{', '.join(shown)}{older}",
            hint="use one of these ids (or a unique prefix, or `latest`); see `cellpipe runs`")
    record = directory.load(ref)
    return Run(record.id, record.path, record.data)


def _build(runs: tuple[Run, ...]) -> Comparison:
    every = _union(r.parameters for r in runs)
    differ: dict[str, list[Any]] = {}
    same: dict[str, Any] = {}
    notes: list[str] = []
    for name in every:
        values = [r.parameters.get(name) for r in runs]
        lacking = [r.id for r in runs if name not in r.parameters]
        if lacking:
            notes.append(f"parameter {name!r} is not in run{'s' if len(lacking) > 1 else ''} "
                         f"{', '.join(lacking)}")
        if lacking or len({_key(v) for v in values}) > 1:
            differ[name] = values
        else:
            same[name] = values[0]
    metrics = {name: [r.metrics.get(name) for r in runs] for name in _union(r.metrics
                                                                            for r in runs)}
    steps = {name: [_step_state(r, name, runs[0]) for r in runs]
             for name in _union(r.steps for r in runs)}
    notebooks = {r.id: Path(str(r.data.get("notebook", ""))) for r in runs}
    if len(set(notebooks.values())) > 1:
        by_notebook: dict[str, list[str]] = {}
        for run_id, path in notebooks.items():
            by_notebook.setdefault(str(path), []).append(run_id)
        listed = "; ".join(f"{path}: {', '.join(ids)}" for path, ids in by_notebook.items())
        notes.insert(0, f"the runs are of different notebooks ({listed}): parameters, "
                     "metrics and steps are matched by name; a name a run lacks shows as "
                     "missing")
    for r in runs:
        if r.status != "succeeded":
            notes.append(f"run {r.id} {r.status}: some of its metrics or steps may be missing")
    return Comparison(runs, differ, same, metrics, steps, tuple(notes))


def _union(mappings: Iterable[dict[str, Any]]) -> list[str]:
    """Every key, in the order first seen (the first run's order, then newcomers)."""
    names: dict[str, None] = {}
    for mapping in mappings:
        names.update(dict.fromkeys(mapping))
    return list(names)


def _step_state(run: Run, name: str, first: Run) -> dict[str, Any] | None:
    state = run.steps.get(name)
    if state is None:
        return None
    status = str(state.get("status", "pending"))
    error = state.get("error") or {}
    reason = state.get("reason") if status in (*_STARTED, "cached") else None
    changed = None
    if run is not first:
        outputs, before = state.get("outputs"), (first.steps.get(name) or {}).get("outputs")
        if outputs and before:
            changed = sorted(n for n in set(outputs) | set(before)
                             if _digest(outputs.get(n)) != _digest(before.get(n)))
    return {
        "status": status,
        "ran": status in _STARTED,
        "cached": status == "cached",
        "reason": reason or state.get("message") or None,
        "cached_from": state.get("cached_from"),
        "duration": state.get("duration"),
        "error": error.get("message") if isinstance(error, dict) else str(error),
        "changed_outputs": changed,
    }


def _digest(meta: Any) -> Any:
    return (meta.get("digest") or meta.get("sha256")) if isinstance(meta, dict) else None


def _step_text(state: dict[str, Any] | None) -> str:
    if state is None:
        return "— (not in this run)"
    status = state["status"]
    if state["cached"]:
        text = f"cached from {state['cached_from']}" if state.get("cached_from") else "cached"
    elif state["ran"]:
        text = "ran" if status == "succeeded" else status
        if state.get("reason"):
            text += f": {state['reason']}"
        if state.get("error"):
            text += f" ({state['error']})"
    else:
        text = status + (f": {state['reason']}" if state.get("reason") else "")
    changed = state.get("changed_outputs")
    if changed is not None:
        text += " · same outputs" if not changed else f" · changed: {', '.join(changed[:4])}"
    return text


def _run_summary(run: Run) -> dict[str, Any]:
    return {"id": run.id, "notebook": run.data.get("notebook"), "engine": run.data.get("engine"),
            "status": run.status, "duration": run.data.get("duration"),
            "created": run.data.get("created")}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _short(value: Any) -> str:
    if value is None:
        return "—"
    text = f"{value:.4g}" if isinstance(value, float) else (
        value if isinstance(value, str) else json.dumps(value, default=repr))
    return text if len(text) <= 24 else text[:23] + "…"


def _signed(delta: float, first: Any) -> str:
    text = f"{delta:+.4g}"
    if _number(first) and first:
        text += f", {delta / abs(first):+.1%}"
    return text
