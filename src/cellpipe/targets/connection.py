"""What a target needs to reach its cluster: the keys of ``connection`` it reads.

A target class declares them as ``connection``, a tuple of :class:`ConnectionField`; the
CLI, the server (``POST /cellpipe/submit`` accepts exactly these fields, and refuses a
request without a required one) and the side panel (which renders an input for each, as
``GET /cellpipe/plugins`` lists them) all read that declaration instead of knowing targets
by name. A plugin target written before the declaration existed takes
:data:`DEFAULT_CONNECTION`, what every target was then given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cellpipe.errors import CellpipeError

__all__ = ["DEFAULT_CONNECTION", "ConnectionField", "connection_fields"]


@dataclass(frozen=True)
class ConnectionField:
    """One key of a target's ``connection``.

    Attributes:
        name: The key (``host``, ``namespace``, …), also the request field and CLI option.
        required: Whether submitting without it is refused before anything is compiled.
        description: What it is, for a form's tooltip or a CLI's help.
        example: A value to show as a placeholder.
    """

    name: str
    required: bool = False
    description: str = ""
    example: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the server answers (``Plugins.connection``)."""
        return {"name": self.name, "required": self.required,
                "description": self.description, "example": self.example}


DEFAULT_CONNECTION: tuple[ConnectionField, ...] = (
    ConnectionField("host", description="where the target's cluster is reached"),
    ConnectionField("experiment", description="what the run is filed under"),
    ConnectionField("namespace", description="the Kubernetes namespace of the run"),
)


def connection_fields(target: Any) -> tuple[ConnectionField, ...]:
    """The ``connection`` a target class (or instance) declares; the default if none.

    Raises:
        CellpipeError: The declaration is not a tuple of :class:`ConnectionField`.
    """
    declared = getattr(target, "connection", None)
    if declared is None:
        return DEFAULT_CONNECTION
    if not (isinstance(declared, tuple)
            and all(isinstance(field, ConnectionField) for field in declared)):
        name = getattr(target, "name", type(target).__name__)
        raise CellpipeError(
            f"target {name!r} declares connection = {declared!r}",
            hint="declare it as a tuple of cellpipe.targets.connection.ConnectionField")
    return declared
