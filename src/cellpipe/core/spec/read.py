"""Reading a (validated) spec document into the typed objects of :mod:`.model`."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, cast

from cellpipe.core.kinds import NameKind, RandomStateUse, Split
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

__all__ = ["read_spec"]


def read_spec(data: Mapping[str, Any]) -> PipelineSpec:
    """The objects of a spec document that already passed the schema."""
    info = data["pipeline"]
    names = data.get("names")
    return PipelineSpec(
        version=str(data["version"]),
        notebook=NotebookRef(**data["notebook"]),
        pipeline=PipelineInfo(
            name=info["name"], description=info["description"],
            experiment=info["experiment"], base_image=info["base_image"],
            volumes=freeze(info["volumes"]),
            requirements=tuple(info["requirements"]) if "requirements" in info else None,
            imports=(tuple(ImportedModule(i["cell"], i["module"]) for i in info["imports"])
                     if "imports" in info else None),
            cluster=freeze(info["cluster"]) if "cluster" in info else None,
        ),
        split=cast(Split, data["split"]),
        parameters=tuple(Parameter.from_dict(p) for p in data["parameters"]),
        metrics=tuple(Metric(m["name"], m["step"]) for m in data["metrics"]),
        steps=tuple(_read_step(s) for s in data["steps"]),
        edges=tuple(Edge(e["from"], e["to"], tuple(e["variables"]), e["explicit"],
                         tuple(e["files"]) if e.get("files") else None)
                    for e in data["edges"]),
        names=(MappingProxyType({name: _read_origin(o) for name, o in names.items()})
               if names is not None else None),
        star_imports=tuple(data["star_imports"]) if data.get("star_imports") else None,
    )


def _read_origin(data: Mapping[str, Any]) -> NameOrigin:
    return NameOrigin(kind=cast(NameKind, data["kind"]), step=data.get("step"),
                      source=data.get("source"),
                      reads=tuple(data["reads"]) if "reads" in data else None,
                      cell=data.get("cell"))


def _read_settings(data: Mapping[str, Any]) -> StepSettings:
    inputs, model = data.get("inputs"), data.get("model")
    return StepSettings(image=data.get("image"), gpu=data.get("gpu"), cpu=data.get("cpu"),
                        memory=data.get("memory"), retries=data.get("retries"),
                        timeout=data.get("timeout"), cache=data.get("cache"),
                        inputs=tuple(inputs) if inputs is not None else None,
                        model=tuple(model) if model is not None else None)


def _read_step(data: Mapping[str, Any]) -> StepSpec:
    code_map = tuple(CodeSpan(c["cell"], c["start"], c["lines"]) for c in data["code_map"])
    files = data.get("files")
    prelude = data.get("prelude")
    if prelude is None:  # a spec written before the prelude had its own field
        prelude = _prelude_of(data["code"], code_map)
    return StepSpec(
        name=data["name"],
        upstream=tuple(data["upstream"]),
        reads=MappingProxyType(dict(data["reads"])),
        parameters=tuple(data["parameters"]),
        writes=tuple(data["writes"]),
        mutates=tuple(data["mutates"]),
        cells=tuple(StepCell(c["index"], c["id"], c["source"], c["metrics"])
                    for c in data["cells"]),
        imports=tuple(data["imports"]),
        definitions=tuple(data["definitions"]),
        setup=tuple(data["setup"]),
        settings=_read_settings(data["settings"]),
        requirements=tuple(data["requirements"]),
        metrics=tuple(data["metrics"]),
        dynamic=data["dynamic"],
        prelude=prelude,
        code=data["code"],
        code_map=code_map,
        random_state=cast("RandomStateUse | None", data.get("random_state")),
        files=(StepFiles(MappingProxyType(dict(files["reads"])), tuple(files["writes"]))
               if files is not None else None),
        classification=(MappingProxyType(dict(data["classification"]))
                        if data.get("classification") else None),
    )


def _prelude_of(code: str, code_map: tuple[CodeSpan, ...]) -> str:
    """The prelude of a step's code from before ``prelude`` was written on its own."""
    if not code_map:
        return code
    return "\n".join(code.split("\n")[: code_map[0].start - 2]).rstrip("\n")
