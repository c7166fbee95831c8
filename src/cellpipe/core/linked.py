"""The linked pipeline: steps, the edges between them, and what each name is bound to.

What :func:`cellpipe.core.linker.link` returns; frozen data, built once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cellpipe.core.analysis import (
    Definition,
    Import,
)
from cellpipe.core.diagnostics import Diagnostic
from cellpipe.core.kinds import ClassificationKind, Split
from cellpipe.core.notebook import Notebook
from cellpipe.core.plan import Parameter


@dataclass(frozen=True)
class Step:
    """One step of the pipeline, fully linked.

    Attributes:
        name: Step name.
        cells: ``(index, id)`` of its cells, in order.
        sources: The source of each cell as it runs in the step (``%%step`` header and
            install lines removed).
        upstream: Steps it runs after (data and explicit edges), sorted by step order.
        reads: Variable → the step that produced the value it reads.
        parameters: Parameters it reads.
        writes: Variables it leaves for later steps (assigned or changed in place).
        mutates: Of ``writes``, those changed in place rather than assigned.
        imports: Import statements replayed before its cells.
        definitions: Function and class definitions replayed before its cells.
        setup: Session setup replayed before its cells (``%matplotlib``, options, seeds).
        settings: Per-step settings from annotations.
        requirements: Packages from install lines in its cells.
        metrics: Metric names this step reports.
        dynamic: True when names cannot be resolved statically (exec, globals(), star
            imports): the step receives every earlier value and exports all it ends with.
        metrics_cells: Indices of its cells tagged ``metrics``.
        random_state: ``draws`` when it draws from the global random state (it reads the
            state the step before left and passes it on), ``seeds`` when it only sets it,
            ``""`` when it does not touch it.
        write_cells: Per output, the last cell that assigns or changes it.
        file_reads: Path patterns (relative to the notebook) of files it reads → the step
            that writes them before it, or None for an external input.
        file_writes: Path patterns of files it writes (or directories it makes).
        file_order: Steps it must run after because of files besides reads: one wrote a
            file this step writes again, read a file this step overwrites, or made the
            directory it writes into.
        file_lines: Of ``file_reads`` and ``file_writes``, where the step first uses each
            path: (cell index, line); a declared ``inputs:`` path has none.
        classification: Its metrics cells' charts: name → ``confusion_matrix`` or
            ``roc_curve`` (a dict with those keys; not metrics, not numbers).
    """

    name: str
    cells: tuple[tuple[int, str], ...]
    sources: tuple[str, ...]
    upstream: tuple[str, ...]
    reads: Mapping[str, str]
    parameters: tuple[str, ...]
    writes: tuple[str, ...]
    mutates: tuple[str, ...]
    imports: tuple[str, ...]
    definitions: tuple[str, ...]
    setup: tuple[str, ...]
    settings: Mapping[str, Any]
    requirements: tuple[str, ...]
    metrics: tuple[str, ...]
    dynamic: bool
    metrics_cells: tuple[int, ...] = ()
    random_state: str = ""
    write_cells: Mapping[str, int] = field(default_factory=dict, compare=False)
    file_reads: Mapping[str, str | None] = field(default_factory=dict)
    file_writes: tuple[str, ...] = ()
    file_order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    file_lines: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False)
    classification: Mapping[str, ClassificationKind] = field(default_factory=dict)


@dataclass(frozen=True)
class NameSource:
    """Where the value a name holds at the end of the notebook comes from.

    Attributes:
        kind: ``value`` (a step's output), ``parameter``, ``import``, ``definition`` (a
            notebook function or class, replayed), or ``skip`` (last assigned in a cell
            marked skip: not part of the pipeline).
        step: The producing step (values; definitions made in a step).
        source: The statement that replays it (imports, definitions).
        reads: Names a definition reads when called (resolved the same way).
        cell: The cell that last binds it.
    """

    kind: str
    step: str | None = None
    source: str = ""
    reads: tuple[str, ...] = ()
    cell: int | None = None


@dataclass(frozen=True)
class Edge:
    """``source`` → ``target``, carrying ``variables``; ``explicit`` if declared by after:.

    ``files`` are the paths (patterns) that make the edge: the target reads what the source
    wrote, or the two must keep their notebook order on a file.
    """

    source: str
    target: str
    variables: tuple[str, ...]
    explicit: bool
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    """The linked pipeline with everything lint found."""

    notebook: Notebook
    split: Split
    steps: tuple[Step, ...]
    edges: tuple[Edge, ...]
    parameters: tuple[Parameter, ...]
    metrics: tuple[tuple[str, str], ...]
    diagnostics: tuple[Diagnostic, ...]
    names: Mapping[str, NameSource] = field(default_factory=dict)
    star_imports: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Diagnostic]:
        """Diagnostics of severity error."""
        return [d for d in self.diagnostics if d.severity == "error"]

    def step(self, name: str) -> Step:
        """Return the step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


@dataclass
class Binding:
    """What a name is bound to at a point of the notebook (kind, producer, object)."""

    kind: str  # value | import | def | param | seed
    producer: str | None = None
    obj: Import | Definition | None = None
    definite: bool = True
    alias: bool = False
    stateful: bool = False  # a generator or iterator: using it changes it
    methods: frozenset[str] = frozenset()  # an instance's methods that change it
    bound: str | None = None  # what it is when it cannot leave its process ("an open file")
    where: tuple[int, int] = (0, 0)  # cell and line of the store
    seeds: tuple[tuple[str, tuple[str, ...]], ...] = ()  # seed: (code, names it reads)
    cell: int | None = None  # the cell that bound it last
    path: tuple[object, ...] | None = None  # a value built like a path: its template

