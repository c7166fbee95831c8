"""Building the PipelineSpec from a linked pipeline.

The same notebook gives a byte-identical spec: keys are written in a fixed order, lists
are in notebook order or sorted, nothing depends on time, paths outside the notebook, or
hash seeds. The spec is checked against the JSON Schema shipped in the package once,
where it is built.
"""

from __future__ import annotations

import hashlib
import json
from types import MappingProxyType
from typing import Any, cast

from cellpipe.core.analysis import imported_modules
from cellpipe.core.kinds import NameKind, RandomStateUse
from cellpipe.core.pipeline import NameSource, Pipeline, Step
from cellpipe.core.spec.model import (
    CodeSpan,
    Edge,
    ImportedModule,
    Metric,
    NameOrigin,
    NotebookRef,
    Parameter,
    PipelineInfo,
    PipelineSpec,
    StepCell,
    StepFiles,
    StepSettings,
    StepSpec,
    freeze,
)
from cellpipe.core.spec.schema import validate_spec

# The runtime puts the run's parameter values (parsed JSON) under this global name.
PARAMETERS_GLOBAL = "__cellpipe_parameters__"


def build_spec(pipeline: Pipeline) -> PipelineSpec:
    """Turn a linked pipeline into its spec, checked against the schema."""
    notebook = pipeline.notebook
    defaults = {p.name: p.default for p in pipeline.parameters}
    kale = notebook.metadata.get("kubeflow_notebook") or {}
    experiment = kale.get("experiment") or {}
    spec = PipelineSpec(
        notebook=NotebookRef(notebook.path, notebook.name, _notebook_digest(pipeline)),
        pipeline=PipelineInfo(
            name=str(kale.get("pipeline_name") or _dns(notebook.name)),
            description=str(kale.get("pipeline_description") or ""),
            experiment=(str(experiment.get("name") or "")
                        if isinstance(experiment, dict) else ""),
            base_image=str(kale.get("docker_image") or ""),
            volumes=freeze(list(kale.get("volumes") or [])),
            requirements=tuple(_requirement_overrides(notebook.metadata)),
            imports=tuple(ImportedModule(cell, module)
                          for cell, module in _notebook_imports(notebook.cells)),
            cluster=freeze(cluster_metadata(notebook.metadata)),
        ),
        split=pipeline.split,
        parameters=tuple(Parameter(p.name, p.type, freeze(p.default), p.cell, p.line)
                         for p in pipeline.parameters),
        metrics=tuple(Metric(name, step) for name, step in pipeline.metrics),
        steps=tuple(_step(step, defaults) for step in pipeline.steps),
        edges=tuple(Edge(e.source, e.target, tuple(e.variables), e.explicit,
                         tuple(e.files) or None) for e in pipeline.edges),
        names=MappingProxyType({name: _origin(source)
                                for name, source in pipeline.names.items()}),
        # names they bind are not known statically: replayed to load
        star_imports=tuple(pipeline.star_imports) or None,
    )
    validate_spec(spec.to_dict())
    return spec


def _origin(source: NameSource) -> NameOrigin:
    return NameOrigin(kind=cast(NameKind, source.kind), step=source.step or None,
                      source=source.source or None, reads=tuple(source.reads) or None,
                      cell=source.cell)


def _step(step: Step, defaults: dict[str, Any]) -> StepSpec:
    prelude = step_prelude(step, defaults)
    code, code_map = step_code(step, prelude)
    files = (StepFiles(MappingProxyType(dict(step.file_reads)), tuple(step.file_writes))
             if step.file_reads or step.file_writes else None)
    settings = dict(step.settings)
    inputs, model = settings.pop("inputs", None), settings.pop("model", None)
    return StepSpec(
        name=step.name,
        upstream=tuple(step.upstream),
        reads=MappingProxyType(dict(step.reads)),
        parameters=tuple(step.parameters),
        writes=tuple(step.writes),
        mutates=tuple(step.mutates),
        cells=tuple(StepCell(index, cell_id, source, index in step.metrics_cells)
                    for (index, cell_id), source in zip(step.cells, step.sources, strict=True)),
        imports=tuple(step.imports),
        definitions=tuple(step.definitions),
        setup=tuple(step.setup),
        settings=StepSettings(**settings,
                              inputs=tuple(inputs) if inputs is not None else None,
                              model=tuple(model) if model is not None else None),
        requirements=tuple(step.requirements),
        metrics=tuple(step.metrics),
        dynamic=step.dynamic,
        prelude=prelude,
        code=code,
        code_map=code_map,
        random_state=cast("RandomStateUse | None", step.random_state or None),
        files=files,
        classification=MappingProxyType(dict(step.classification)) if step.classification
        else None,
    )


def step_prelude(step: Step, defaults: dict[str, Any]) -> str:
    """What runs before a step's cells.

    In this order: replayed imports, session setup, replayed definitions, parameter
    bindings. Parameter values are never pasted into the code: they are read from the run's JSON
    data, with the notebook's own literal as the default.
    """
    parts: list[str] = [f"# cellpipe step {step.name!r}: generated from the notebook; do not edit"]
    if step.imports:
        parts.append("# imports replayed from earlier cells\n" + "\n".join(step.imports))
    if step.setup:
        parts.append("# session setup replayed from earlier cells\n" + "\n".join(step.setup))
    if step.definitions:
        parts.append("# definitions replayed from earlier cells\n" + "\n\n".join(step.definitions))
    if step.parameters:
        lines = [
            "# parameters: the run's values (JSON data) or the notebook's defaults",
            f"_cellpipe_values = globals().get({PARAMETERS_GLOBAL!r}, {{}})",
        ]
        lines += [
            f"{name} = _cellpipe_values.get({name!r}, {defaults[name]!r})"
            for name in step.parameters
            if name in defaults
        ]
        lines.append("del _cellpipe_values")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def step_code(step: Step, prelude: str) -> tuple[str, tuple[CodeSpan, ...]]:
    """The step's standalone code (its prelude, then each cell) and where each cell starts.

    Returns:
        (code, code_map): code_map gives each cell's 1-based start line in the code and
        its number of lines, so errors can point back to the notebook.
    """
    code = prelude + "\n\n"
    code_map = []
    line = code.count("\n") + 1
    for (index, _), source in zip(step.cells, step.sources, strict=True):
        header = f"# cell {index + 1}\n"
        body = source.rstrip("\n") + "\n"
        code += header
        line += 1
        code_map.append(CodeSpan(index, line, body.count("\n")))
        code += body + "\n"
        line += body.count("\n") + 1
    return code.rstrip("\n") + "\n", tuple(code_map)


def spec_to_json(spec: PipelineSpec) -> str:
    """Serialize a spec deterministically (2-space indent, the schema's order, final newline)."""
    return spec.to_json()


def _notebook_imports(cells: Any) -> list[tuple[int, str]]:
    """Top-level modules every code cell imports, steps or not, in notebook order.

    Run top to bottom, a step finds every module imported above it already loaded (a
    library's optional import of pandas works because the notebook imported pandas); step
    images are built to hold the same.
    """
    found: list[tuple[int, str]] = []
    for cell in cells:
        if cell.cell_type != "code" or "import" not in cell.source:
            continue
        modules = sorted({module for module, _ in imported_modules(cell.source)})
        found.extend((cell.index, m) for m in modules)
    return found


def cluster_metadata(metadata: Any) -> dict[str, Any]:
    """``metadata.cellpipe.cluster``: how the cluster targets run the pipeline (checked there)."""
    section = metadata.get("cellpipe") if isinstance(metadata, dict) else None
    cluster = section.get("cluster") if isinstance(section, dict) else None
    return json.loads(json.dumps(cluster, sort_keys=True)) if isinstance(cluster, dict) else {}


def _requirement_overrides(metadata: Any) -> list[str]:
    """Requirement lines from ``metadata.cellpipe.requirements`` (a list or one string).

    They win over the pins found from the steps' imports when images are built.
    """
    section = metadata.get("cellpipe") if isinstance(metadata, dict) else None
    lines = section.get("requirements") if isinstance(section, dict) else None
    if isinstance(lines, str):
        lines = lines.splitlines()
    if not isinstance(lines, list):
        return []
    return [str(line).strip() for line in lines if str(line).strip()]


def _notebook_digest(pipeline: Pipeline) -> str:
    """Digest of the cells that matter (source, type, tags): stable across saves and outputs."""
    digest = hashlib.sha256()
    for cell in pipeline.notebook.cells:
        digest.update(json.dumps([cell.cell_type, cell.source, list(cell.tags)]).encode())
    return digest.hexdigest()


def _dns(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "pipeline"
