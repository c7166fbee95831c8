"""Runs on disk: ``.cellpipe/runs/<run-id>/`` with ``run.json`` updated atomically.

A run directory holds ``run.json`` (status, timings, parameters, metrics, per-step state
and why each step ran), ``spec.json``, ``parameters.json``, ``artifacts/<step>/…`` and
``steps/<step>/`` (``log.txt``, ``report.ipynb``, ``report.html``, ``result.json``).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.errors import CellpipeError

RUN_FILE = "run.json"


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

    @property
    def id(self) -> str:
        """The run id."""
        return str(self.data["id"])

    def step_dir(self, step: str) -> Path:
        """Where a step's log, report and result go."""
        return self.path / "steps" / step

    @property
    def artifacts(self) -> Path:
        """The run's artifact store directory."""
        return self.path / "artifacts"

    def save(self) -> None:
        """Write ``run.json`` atomically."""
        write_text_atomic(self.path / RUN_FILE, json.dumps(self.data, indent=2, default=str) + "\n")

    def step(self, name: str) -> dict[str, Any]:
        """The state of one step (created on first use)."""
        steps: dict[str, dict[str, Any]] = self.data.setdefault("steps", {})
        return steps.setdefault(name, {"status": "pending"})


class RunsDirectory:
    """All runs of a project: ``<root>/runs/<id>``, newest last."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

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


def default_root(notebook_path: str | None) -> Path:
    """``$CELLPIPE_HOME``, else ``.cellpipe`` beside the notebook (or in the cwd)."""
    env = os.environ.get("CELLPIPE_HOME")
    if env:
        return Path(env)
    base = Path(notebook_path).resolve().parent if notebook_path else Path.cwd()
    return base / ".cellpipe"
