"""A run submitted to a cluster, followed from here: ``cellpipe.submit(...) -> ClusterRun``.

Its status comes from the target (:meth:`ClusterRun.refresh`, :meth:`ClusterRun.wait`);
its values, metrics and reports from the run's object store when it has one
(``--storage s3://bucket/prefix``: the steps write their values there, and the runtime puts
each step's result and report beside them under ``core.layout.STORE_STEPS_DIR``). A run
whose data lives on a workflow volume keeps its values in the cluster: reading them says
so, and how to keep them in a store next time.

Each submission is recorded under the notebook's ``.cellpipe/cluster-runs/TARGET/NAME.json``
(its target, connection, store and pipeline), so another process — a new kernel, ``cellpipe
status NAME`` — takes the run up again with :meth:`ClusterRun.attach`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.errors import CellpipeError

if TYPE_CHECKING:
    from cellpipe.core.spec import PipelineSpec
    from cellpipe.targets.base import RunStatus

__all__ = ["ClusterRun"]


@dataclass
class ClusterRun:
    """A submitted run: its name on the cluster, the status last seen, and its results.

    Attributes:
        target: The target it was submitted to (``argo``, ``kfp``, a plugin's).
        name: Its name there (the Workflow's name, the KFP run id).
        status: The status last seen (``Submitted``, then the target's own words).
        title: How to name it to a user (``workflow NAME``); empty: ``TARGET run NAME``.
        connection: How its target is reached (``namespace``, ``host``, …).
        spec: The pipeline it runs.
        store: The run's object store (an fsspec URL), or None when its data stays on a
            volume in the cluster.
    """

    target: str
    name: str
    status: str
    title: str = ""
    connection: Mapping[str, Any] = field(default_factory=dict)
    spec: PipelineSpec | None = None
    store: str | None = None
    _last: RunStatus | None = field(default=None, repr=False)

    # -- the record --------------------------------------------------------------------------

    def save(self, root: str | Path) -> Path:
        """Record the run under ``root`` (a ``.cellpipe`` folder), for :meth:`attach`."""
        from cellpipe.core.atomic import write_text_atomic

        path = _record_path(Path(root), self.target, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"target": self.target, "name": self.name, "status": self.status,
                "title": self.title, "connection": dict(self.connection), "store": self.store,
                "spec": self.spec.to_dict() if self.spec is not None else None}
        write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def attach(cls, name: str, target: str | None = None,
               root: str | Path | None = None) -> ClusterRun:
        """The run ``name`` submitted from here before (by any process), to follow again.

        Args:
            name: The run's name on the cluster (the Workflow's name, the KFP run id).
            target: Its target; None: whichever target has a run of that name.
            root: The ``.cellpipe`` folder it was recorded in (default: the current
                folder's, or ``$CELLPIPE_HOME``).

        Raises:
            CellpipeError: no run of that name was submitted from here, or two targets
                have one.
        """
        from cellpipe.core.layout import default_root
        from cellpipe.core.spec import PipelineSpec

        folder = Path(root) if root is not None else default_root(None)
        records = cls.recorded(folder)
        found = [path for path in records
                 if path.stem == name and (target is None or path.parent.name == target)]
        if not found:
            from cellpipe.core.diagnostics import did_you_mean

            known = sorted({path.stem for path in records})
            raise CellpipeError(
                f"no cluster run {name!r}" + (f" on {target}" if target else "")
                + f" was submitted from {folder}",
                hint=did_you_mean(name, set(known)) or (
                    "recorded runs: " + ", ".join(known[-8:]) if known else
                    "runs are recorded by cellpipe submit / cellpipe.submit(); give root= "
                    "the .cellpipe folder beside the notebook"))
        if len(found) > 1:
            targets = ", ".join(sorted(path.parent.name for path in found))
            raise CellpipeError(f"runs named {name!r} were submitted to {targets}",
                                hint="say which with target=... (--target)")
        try:
            data = json.loads(found[0].read_text(encoding="utf-8"))
            spec = PipelineSpec.from_dict(data["spec"]) if data.get("spec") else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CellpipeError(f"the record of cluster run {name!r} at {found[0]} cannot be "
                                f"read: {exc}", hint="submit the notebook again") from exc
        return cls(str(data["target"]), str(data["name"]), str(data.get("status", "")),
                   str(data.get("title", "")), dict(data.get("connection") or {}), spec,
                   data.get("store"))

    @staticmethod
    def recorded(root: str | Path) -> list[Path]:
        """The records of the runs submitted from ``root``, oldest first."""
        folder = Path(root) / _RECORDS
        if not folder.is_dir():
            return []
        return sorted(folder.glob("*/*.json"), key=lambda p: (p.stat().st_mtime, p.name))

    # -- the state ---------------------------------------------------------------------------

    def refresh(self) -> RunStatus:
        """Ask the target for the run's state now (also updates :attr:`status`)."""
        from cellpipe.cluster_api import target_status

        self._last = target_status(self.target, self.name, **dict(self.connection))
        self.status = self._last.phase
        return self._last

    @property
    def done(self) -> bool:
        """Whether the run had ended when last seen."""
        return self._last is not None and self._last.done

    def wait(self, timeout: float | None = None, poll: float = 2.0) -> RunStatus:
        """Poll until the run ends; its final state.

        Raises:
            CellpipeError: ``timeout`` seconds passed first (the run goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = self.refresh()
            if found.done:
                return found
            if deadline is not None and time.monotonic() >= deadline:
                raise CellpipeError(
                    f"{self.title or f'{self.target} run {self.name}'} is still {found.phase} "
                    f"after {timeout:g}s", hint="wait again, or follow it with `cellpipe "
                    f"status {self.name} --target {self.target}`")
            time.sleep(poll)

    # -- the results -------------------------------------------------------------------------

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics the steps reported.

        From their results in the store, else from the target's last status (Argo's
        output parameters).
        """
        found: dict[str, Any] = {}
        if self.store is not None and self.spec is not None:
            for step in self.spec.steps:
                result = self._document(step.name, "result.json")
                if result is not None:
                    found.update(json.loads(result).get("metrics") or {})
        if not found and self._last is not None:
            found.update(self._last.outputs)
        return found

    def values(self) -> list[dict[str, Any]]:
        """Each value the steps make: its ``name``, its ``step`` and ``where`` it lives.

        ``where`` is its URL in the run's store, or why it is not there (its step has not
        stored it yet, or the run keeps no store).
        """
        if self.spec is None:
            return []
        rows: list[dict[str, Any]] = []
        store = None
        if self.store is not None:
            from cellpipe.marshal import open_store

            store = open_store(self.store)
        for step in self.spec.steps:
            for name in step.writes:
                if store is None:
                    where = "in the cluster (no object store)"
                else:
                    try:
                        where = store.path(step.name, name)
                    except Exception:
                        where = "not stored (yet)"
                rows.append({"name": name, "step": step.name, "where": where})
        return rows

    def load(self, name: str) -> Any:
        """The value ``name`` as the step that made it left it, read from the run's store."""
        from cellpipe.marshal import open_store

        store = self._require_store(f"value {name!r}")
        return open_store(store).load(self._producer(name), name)

    def report(self, step: str, into: str | Path | None = None) -> Path:
        """The executed report of ``step`` as HTML, fetched from the store; its path.

        Written into the folder ``into``, by default
        ``~/.cache/cellpipe/cluster-runs/<run>/<step>/``.
        """
        from cellpipe.api import report_html
        from cellpipe.core.layout import REPORT_NOTEBOOK

        self._require_store(f"the report of step {step!r}")
        data = self._document(step, REPORT_NOTEBOOK)
        if data is None:
            raise CellpipeError(f"step {step!r} of {self.name} has no report in {self.store}",
                                step=step, hint="a step's report is stored when it ends; "
                                "wait for it (ClusterRun.wait())")
        folder = (Path(into) if into is not None
                  else Path.home() / ".cache" / "cellpipe" / "cluster-runs" / self.name / step)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / REPORT_NOTEBOOK).write_bytes(data)
        html = report_html(folder)
        if html is None:
            raise CellpipeError(f"cannot render the report of step {step!r}",
                                hint="pip install 'cellpipe[report]' (nbconvert)")
        return html

    def _producer(self, name: str) -> str:
        if self.spec is None:
            raise CellpipeError(f"this run of {self.name} does not know its pipeline")
        origin = (self.spec.names or {}).get(name)
        if origin is not None and origin.kind == "value" and origin.step:
            return origin.step
        for step in reversed(self.spec.steps):
            if name in step.writes:
                return step.name
        from cellpipe.core.diagnostics import did_you_mean

        known = {n for s in self.spec.steps for n in s.writes}
        raise CellpipeError(f"no step of {self.name} makes a value {name!r}", variable=name,
                            hint=did_you_mean(name, known) or "its values: "
                            + ", ".join(sorted(known)))

    def _require_store(self, what: str) -> str:
        if self.store is None:
            raise CellpipeError(
                f"{what} of {self.name} stays in the cluster: the run keeps its data "
                + ("in the KFP server's own artifact store" if self.target == "kfp"
                   else "on a workflow volume") + ", which cellpipe cannot read from here",
                hint="submit with --storage s3://bucket/prefix (and its storage_secret) to "
                "keep values, metrics and reports in an object store cellpipe reads back")
        return self.store

    def _document(self, step: str, name: str) -> bytes | None:
        from cellpipe.core.layout import STORE_STEPS_DIR
        from cellpipe.marshal.remote import get_document

        assert self.store is not None
        return get_document(self.store, f"{STORE_STEPS_DIR}/{step}/{name}")


_RECORDS = "cluster-runs"


def _record_path(root: Path, target: str, name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return root / _RECORDS / target / f"{safe}.json"
