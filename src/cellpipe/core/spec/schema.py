"""The spec's JSON Schema (shipped beside the package) and the validator compiled from it."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from cellpipe.errors import SpecError

SCHEMA_FILE = "pipeline-spec.v1.schema.json"


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


