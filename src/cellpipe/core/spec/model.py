"""The typed pipeline spec: frozen dataclasses, read from and written to the spec's JSON.

Every engine, target and runtime takes a :class:`PipelineSpec`. Its JSON (``to_dict`` /
``to_json``) is the versioned document of ``pipeline-spec.v1.schema.json``; reading one
back (``PipelineSpec.from_dict``) checks it against that schema once, then builds the
objects. Objects hold tuples and read-only mappings; nothing changes them once built.

Optional JSON members are ``None`` here and left out of the JSON, so a spec written from
the objects is the document it was read from, key for key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from cellpipe.core.kinds import ClassificationKind, NameKind, ParameterType, RandomStateUse, Split
from cellpipe.errors import CellpipeError

SPEC_VERSION = "1"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def freeze(value: Any) -> Any:
    """A JSON value made read-only: lists become tuples, objects read-only mappings."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The JSON value of :func:`freeze`'s result (plain dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class NotebookRef:
    """The notebook a spec came from: its path, name and the digest of its cells."""

    path: str
    name: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        return {"path": self.path, "name": self.name, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class ImportedModule:
    """A top-level module a code cell imports."""

    cell: int
    module: str


@dataclass(frozen=True, slots=True)
class PipelineInfo:
    """Pipeline-wide settings (Kale's metadata, ``metadata.cellpipe``).

    ``requirements``, ``imports`` and ``cluster`` are None in a step's slice, which leaves
    them out.
    """

    name: str
    description: str = ""
    experiment: str = ""
    base_image: str = ""
    volumes: tuple[Any, ...] = ()
    requirements: tuple[str, ...] | None = None
    imports: tuple[ImportedModule, ...] | None = None
    cluster: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        found: dict[str, Any] = {
            "name": self.name, "description": self.description, "experiment": self.experiment,
            "base_image": self.base_image, "volumes": thaw(self.volumes),
        }
        if self.requirements is not None:
            found["requirements"] = list(self.requirements)
        if self.imports is not None:
            found["imports"] = [{"cell": i.cell, "module": i.module} for i in self.imports]
        if self.cluster is not None:
            found["cluster"] = thaw(self.cluster)
        return found


@dataclass(frozen=True, slots=True)
class Parameter:
    """A pipeline parameter from the parameters cell, with the notebook's literal default."""

    name: str
    type: ParameterType
    default: Any
    cell: int
    line: int

    @property
    def default_copy(self) -> Any:
        """The default as plain JSON data (lists, dicts): a fresh copy, free to change."""
        return thaw(self.default)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Parameter:
        """A parameter from its JSON object (``cell`` and ``line`` default to 0)."""
        return cls(str(data["name"]), cast(ParameterType, data["type"]),
                   freeze(data["default"]), int(data.get("cell", 0)), int(data.get("line", 0)))

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        return {"name": self.name, "type": self.type, "default": thaw(self.default),
                "cell": self.cell, "line": self.line}


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric and the step that reports it."""

    name: str
    step: str


@dataclass(frozen=True, slots=True)
class StepCell:
    """A notebook cell as it runs in a step."""

    index: int
    id: str
    source: str
    metrics: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        return {"index": self.index, "id": self.id, "source": self.source,
                "metrics": self.metrics}


@dataclass(frozen=True, slots=True)
class CodeSpan:
    """Where cell ``cell`` starts in the step's code (1-based) and how many lines it has."""

    cell: int
    start: int
    lines: int


# the order settings are written in: the annotations' (core.annotations.SETTING_KEYS)
SETTING_NAMES = ("image", "gpu", "cpu", "memory", "retries", "timeout", "cache", "inputs",
                 "model")
_LIST_SETTINGS = ("inputs", "model")


@dataclass(frozen=True, slots=True)
class StepSettings:
    """Per-step settings from annotations; None: not set (the engine's default).

    ``model`` names the variables that hold models (``model:NAME`` tags): cluster targets
    publish each as a model artifact.
    """

    image: str | None = None
    gpu: int | None = None
    cpu: str | None = None
    memory: str | None = None
    retries: int | None = None
    timeout: int | None = None
    cache: bool | None = None
    inputs: tuple[str, ...] | None = None
    model: tuple[str, ...] | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The variables it names models (none when it names none)."""
        return self.model or ()

    @property
    def attempts(self) -> int:
        """How many times the step may run: once plus its retries."""
        return 1 + (self.retries or 0)

    @property
    def cacheable(self) -> bool:
        """False only when the step says ``cache: false``."""
        return self.cache is not False

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        found: dict[str, Any] = {}
        for name in SETTING_NAMES:
            value = getattr(self, name)
            if value is not None:
                found[name] = list(value) if name in _LIST_SETTINGS else value
        return found


@dataclass(frozen=True, slots=True)
class StepFiles:
    """Files a step reads (pattern → the step that writes it, None: external) and writes."""

    reads: Mapping[str, str | None]
    writes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step: its cells, what it reads and writes, its settings and its code.

    ``prelude`` is what runs before its cells (replayed imports, session setup, replayed
    definitions, parameter bindings); ``code`` is the whole step as one script (prelude,
    then each cell), with ``code_map`` saying where each cell starts in it.
    ``classification`` names its metrics cells' charts (name → ``confusion_matrix`` or
    ``roc_curve``), None when it has none.
    """

    name: str
    upstream: tuple[str, ...]
    reads: Mapping[str, str]
    parameters: tuple[str, ...]
    writes: tuple[str, ...]
    mutates: tuple[str, ...]
    cells: tuple[StepCell, ...]
    imports: tuple[str, ...]
    definitions: tuple[str, ...]
    setup: tuple[str, ...]
    settings: StepSettings
    requirements: tuple[str, ...]
    metrics: tuple[str, ...]
    dynamic: bool
    prelude: str
    code: str
    code_map: tuple[CodeSpan, ...]
    random_state: RandomStateUse | None = None
    files: StepFiles | None = None
    classification: Mapping[str, ClassificationKind] | None = None

    @property
    def charts(self) -> Mapping[str, ClassificationKind]:
        """Its classification metrics: name → kind (empty when it has none)."""
        return self.classification or _EMPTY

    @property
    def producers(self) -> tuple[str, ...]:
        """The steps whose values or files it reads, sorted."""
        files = self.files.reads.values() if self.files else ()
        return tuple(sorted(set(self.reads.values()) | {p for p in files if p}))

    @property
    def file_reads(self) -> Mapping[str, str | None]:
        """File pattern → the step that writes it (None: an external input)."""
        return self.files.reads if self.files else _EMPTY

    @property
    def file_writes(self) -> tuple[str, ...]:
        """Path patterns of the files it writes."""
        return self.files.writes if self.files else ()

    @property
    def last_cell(self) -> int:
        """The index of its last cell."""
        return max((cell.index for cell in self.cells), default=-1)

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        found: dict[str, Any] = {
            "name": self.name,
            "upstream": list(self.upstream),
            "reads": dict(self.reads),
            "parameters": list(self.parameters),
            "writes": list(self.writes),
            "mutates": list(self.mutates),
            "cells": [cell.to_dict() for cell in self.cells],
            "imports": list(self.imports),
            "definitions": list(self.definitions),
            "setup": list(self.setup),
            "settings": self.settings.to_dict(),
            "requirements": list(self.requirements),
            "metrics": list(self.metrics),
            "dynamic": self.dynamic,
        }
        if self.random_state:
            found["random_state"] = self.random_state
        if self.files is not None:
            found["files"] = {"reads": dict(self.files.reads), "writes": list(self.files.writes)}
        if self.classification:
            found["classification"] = dict(self.classification)
        found["prelude"] = self.prelude
        found["code"] = self.code
        found["code_map"] = [{"cell": s.cell, "start": s.start, "lines": s.lines}
                             for s in self.code_map]
        return found

    def digest(self) -> str:
        """sha256 of the step's JSON: what a step's slice names its notebook digest."""
        own = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(own).hexdigest()


@dataclass(frozen=True, slots=True)
class Edge:
    """Step ``source`` runs before ``target``: for these values (or files), or by ``after:``."""

    source: str
    target: str
    variables: tuple[str, ...]
    explicit: bool
    files: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        found: dict[str, Any] = {"from": self.source, "to": self.target,
                                 "variables": list(self.variables), "explicit": self.explicit}
        if self.files:
            found["files"] = list(self.files)
        return found


@dataclass(frozen=True, slots=True)
class NameOrigin:
    """What a name the notebook ends with holds, and where it comes from."""

    kind: NameKind
    step: str | None = None
    source: str | None = None
    reads: tuple[str, ...] | None = None
    cell: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Its JSON object (the schema's keys, in its order)."""
        found: dict[str, Any] = {"kind": self.kind}
        if self.step:
            found["step"] = self.step
        if self.source:
            found["source"] = self.source
        if self.reads:
            found["reads"] = list(self.reads)
        if self.cell is not None:
            found["cell"] = self.cell
        return found


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """A notebook as a pipeline: its steps, the edges between them, parameters and metrics.

    ``names`` and ``star_imports`` are None in a step's slice (:meth:`slice`).
    """

    notebook: NotebookRef
    pipeline: PipelineInfo
    split: Split
    parameters: tuple[Parameter, ...]
    metrics: tuple[Metric, ...]
    steps: tuple[StepSpec, ...]
    edges: tuple[Edge, ...]
    names: Mapping[str, NameOrigin] | None = None
    star_imports: tuple[str, ...] | None = None
    version: str = SPEC_VERSION
    _index: Mapping[str, StepSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", MappingProxyType({s.name: s for s in self.steps}))

    # -- looking things up ------------------------------------------------------------------

    @property
    def step_names(self) -> tuple[str, ...]:
        """The steps' names, in order."""
        return tuple(step.name for step in self.steps)

    def step(self, name: str) -> StepSpec:
        """The step called ``name``.

        Raises:
            CellpipeError: when there is none, listing the steps there are.
        """
        step = self._index.get(name)
        if step is not None:
            return step
        raise CellpipeError(f"the spec has no step {name!r}", step=name,
                            hint=f"steps are: {', '.join(self.step_names)}")

    def parameter(self, name: str) -> Parameter | None:
        """The parameter called ``name``, or None."""
        return next((p for p in self.parameters if p.name == name), None)

    @property
    def defaults(self) -> dict[str, Any]:
        """Each parameter's default value (as JSON data)."""
        return {p.name: p.default_copy for p in self.parameters}

    def consumers(self, step: str) -> dict[str, list[str]]:
        """Value → the steps that read it from ``step``, sorted.

        From the edges out of the step, which a step's slice keeps.
        """
        found: dict[str, list[str]] = {}
        for edge in self.edges:
            if edge.source == step:
                for variable in edge.variables:
                    found.setdefault(variable, []).append(edge.target)
        return {variable: sorted(set(readers)) for variable, readers in found.items()}

    def __iter__(self) -> Iterator[StepSpec]:
        return iter(self.steps)

    # -- a step's part ----------------------------------------------------------------------

    def slice(self, name: str) -> PipelineSpec:
        """The part of the spec step ``name`` needs, and nothing another step's change touches.

        What a step image holds and what a cluster task embeds: the notebook's digest is
        replaced by the step's own, parameters and metrics are those the step reads or
        reports, edges those into the step, and the notebook-wide imports, requirement
        overrides and cluster settings are left out (the image's pins and the manifest
        carry their effect). Edges out of the step stay: which later steps read each of its
        values decides what a value that cannot be saved means (an error naming the
        readers, or a note when nobody reads it).
        """
        step = self.step(name)
        info = self.pipeline
        return PipelineSpec(
            version=self.version,
            notebook=NotebookRef(self.notebook.path, self.notebook.name, step.digest()),
            pipeline=PipelineInfo(info.name, info.description, info.experiment,
                                  info.base_image, info.volumes),
            split=self.split,
            parameters=tuple(p for p in self.parameters if p.name in step.parameters),
            metrics=tuple(m for m in self.metrics if m.step == name),
            steps=(step,),
            edges=tuple(e for e in self.edges if name in (e.target, e.source)),
        )

    # -- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The spec's JSON document (keys in the schema's order)."""
        found: dict[str, Any] = {
            "version": self.version,
            "notebook": self.notebook.to_dict(),
            "pipeline": self.pipeline.to_dict(),
            "split": self.split,
            "parameters": [p.to_dict() for p in self.parameters],
            "metrics": [{"name": m.name, "step": m.step} for m in self.metrics],
            "steps": [s.to_dict() for s in self.steps],
            "edges": [e.to_dict() for e in self.edges],
        }
        if self.names is not None:
            found["names"] = {name: origin.to_dict() for name, origin in self.names.items()}
        if self.star_imports:
            found["star_imports"] = list(self.star_imports)
        return found

    def to_json(self, *, indent: int | None = 2) -> str:
        """Deterministic JSON (2-space indent, the schema's key order, final newline)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, validate: bool = True) -> PipelineSpec:
        """Read a spec document, checked against the shipped schema first.

        Raises:
            SpecError: naming the first offending field, e.g. ``steps[2].upstream``.
        """
        if validate:
            from cellpipe.core.spec.schema import validate_spec

            validate_spec(data)
        from cellpipe.core.spec.read import read_spec

        return read_spec(data)

    @classmethod
    def from_json(cls, text: str) -> PipelineSpec:
        """Read a spec from its JSON text (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            from cellpipe.errors import SpecError

            raise SpecError(f"pipeline spec is not JSON: {exc}",
                            hint="specs are written by cellpipe; regenerate it with "
                                 "`cellpipe compile`") from None
        return cls.from_dict(data)
