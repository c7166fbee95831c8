"""Running a spec: records, caching, retries, timeouts and parallel scheduling of steps.

What every engine shares. An engine differs only in how it starts one step (a process
forked from a warm server, a container from the step's image): its :class:`Launcher`.
Everything else (``run.json``, why each step ran, the cache, resume, ``--step/--from/--to``,
retries, timeouts, cancellation, HTML reports) is the same code for all of them.
"""

from __future__ import annotations

import graphlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.core.dag import ancestors
from cellpipe.core.layout import STEP_FILES, RunLayout, StepLayout
from cellpipe.core.spec import PipelineSpec, StepSpec
from cellpipe.engines.cache import StepCache, key_of, step_key_parts
from cellpipe.engines.inputs import (
    FileHashes,
    distribution_versions,
    local_modules,
    search_path,
    step_imports,
)
from cellpipe.engines.launch import Launcher, RunOptions, StepHandle, StepLaunch
from cellpipe.engines.outcome import EXIT_NAMES, failure_message, read_result
from cellpipe.engines.outcome import damage as damage_of
from cellpipe.engines.runs import RunRecord, RunsDirectory
from cellpipe.errors import CellpipeError
from cellpipe.events import StepEvent

__all__ = ["EXIT_NAMES", "Engine", "Launcher", "RunOptions", "StepEvent", "StepHandle",
           "StepLaunch", "check_selection"]

NOT_SELECTED = "not selected (--step/--from/--to)"
CANCEL_POLL = 0.2  # seconds between looks at RunOptions.cancel while steps run


class RunCancelled(Exception):
    """The run's ``cancel`` event was set: the scheduler stopped its running steps."""
# What a step's state says about its last attempt; cleared when it is launched again.
_ATTEMPT_FIELDS = ("error", "message", "exit_code", "finished", "duration", "outputs",
                   "metrics", "store", "cached_from", "not_kept", "warnings")


class Engine:
    """Runs specs. ``run`` validates and records; a subclass supplies :meth:`_launcher`."""

    name = "engine"

    def _launcher(self, spec: PipelineSpec, options: RunOptions) -> Launcher:
        raise NotImplementedError

    @classmethod
    def from_options(cls, **options: Any) -> Engine:
        """The engine for a run's options (base image, registry, …); ignores the others."""
        return cls()

    def warm_up(self, sources: Iterable[str], notebook_dir: Path) -> None:
        """Prepare to run steps of these cells while the notebook is still analyzed."""

    def run(self, spec: PipelineSpec, options: RunOptions) -> RunRecord:
        """Run ``spec``; the returned record's ``data['status']`` says how it ended."""
        runs = RunsDirectory(options.root)
        parameters = spec.defaults
        if options.resume:
            record = runs.load(options.resume)
            parameters.update(record.data.get("parameters", {}))
            # The notebook may have changed since (the fix for the failure): steps follow
            # the new spec; states of steps it no longer has must not decide the status.
            old = record.data.get("steps", {})
            record.data["steps"] = {name: old.get(name, {"status": "pending"})
                                    for name in spec.step_names}
            record.data.pop("error", None)
        parameters.update(options.parameters)
        if not options.resume:
            record = runs.create({
                "notebook": spec.notebook.path,
                "engine": self.name,
                "status": "running",
                "created": time.time(),
                "parameters": parameters,
                "steps": {name: {"status": "pending"} for name in spec.step_names},
            })
        record.data.update({"status": "running", "started": time.time(), "parameters": parameters})
        record.data.pop("finished", None)
        layout = RunLayout(record.path)
        write_text_atomic(layout.spec, json.dumps(spec.to_dict(), indent=1) + "\n")
        write_text_atomic(layout.parameters, json.dumps(parameters) + "\n")
        record.save()
        try:
            # Reports stay notebooks here; HTML is rendered when first shown
            # (cellpipe.api.report_html), never on the run's path.
            launcher = self._launcher(spec, options)
            _Scheduler(spec, record, options, parameters, launcher).execute()
        except RunCancelled:
            record.data["status"] = "cancelled"
            for state in record.data["steps"].values():
                if state["status"] in ("pending", "running", "retrying"):
                    state["status"] = "cancelled"
            _finish(record)
            return record
        except BaseException as exc:
            # Never leave a run "running": Ctrl-C cancels it, anything else fails it.
            cancelled = isinstance(exc, KeyboardInterrupt)
            record.data["status"] = "cancelled" if cancelled else "failed"
            if not cancelled:
                record.data["error"] = f"{type(exc).__name__}: {exc}"
            for state in record.data["steps"].values():
                if state["status"] in ("pending", "running", "retrying"):
                    state["status"] = "cancelled"
            _finish(record)
            _ended(record, options)
            raise
        _finish(record)
        _ended(record, options)
        return record


def _ended(record: RunRecord, options: RunOptions) -> None:
    """Tell ``options.on_end`` the run ended; its failure is a warning, never the run's."""
    if options.on_end is None:
        return
    try:
        options.on_end(record)
    except Exception as exc:
        import warnings

        warnings.warn(f"after run {record.id}: {type(exc).__name__}: {exc}", stacklevel=2)


def _finish(record: RunRecord) -> None:
    steps = record.data["steps"].values()
    if record.data["status"] != "cancelled":
        failed = any(s["status"] in ("failed", "blocked") for s in steps)
        record.data["status"] = "failed" if failed else "succeeded"
    metrics: dict[str, Any] = {}
    for state in steps:
        metrics.update(state.get("metrics", {}))
    record.data["metrics"] = metrics
    record.data["finished"] = time.time()
    record.data["duration"] = round(record.data["finished"] - record.data["started"], 3)
    record.close()


@dataclass
class _Running:
    process: StepHandle
    step: str
    attempt: int
    started: float
    deadline: float | None


class _Scheduler:
    def __init__(
        self,
        spec: PipelineSpec,
        record: RunRecord,
        options: RunOptions,
        parameters: Mapping[str, Any],
        launcher: Launcher,
    ) -> None:
        self.spec = spec
        self.record = record
        self.options = options
        self.parameters = parameters
        self.steps = {step.name: step for step in spec.steps}
        self.cache = StepCache(options.root)
        self.launcher = launcher
        self.workers = max(1, options.workers or os.cpu_count() or 1)
        self.parameters_path = RunLayout(record.path).parameters
        self.input_stores: dict[str, str] = {}  # producer step -> store holding its results
        self.keys: dict[str, str] = {}
        upstream = {name: step.upstream for name, step in self.steps.items()}
        self.needed = ancestors(upstream, options.selected or set())
        self.hashes = FileHashes(options.root, options.notebook_dir)
        setup = [line for step in spec.steps for line in step.setup]
        self.search = search_path(options.notebook_dir, setup)

    # -- events -----------------------------------------------------------------------

    def emit(self, step: str, status: str, attempt: int = 1, elapsed: float = 0.0,
             message: str = "") -> None:
        state = self.record.step(step)
        state["status"] = status
        if message:
            state["message"] = message
        self.record.save_step(step)
        if self.options.on_event is not None:
            self.options.on_event(StepEvent(self.record.id, step, status, attempt, elapsed,
                                            message))

    # -- scheduling -------------------------------------------------------------------

    def execute(self) -> None:
        graph = {name: set(step.upstream) for name, step in self.steps.items()}
        sorter = graphlib.TopologicalSorter(graph)
        sorter.prepare()
        running: dict[int, _Running] = {}
        queue: list[str] = []
        try:
            while True:
                self.check_cancelled()
                queue.extend(sorter.get_ready())
                while queue and len(running) < self.workers:
                    name = queue.pop(0)
                    started = self.start(name)
                    if started is None:
                        continue
                    if not isinstance(started, _Running):  # reused without running
                        sorter.done(name)
                        queue.extend(sorter.get_ready())
                        continue
                    running[started.process.sentinel] = started
                if not running:
                    if queue:
                        continue
                    break
                self.wait(running, sorter)
        except BaseException as exc:
            for job in running.values():
                job.process.stop()
                if isinstance(exc, RunCancelled):
                    self.emit(job.step, "cancelled", job.attempt,
                              time.monotonic() - job.started, message="cancelled while running")
            raise
        for name in self.steps:
            if self.record.step(name)["status"] == "pending":
                if self.unselected(name):
                    message = NOT_SELECTED
                else:
                    upstream = [u for u in self.steps[name].upstream
                                if self.record.step(u)["status"] not in ("succeeded", "cached")]
                    message = f"upstream {', '.join(upstream)} did not succeed"
                self.emit(name, "skipped", message=message)

    def check_cancelled(self) -> None:
        """Raise :class:`RunCancelled` once the run's ``cancel`` event is set."""
        if self.options.cancel is not None and self.options.cancel.is_set():
            raise RunCancelled

    def unselected(self, name: str) -> bool:
        """Whether ``name`` is outside the selection and no selected step needs it."""
        selected = self.options.selected
        return selected is not None and name not in selected and name not in self.needed

    def wait(self, running: dict[int, _Running], sorter: graphlib.TopologicalSorter[str]) -> None:
        deadlines = [j.deadline for j in running.values() if j.deadline is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        due = self.record.snapshot_due()  # run.json trails the event log by ~1 s at most
        if due is not None:
            timeout = due if timeout is None else min(timeout, due)
        if self.options.cancel is not None:
            timeout = CANCEL_POLL if timeout is None else min(timeout, CANCEL_POLL)
        ready = wait(list(running), timeout=timeout)
        if not ready:
            self.check_cancelled()
        if self.record.snapshot_due() == 0.0:
            self.record.save()
        now = time.monotonic()
        for sentinel in list(running):
            job = running[sentinel]
            timed_out = job.deadline is not None and now >= job.deadline and sentinel not in ready
            if sentinel not in ready and not timed_out:
                continue
            del running[sentinel]
            outcome: int | str | None
            if timed_out:
                job.process.stop()
                outcome = "timeout"
            else:
                job.process.join()
                outcome = job.process.exitcode
            retry = job.attempt < self.steps[job.step].settings.attempts
            if self.finished(job, outcome, retry):
                sorter.done(job.step)
            elif retry:
                again = self.launch(job.step, job.attempt + 1)
                running[again.process.sentinel] = again

    # -- one step -----------------------------------------------------------------------

    def start(self, name: str) -> _Running | bool | None:
        """Reuse a step's results, or launch it. True: reused; None: not run.

        With a selection (``--step``/``--from``/``--to``) the selected steps always run;
        the steps they need come from the cache (also with ``--no-cache``, which is about
        what runs), and the others are skipped.
        """
        step = self.steps[name]
        state = self.record.step(name)
        if self.unselected(name):
            return None  # reported as skipped: not selected
        if any(self.record.step(u)["status"] not in ("succeeded", "cached")
               for u in step.upstream):
            return None  # an upstream failed: left pending, reported as skipped
        inputs = self.input_hashes(step)
        files = self.file_hashes(step)
        imports = step_imports(step)
        parts = step_key_parts(
            step, inputs, self.parameters, self.launcher.fingerprint(name), files=files,
            modules=local_modules(imports, self.search), distributions=distribution_versions(
                imports, cache=Path(self.options.root) / "cache" / "distributions.json"))
        if files:
            state["files"] = {path: {"digest": digest, "from": self.file_source(step, path)}
                              for path, digest in files.items()}
        key = key_of(parts)
        self.keys[name] = key
        damage = None
        if state.get("status") in ("succeeded", "cached") and state.get("key") == key:
            damage = damage_of(state.get("store", str(self.record.artifacts)),
                               state.get("outputs", {}))
            if damage is None:
                self.input_stores[name] = state.get("store", str(self.record.artifacts))
                self.emit(name, state["status"], message="kept from the resumed run")
                return True
        if name in self.needed:  # not selected, but a selected step reads its results
            entry = self.cache.lookup(key)
            damage = damage_of(entry["store"], entry.get("outputs", {})) if entry else None
            if entry is None or damage is not None:
                what = f"its cached result is damaged ({damage})" if damage else \
                    "no cached result"
                self.emit(name, "blocked", message=f"not selected and {what}: run it "
                          f"first (cellpipe run NOTEBOOK --to {name})")
                return None
            self.reuse(name, key, entry)
            return True
        cache_on = (self.options.cache and step.settings.cacheable
                    and self.options.selected is None)
        entry = self.cache.lookup(key) if cache_on else None
        if entry is not None:
            damage = damage_of(entry["store"], entry.get("outputs", {})) or damage
            if damage is not None:
                entry = None
        why = self.cache.why(self.spec.notebook.path, name, parts)
        if damage is not None:  # a torn or changed artifact counts as missing: run again
            why = f"its saved results are damaged ({damage}); running it again"
        if self.options.selected is not None:
            reason = "selected (--step/--from/--to)"
        elif not self.options.cache:
            reason = "--no-cache"
        else:
            reason = why if cache_on else "cache:off"
        if entry is not None:
            self.reuse(name, key, entry)
            return True
        state.update({"key": key, "reason": reason})
        return self.launch(name, 1)

    def file_hashes(self, step: StepSpec) -> dict[str, str]:
        """The content of the files the step reads, hashed now (their writers have run)."""
        patterns = [*step.file_reads, *(step.settings.inputs or ())]
        hashes = self.hashes.of(patterns) if patterns else {}
        self.hashes.save()
        return hashes

    @staticmethod
    def file_source(step: StepSpec, path: str) -> str:
        """Which step wrote a file a step reads (``external`` for the notebook's own data)."""
        from cellpipe.core.files import matches

        for pattern, writer in step.file_reads.items():
            if writer and matches(path, pattern):
                return str(writer)
        return "external"

    def input_hashes(self, step: StepSpec) -> dict[str, str]:
        hashes = {}
        for variable, producer in step.reads.items():
            outputs = self.record.step(producer).get("outputs", {})
            meta = outputs.get(variable)
            hashes[variable] = (meta.get("digest") or meta.get("sha256")) if meta else "missing"
        return hashes

    def launch(self, name: str, attempt: int) -> _Running:
        step = self.steps[name]
        step_dir = self.record.step_dir(name)
        step_dir.mkdir(parents=True, exist_ok=True)
        files = StepLayout(step_dir)
        log = files.log
        if attempt == 1 and log.exists():
            log.unlink()
        # A result left by an earlier attempt (or run, when resuming) must not be read as
        # this attempt's, and an earlier failure must not stick to a step that succeeds.
        files.result.unlink(missing_ok=True)
        for stale in _ATTEMPT_FIELDS:
            self.record.step(name).pop(stale, None)
        # The step reads its own slice of the spec: a step's start costs the same in a
        # pipeline of 10 steps or 2000 (the whole spec grows with the steps).
        spec_path = files.spec
        if attempt == 1 or not spec_path.is_file():
            write_text_atomic(spec_path, json.dumps(self.spec.slice(name).to_dict()) + "\n",
                              durable=False)
        argv = ["--spec", str(spec_path), "--step", name,
                "--store", str(self.record.artifacts), "--step-dir", str(step_dir),
                "--parameters", str(self.parameters_path), "--runtime", self.options.runtime]
        other_stores = []
        for producer in sorted(set(step.reads.values())):
            store = self.input_stores.get(producer)
            if store and store != str(self.record.artifacts):
                argv += ["--input-store", f"{producer}={store}"]
                other_stores.append(store)
        process = self.launcher.start(StepLaunch(
            step=name, argv=argv, log=log, step_dir=step_dir, run_dir=self.record.path,
            input_stores=tuple(dict.fromkeys(other_stores)),
        ))
        state = self.record.step(name)
        state.update({"attempts": attempt, "started": time.time(), **process.describe()})
        timeout = step.settings.timeout
        self.emit(name, "running", attempt)
        return _Running(process, name, attempt, time.monotonic(),
                        time.monotonic() + timeout if timeout else None)

    def finished(self, job: _Running, outcome: int | str | None, retry: bool = False) -> bool:
        """Record a step's end; True when it succeeded.

        A failed attempt that will be retried is reported as ``retrying``, not ``failed``:
        the step has not failed yet.
        """
        state = self.record.step(job.step)
        elapsed = time.monotonic() - job.started
        state.update({"finished": time.time(), "duration": round(elapsed, 3),
                      "exit_code": outcome if isinstance(outcome, int) else None})
        result = read_result(self.record.step_dir(job.step))
        if outcome == 0 and result.get("status") == "succeeded":
            outputs = result.get("outputs", {})
            noted = {k: result[k] for k in ("not_kept", "warnings") if result.get(k)}
            state.update({"outputs": outputs, "metrics": result.get("metrics", {}),
                          "store": str(self.record.artifacts), **noted})
            self.input_stores[job.step] = str(self.record.artifacts)
            self.cache.record(self.keys[job.step], {
                "run": self.record.id, "step": job.step, "store": str(self.record.artifacts),
                "step_dir": str(self.record.step_dir(job.step)), "outputs": outputs,
                "metrics": result.get("metrics", {}), **noted,
            })
            state.pop("error", None)
            state.pop("message", None)
            if job.attempt > 1:
                state["message"] = f"succeeded on attempt {job.attempt}"
            self.emit(job.step, "succeeded", job.attempt, elapsed)
            return True
        message, state["error"] = failure_message(
            outcome, result, self.steps[job.step].settings.timeout,
            job.process.failure_message)
        if retry:
            self.emit(job.step, "retrying", job.attempt, elapsed,
                      f"attempt {job.attempt} failed ({message}); trying again")
            return False
        self.emit(job.step, "failed", job.attempt, elapsed, message)
        return False

    def reuse(self, name: str, key: str, entry: Mapping[str, Any]) -> None:
        """A cache hit: the results stay where they are; the report and log are copied."""
        state = self.record.step(name)
        state.update({"key": key, "outputs": entry.get("outputs", {}),
                      **{k: entry[k] for k in ("not_kept", "warnings") if entry.get(k)},
                      "metrics": entry.get("metrics", {}), "store": entry["store"],
                      "reason": f"unchanged: reused results of run {entry['run']}",
                      "cached_from": entry["run"], "duration": 0.0})
        self.input_stores[name] = entry["store"]
        source = Path(entry.get("step_dir", ""))
        target = self.record.step_dir(name)
        target.mkdir(parents=True, exist_ok=True)
        for file in STEP_FILES:
            if (source / file).exists():
                shutil.copyfile(source / file, target / file)
        self.emit(name, "cached", message=state["reason"])


def check_selection(spec: PipelineSpec, names: list[str]) -> None:
    """Raise a clear error for unknown step names in --step/--from/--to."""
    from cellpipe.core.diagnostics import did_you_mean

    known = list(spec.step_names)
    for name in names:
        if name not in known:
            hint = did_you_mean(name, set(known)) or f"steps are: {', '.join(known)}"
            raise CellpipeError(f"there is no step {name!r}", step=name, hint=hint)
