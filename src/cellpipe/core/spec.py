"""PipelineSpec: the versioned, deterministic JSON every engine and target consumes.

The same notebook gives byte-identical JSON: keys are written in a fixed order, lists are
in notebook order or sorted, nothing depends on time, paths outside the notebook, or
hash seeds. The spec is checked against the JSON Schema shipped beside this module
where it is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from cellpipe.core.analysis import imported_modules
from cellpipe.core.pipeline import NameSource, Pipeline, Step
from cellpipe.errors import SpecError

SPEC_VERSION = "1"
SCHEMA_FILE = "pipeline-spec.v1.schema.json"
# The runtime puts the run's parameter values (parsed JSON) under this global name.
PARAMETERS_GLOBAL = "__cellpipe_parameters__"


def build_spec(pipeline: Pipeline) -> dict[str, Any]:
    """Turn a linked pipeline into its spec (a JSON-ready dict), validated."""
    notebook = pipeline.notebook
    defaults = {p.name: p.default for p in pipeline.parameters}
    kale = notebook.metadata.get("kubeflow_notebook") or {}
    experiment = kale.get("experiment") or {}
    spec: dict[str, Any] = {
        "version": SPEC_VERSION,
        "notebook": {
            "path": notebook.path,
            "name": notebook.name,
            "sha256": _notebook_digest(pipeline),
        },
        "pipeline": {
            "name": str(kale.get("pipeline_name") or _dns(notebook.name)),
            "description": str(kale.get("pipeline_description") or ""),
            "experiment": str(experiment.get("name") or "") if isinstance(experiment, dict) else "",
            "base_image": str(kale.get("docker_image") or ""),
            "volumes": list(kale.get("volumes") or []),
            "requirements": _requirement_overrides(notebook.metadata),
            "imports": _notebook_imports(notebook.cells),
            "cluster": _cluster_settings(notebook.metadata),
        },
        "split": pipeline.split,
        "parameters": [
            {"name": p.name, "type": p.type, "default": p.default, "cell": p.cell, "line": p.line}
            for p in pipeline.parameters
        ],
        "metrics": [{"name": name, "step": step} for name, step in pipeline.metrics],
        "steps": [_step(step, defaults) for step in pipeline.steps],
        "edges": [
            {
                "from": e.source,
                "to": e.target,
                "variables": list(e.variables),
                "explicit": e.explicit,
                **({"files": list(e.files)} if e.files else {}),
            }
            for e in pipeline.edges
        ],
        "names": {name: _name_source(source) for name, source in pipeline.names.items()},
    }
    if pipeline.star_imports:  # names they bind are not known statically: replayed to load
        spec["star_imports"] = list(pipeline.star_imports)
    validate_spec(spec)
    return spec


def _files(step: Step) -> dict[str, Any]:
    """The files a step reads (with the step that writes them, or null: external) and writes."""
    return {"reads": dict(step.file_reads), "writes": list(step.file_writes)}


def _name_source(source: NameSource) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": source.kind}
    if source.step:
        found["step"] = source.step
    if source.source:
        found["source"] = source.source
    if source.reads:
        found["reads"] = list(source.reads)
    if source.cell is not None:
        found["cell"] = source.cell
    return found


def _step(step: Step, defaults: dict[str, Any]) -> dict[str, Any]:
    code, code_map = step_code(step, defaults)
    return {
        "name": step.name,
        "upstream": list(step.upstream),
        "reads": dict(step.reads),
        "parameters": list(step.parameters),
        "writes": list(step.writes),
        "mutates": list(step.mutates),
        "cells": [
            {
                "index": index,
                "id": cell_id,
                "source": source,
                "metrics": index in step.metrics_cells,
            }
            for (index, cell_id), source in zip(step.cells, step.sources, strict=True)
        ],
        "imports": list(step.imports),
        "definitions": list(step.definitions),
        "setup": list(step.setup),
        "settings": dict(step.settings),
        "requirements": list(step.requirements),
        "metrics": list(step.metrics),
        "dynamic": step.dynamic,
        **({"random_state": step.random_state} if step.random_state else {}),
        **({"files": _files(step)} if step.file_reads or step.file_writes else {}),
        "code": code,
        "code_map": code_map,
    }


def step_code(step: Step, defaults: dict[str, Any]) -> tuple[str, list[dict[str, int]]]:
    """Generate the step's standalone code and where each cell starts in it.

    Order: replayed imports, session setup, replayed definitions, parameter bindings,
    then the step's cells. Parameter values are never pasted into the code: they are read
    from the run's JSON data, with the notebook's own literal as the default.

    Returns:
        (code, code_map) where code_map lists ``{"cell", "start", "lines"}`` (1-based
        start line of each cell in the code), so errors can point back to the notebook.
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
    code = "\n\n".join(parts) + "\n\n"
    code_map = []
    line = code.count("\n") + 1
    for (index, _), source in zip(step.cells, step.sources, strict=True):
        header = f"# cell {index + 1}\n"
        body = source.rstrip("\n") + "\n"
        code += header
        line += 1
        code_map.append({"cell": index, "start": line, "lines": body.count("\n")})
        code += body + "\n"
        line += body.count("\n") + 1
    return code.rstrip("\n") + "\n", code_map


def step_slice(spec: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The part of ``spec`` that step ``name`` needs, and nothing another step's change touches.

    What a step image holds and what a cluster task embeds: the notebook's digest is replaced
    by the step's own, parameters and metrics are those the step reads or reports, edges
    those into the step, and the notebook-wide imports, requirement overrides and cluster
    settings are left out (the image's pins and the manifest carry their effect). Edges out
    of the step stay: which later steps read each of its values decides what a value that
    cannot be saved means (an error naming the readers, or a note when nobody reads it).
    """
    step = next(s for s in spec["steps"] if s["name"] == name)
    own = json.dumps(step, sort_keys=True).encode()
    return {
        "version": spec["version"],
        "notebook": {**spec["notebook"], "sha256": hashlib.sha256(own).hexdigest()},
        "pipeline": {k: v for k, v in spec["pipeline"].items()
                     if k not in ("imports", "requirements", "cluster")},
        "split": spec["split"],
        "parameters": [p for p in spec["parameters"] if p["name"] in step["parameters"]],
        "metrics": [m for m in spec["metrics"] if m["step"] == name],
        "steps": [step],
        "edges": [e for e in spec["edges"] if name in (e["to"], e["from"])],
    }


def spec_to_json(spec: dict[str, Any]) -> str:
    """Serialize a spec deterministically (2-space indent, insertion order, final newline)."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """Return the JSON Schema of the current spec version (shipped in the package)."""
    text = resources.files("cellpipe.core").joinpath("schema", SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def inlined_schema() -> dict[str, Any]:
    """The schema with its local ``$ref``s substituted (its definitions are not recursive)."""
    schema = load_schema()
    definitions = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/") and len(node) == 1:
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items() if k not in ("$defs", "$schema")}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


_VALIDATOR_HEADER = f'''"""Generated from {SCHEMA_FILE} by `python -m cellpipe.core.spec`.

The spec's JSON Schema compiled to plain Python once (fastjsonschema's code generator),
so checking a spec costs no schema library import and no compile at start-up;
tests/core/test_spec.py checks it is current.
"""
# ruff: noqa
# mypy: ignore-errors

from cellpipe.core.validation import JsonSchemaValueException, JsonSchemaValuesException
from cellpipe.core.validation import Patterns as _Patterns
'''


def validator_code() -> str:
    """The validator module's source: the schema compiled by fastjsonschema.

    Its draft 7 rules cover every keyword the schema uses.
    """
    import fastjsonschema

    code = fastjsonschema.compile_to_code(inlined_schema(), use_default=False,
                                          use_formats=False)
    lines = [line for line in code.splitlines()
             if not line.startswith(("from fastjsonschema import", "VERSION ="))]
    text = "\n".join(lines)
    # patterns compile when first used, not at import (a few cost 15 ms each)
    text = text.replace("REGEX_PATTERNS = {", "REGEX_PATTERNS = _Patterns({", 1)
    start = text.index("REGEX_PATTERNS = _Patterns({")
    end = text.index("\n}", start) + 2
    block = text[start:end].replace(": re.compile(", ": (") + ")"
    entry = next(line for line in lines if line.startswith("def validate"))
    entry = entry.removeprefix("def ").split("(", 1)[0]
    return (_VALIDATOR_HEADER + text[:start] + block + text[end:].rstrip()
            + f"\n\n\nvalidate = {entry}\n")


def validate_spec(spec: Any) -> None:
    """Check a spec against the schema (through the compiled validator module).

    Raises:
        SpecError: naming the first offending field, e.g. ``steps[2].upstream``.
    """
    from cellpipe.core import spec_validator
    from cellpipe.core.validation import JsonSchemaValueException

    try:
        spec_validator.validate(spec)  # type: ignore[no-untyped-call]
    except JsonSchemaValueException as error:
        name = str(error.name or "data")
        where = name.removeprefix("data")
        message = error.message.removeprefix(name).strip()
        raise SpecError(
            f"pipeline spec{where} is invalid: {message}",
            hint="specs are written by cellpipe; regenerate it with `cellpipe compile`",
        ) from None


def _notebook_imports(cells: Any) -> list[dict[str, Any]]:
    """Top-level modules every code cell imports, steps or not, in notebook order.

    Run top to bottom, a step finds every module imported above it already loaded (a
    library's optional import of pandas works because the notebook imported pandas); step
    images are built to hold the same.
    """
    found: list[dict[str, Any]] = []
    for cell in cells:
        if cell.cell_type != "code" or "import" not in cell.source:
            continue
        modules = sorted({module for module, _ in imported_modules(cell.source)})
        found.extend({"cell": cell.index, "module": m} for m in modules)
    return found


def _cluster_settings(metadata: Any) -> dict[str, Any]:
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


if __name__ == "__main__":  # regenerate the compiled validator after changing the schema
    from pathlib import Path

    target = Path(__file__).with_name("spec_validator.py")
    target.write_text(validator_code(), encoding="utf-8")
    print(f"wrote {target}")
