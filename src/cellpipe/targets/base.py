"""What a target is: compile a spec to a cluster's document, submit it, follow the run.

Every target (the built-in ``argo``, ``kfp`` and ``katib``, and plugins registered in the
``cellpipe.targets`` entry-point group, see :mod:`cellpipe.plugins`) has the same methods
with the same signatures. ``connection`` holds how to reach the cluster; a target class
declares the keys it reads as its ``connection`` attribute (:mod:`cellpipe.targets.connection`:
``namespace`` for Argo; ``host``, required, ``experiment`` and ``namespace`` for Kubeflow
Pipelines), and says clearly when one it needs is missing.

A target that can also run a pipeline on a schedule (``argo``: a CronWorkflow; ``kfp``: a
recurring run) has the methods of :class:`SchedulingTarget` too; the api refuses to
schedule on one that has not (``target X cannot schedule runs``).

A target that compiles a parameter search rather than one run (``katib``) says so with a
class attribute ``searches = True``: front ends then give it the search as ``options``
(``-p NAME=SPACE``, ``--objective`` …) and show its status's ``optimal`` trial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from cellpipe.core.spec import PipelineSpec
from cellpipe.targets.cluster import ClusterSettings

__all__ = ["CONCURRENCY_POLICIES", "ConcurrencyPolicy", "Document", "RunStatus", "Schedule",
           "ScheduleOptions", "SchedulingTarget", "Submission", "Target"]


@dataclass(frozen=True)
class Document:
    """A compiled pipeline: its text as written to a file, and its data when it has any.

    ``store`` is where a run of it keeps its values when that is an object store the
    submitter can read (``{name}`` stands for the run's name), else None; ``spec`` is the
    pipeline it was compiled from (set by ``cluster_api.compile_document``). ``notes`` are
    what compiling has to tell the user about it (what the document leaves out, and why);
    front ends show them, the text does not hold them.
    """

    text: str
    data: Any = None
    suffix: str = ".yaml"
    store: str | None = None
    spec: PipelineSpec | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Submission:
    """A submitted run: its name on the cluster, the status last seen, how to name it.

    ``title`` is as :attr:`RunStatus.title` (empty: front ends say ``TARGET run NAME``).
    """

    name: str
    status: str
    title: str = ""


@dataclass(frozen=True)
class RunStatus:
    """A submitted run's state, as its target reports it.

    Attributes:
        name: The run's name on the cluster.
        phase: The target's own word for its state (Argo ``Running``, KFP ``SUCCEEDED``).
        done: Whether the run has ended (``phase`` is final).
        title: How to name the run to a user (``workflow NAME``, ``KFP run ID``); when
            empty, front ends say ``TARGET run NAME``.
        message: Why it is in that state (the controller's message), or "".
        steps: Step → (its phase, its message), for the steps the target reports.
        outputs: The values the steps reported (the metrics), when the target has them.
        store: The object store (an fsspec URL) holding the run's values, reports and
            results, when it has one the submitter can read; None when they stay in the
            cluster (or the target does not say).
        optimal: For a target that searches parameters (Katib), its best trial so far:
            ``name``, ``parameters`` (name → value) and ``metrics`` (name → value); empty
            for a single run or before any trial has reported.
    """

    name: str
    phase: str
    done: bool
    title: str = ""
    message: str = ""
    steps: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    store: str | None = None
    optimal: Mapping[str, Any] = field(default_factory=dict)


class Target(Protocol):
    """A cluster a pipeline can be compiled for and submitted to."""

    name: ClassVar[str]
    description: ClassVar[str]

    def compile(self, spec: PipelineSpec, images: Mapping[str, str],
                settings: ClusterSettings, options: Mapping[str, Any]) -> Document:
        """The document of ``spec`` with each step's image; ``options`` target-specific."""

    def submit(self, document: Document, *, parameters: Mapping[str, Any],
               watch: bool, timeout: float | None,
               on_event: Callable[[Any], None] | None,
               connection: Mapping[str, Any]) -> Submission:
        """Create the run (and wait for its end when ``watch``)."""

    def status(self, name: str, connection: Mapping[str, Any]) -> RunStatus:
        """The run's state, and each step's when the target knows them."""

    def logs(self, name: str, step: str, connection: Mapping[str, Any]) -> str:
        """What ``step`` of run ``name`` printed."""

    def exit_code(self, status: str) -> int:
        """The process exit code for a run that ended with ``status``."""


ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]
CONCURRENCY_POLICIES: tuple[ConcurrencyPolicy, ...] = ("Allow", "Forbid", "Replace")


@dataclass(frozen=True)
class ScheduleOptions:
    """How a schedule runs its pipeline, besides the cron expression and parameters.

    Attributes:
        name: The schedule's name on the cluster (default: the pipeline's).
        timezone: The IANA time zone the cron expression is read in (default: the
            cluster's, usually UTC).
        concurrency_policy: When a run is due while the last one still runs: ``Forbid``
            skips it, ``Allow`` runs both, ``Replace`` stops the last one.
        suspend: Create it suspended (no runs until resumed).
    """

    name: str | None = None
    timezone: str | None = None
    concurrency_policy: ConcurrencyPolicy = "Forbid"
    suspend: bool = False


@dataclass(frozen=True)
class Schedule:
    """A pipeline that the cluster runs on a schedule, as its target reports it.

    Attributes:
        name: Its name (what ``unschedule`` takes; KFP also takes its id).
        cron: The five-field cron expression.
        timezone: The time zone it is read in; "" for the cluster's.
        concurrency_policy: ``Allow``, ``Forbid`` or ``Replace`` (see :class:`ScheduleOptions`).
        suspended: Whether it is suspended (starts no runs).
        parameters: The parameter values its runs get (as the target keeps them).
        title: How to name it to a user (``CronWorkflow NAME``); when empty, front ends
            say ``TARGET schedule NAME``.
        id: The target's own id when it is not the name (KFP's recurring run id), or "".
        last_run: When it last started a run (RFC 3339), or "" if it has not or the
            target does not say.
    """

    name: str
    cron: str
    timezone: str = ""
    concurrency_policy: str = "Forbid"
    suspended: bool = False
    parameters: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    id: str = ""
    last_run: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``cellpipe schedule --list --format json``)."""
        return {"name": self.name, "cron": self.cron, "timezone": self.timezone,
                "concurrency_policy": self.concurrency_policy, "suspended": self.suspended,
                "parameters": dict(self.parameters), "title": self.title, "id": self.id,
                "last_run": self.last_run}


class SchedulingTarget(Target, Protocol):
    """A target that can also have the cluster run a pipeline on a schedule."""

    def schedule(self, document: Document, *, cron: str, parameters: Mapping[str, Any],
                 connection: Mapping[str, Any], options: ScheduleOptions) -> Schedule:
        """Create a schedule running ``document`` at the times of ``cron`` (checked, 5 fields)."""

    def schedules(self, connection: Mapping[str, Any]) -> list[Schedule]:
        """The schedules there are (on Argo, those cellpipe made in the namespace)."""

    def unschedule(self, name: str, connection: Mapping[str, Any]) -> Schedule:
        """Delete schedule ``name``; returns it as it was."""
