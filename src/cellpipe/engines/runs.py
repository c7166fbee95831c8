"""Runs on disk: ``.cellpipe/runs/<run-id>/`` with ``run.json`` updated atomically.

A run directory holds ``run.json`` (status, timings, parameters, metrics, per-step state
and why each step ran), ``spec.json``, ``parameters.json``, ``artifacts/<step>/…`` and
``steps/<step>/`` (``log.txt``, ``report.ipynb``, ``report.html``, ``result.json``).

While a run goes, each step event appends the step's state as one line to
``events.jsonl`` (numbered); ``run.json`` is rewritten as a whole (atomically) at the
start, at most every :data:`SNAPSHOT_SECONDS` while events arrive, and at the end, which
empties the event log. Reading a run applies the events newer than its snapshot, so a
reader (or a resume after a crash) sees every event that reached the file: the cost per
event stays flat however many steps the run has.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.core.layout import EVENTS_FILE, RUN_FILE, RUNS_DIR, RunLayout
from cellpipe.errors import CellpipeError

SNAPSHOT_SECONDS = 1.0


def new_run_id() -> str:
    """A sortable, unique id: UTC time to the second, then six hex digits.

    The first three are the fraction of the second (in 4096ths), so runs started within
    one second still sort in order; the last three are random (``20261124-220501-a3f9c2``).
    """
    now = time.time()
    fraction = min(int((now % 1) * 4096), 4095)
    return (time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
            + f"-{fraction:03x}{secrets.token_hex(2)[:3]}")


@dataclass
class RunRecord:
    """One run's directory and its ``run.json`` contents."""

    path: Path
    data: dict[str, Any]
    _events: Any = field(default=None, repr=False, compare=False)
    _snapshot_at: float = field(default=0.0, repr=False, compare=False)
    _pending: bool = field(default=False, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The run id."""
        return str(self.data["id"])

    def step_dir(self, step: str) -> Path:
        """Where a step's log, report and result go."""
        return RunLayout(self.path).step(step).path

    @property
    def artifacts(self) -> Path:
        """The run's artifact store directory."""
        return RunLayout(self.path).artifacts

    def save(self) -> None:
        """Write ``run.json`` atomically (a snapshot of everything), then empty the event log."""
        write_text_atomic(self.path / RUN_FILE, json.dumps(self.data, indent=2, default=str) + "\n")
        self._snapshot_at, self._pending = time.monotonic(), False
        if self._events is not None:
            self._events.truncate(0)  # its events are in the snapshot (their seq is not newer)
        elif (self.path / EVENTS_FILE).exists():
            (self.path / EVENTS_FILE).unlink()

    def save_step(self, name: str) -> None:
        """Record one step's state: a line appended to the event log (a snapshot when due).

        The line reaches the file before this returns (flushed, not fsynced: a killed
        process loses nothing; a machine losing power may lose the last events, whose
        steps then run again on resume).
        """
        seq = int(self.data.get("events_seq", 0)) + 1
        self.data["events_seq"] = seq
        if self._events is None:
            self._events = open(self.path / EVENTS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        line = json.dumps({"seq": seq, "step": name, "state": self.step(name)}, default=str)
        self._events.write(line + "\n")
        self._events.flush()
        self._pending = True
        if time.monotonic() - self._snapshot_at >= SNAPSHOT_SECONDS:
            self.save()

    def snapshot_due(self) -> float | None:
        """Seconds until events not yet in ``run.json`` should be (None: all are)."""
        if not self._pending:
            return None
        return max(0.0, self._snapshot_at + SNAPSHOT_SECONDS - time.monotonic())

    def close(self) -> None:
        """Write the final snapshot and close the event log."""
        self.save()
        if self._events is not None:
            self._events.close()
            self._events = None
            (self.path / EVENTS_FILE).unlink(missing_ok=True)

    def step(self, name: str) -> dict[str, Any]:
        """The state of one step (created on first use)."""
        steps: dict[str, dict[str, Any]] = self.data.setdefault("steps", {})
        return steps.setdefault(name, {"status": "pending"})


def _apply_events(events: Path, data: dict[str, Any]) -> None:
    """Bring a snapshot up to date with the event lines newer than it.

    A torn last line (from a process killed while writing it) ends the log.
    """
    try:
        text = events.read_text(encoding="utf-8")
    except OSError:
        return
    seq = int(data.get("events_seq", 0))
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            break
        if not isinstance(event, dict) or int(event.get("seq", 0)) <= seq:
            continue
        data.setdefault("steps", {})[event["step"]] = event["state"]
        data["events_seq"] = seq = int(event["seq"])


class RunsDirectory:
    """All runs of a project: ``<root>/runs/<id>``, newest last."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / RUNS_DIR

    def create(self, data: dict[str, Any]) -> RunRecord:
        """Make a new run directory; ids never collide, even for runs started at once."""
        self.runs.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = new_run_id()
            path = self.runs / run_id
            try:
                path.mkdir()
                break
            except FileExistsError:  # pragma: no cover - 2^24 ids per second
                continue
        record = RunRecord(path, {"id": run_id, **data})
        record.save()
        return record

    def load(self, run_id: str) -> RunRecord:
        """Open a run by id (or a unique prefix of one, or ``latest``)."""
        path = self.runs / run_id
        if run_id == "latest":
            ids = self.ids()
            if not ids:
                raise CellpipeError("there are no runs yet", path=str(self.runs),
                                    hint="start one with `cellpipe run NOTEBOOK`")
            path = self.runs / ids[-1]
        elif not (path / RUN_FILE).exists():
            matches = [i for i in self.ids() if i.startswith(run_id)]
            if len(matches) != 1:
                hint = "list them with `cellpipe runs`"
                raise CellpipeError(
                    f"no run {run_id!r}" if not matches else f"{run_id!r} matches several runs",
                    path=str(self.runs), hint=hint,
                )
            path = self.runs / matches[0]
        try:
            data = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CellpipeError(f"cannot read {path / RUN_FILE}: {exc}") from exc
        _apply_events(path / EVENTS_FILE, data)
        return RunRecord(path, data)

    def ids(self) -> list[str]:
        """Run ids, oldest first."""
        if not self.runs.is_dir():
            return []
        return sorted(p.name for p in self.runs.iterdir() if (p / RUN_FILE).exists())

    def __iter__(self) -> Iterator[RunRecord]:
        for run_id in self.ids():
            try:
                yield self.load(run_id)
            except CellpipeError:
                continue
