"""What a target is: compile a spec to a cluster's document, submit it, follow the run.

Every target (the built-in ``argo`` and ``kfp``, and plugins registered in the
``cellpipe.targets`` entry-point group, see :mod:`cellpipe.plugins`) has the same methods
with the same signatures. ``connection`` holds how to reach the cluster; a target class
declares the keys it reads as its ``connection`` attribute (:mod:`cellpipe.targets.connection`:
``namespace`` for Argo; ``host``, required, ``experiment`` and ``namespace`` for Kubeflow
Pipelines), and says clearly when one it needs is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from cellpipe.core.spec import PipelineSpec
from cellpipe.targets.cluster import ClusterSettings

__all__ = ["Document", "RunStatus", "Submission", "Target"]


@dataclass(frozen=True)
class Document:
    """A compiled pipeline: its text as written to a file, and its data when it has any."""

    text: str
    data: Any = None
    suffix: str = ".yaml"


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
    """

    name: str
    phase: str
    done: bool
    title: str = ""
    message: str = ""
    steps: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)


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
