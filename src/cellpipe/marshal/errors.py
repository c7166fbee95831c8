"""Errors of the marshal layer: a value that cannot cross a step boundary, or a bad artifact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cellpipe.errors import CellpipeError


class MarshalError(CellpipeError):
    """A value cannot be saved or loaded between steps.

    Besides the common fields (``step`` is the producing step, ``variable`` the name,
    ``path`` the artifact file), it carries the value's qualified type name and the steps
    that consume it, so the message can say who is affected.

    Attributes:
        type_name: Qualified type name of the value, if known.
        consumers: Steps that read the value, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        type_name: str | None = None,
        consumers: Sequence[str] = (),
        **fields: Any,
    ) -> None:
        self.type_name = type_name
        self.consumers = tuple(consumers)
        super().__init__(message, **fields)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "type_name": self.type_name, "consumers": self.consumers}


class ArtifactNotFoundError(MarshalError):
    """No artifact was saved under this step and name (no sidecar, or its data file is gone)."""


class ArtifactCorruptedError(MarshalError):
    """An artifact's data does not match its sidecar (size or digest), or the sidecar is bad."""
