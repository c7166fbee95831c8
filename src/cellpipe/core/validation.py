"""What the generated spec validator (``core/spec_validator.py``) needs at run time.

The validator is plain Python written by fastjsonschema's code generator; the few names its
code refers to live here, so the generated file holds only the schema's checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["JsonSchemaValueException", "JsonSchemaValuesException", "Patterns"]


class JsonSchemaValueException(ValueError):
    """A value the schema rejects: ``message`` says where and why."""

    def __init__(self, message: str, value: Any = None, name: str | None = None,
                 definition: Any = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.message, self.value, self.name, self.rule = message, value, name, rule


JsonSchemaValuesException = JsonSchemaValueException


class Patterns(dict[str, "re.Pattern[str]"]):
    """The schema's regular expressions, each compiled when first used."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        super().__init__()
        self.sources = dict(sources)

    def __missing__(self, key: str) -> re.Pattern[str]:
        self[key] = compiled = re.compile(self.sources[key])
        return compiled
