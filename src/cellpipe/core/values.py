"""Parameter values given as text (``-p``, a cluster's arguments) or Python, typed as declared."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cellpipe.core.spec import Parameter, PipelineSpec
from cellpipe.errors import CellpipeError


class ParameterError(CellpipeError):
    """A parameter value given on the command line or to ``run`` does not fit."""


_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


def convert_parameter(
    parameters: PipelineSpec | Iterable[Parameter], name: str, value: Any
) -> Any:
    """Convert ``value`` (a string from ``-p``, or a Python value) to the declared type.

    Args:
        parameters: The spec, or its parameters, that declare ``name``.
        name: The parameter's name.
        value: Text to parse as the declared type, or a Python value to check.
    """
    declared_parameters = (parameters.parameters if isinstance(parameters, PipelineSpec)
                           else tuple(parameters))
    parameter = next((p for p in declared_parameters if p.name == name), None)
    if parameter is None:
        from cellpipe.core.diagnostics import did_you_mean

        declared = [p.name for p in declared_parameters]
        known = ", ".join(declared) or "none"
        raise ParameterError(
            f"the notebook has no parameter {name!r}", variable=name,
            hint=did_you_mean(name, set(declared)) or f"its parameters are: {known}",
        )
    kind = parameter.type
    if isinstance(value, str) and kind != "str":
        value = _parse_text(value, kind, name)
    if kind == "none":
        return value  # declared None: any JSON value is accepted
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = _TYPE_NAMES[kind]
    if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
        raise ParameterError(
            f"parameter {name!r} is a {kind}, but {value!r} is a {type(value).__name__}",
            variable=name, hint=f"give a {kind}, like the notebook's {parameter.default_copy!r}",
        )
    return value


def _parse_text(text: str, kind: str, name: str) -> Any:
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ParameterError(f"parameter {name!r} is a bool; {text!r} is not",
                             variable=name, hint="use true or false")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ParameterError(f"parameter {name!r} is an int; {text!r} is not", variable=name,
                                 hint=f"give a whole number, e.g. -p {name}=3") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ParameterError(f"parameter {name!r} is a float; {text!r} is not",
                                 variable=name, hint=f"give a number, e.g. -p {name}=0.1") from None
    import json

    try:
        return json.loads(text)  # what cluster engines pass
    except ValueError:
        pass
    try:
        import yaml  # not in step images; the command line has it
    except ImportError:
        raise ParameterError(f"parameter {name!r}: {text!r} is not a JSON {kind}",
                             variable=name) from None
    try:
        return yaml.safe_load(text)  # lists and dicts in YAML flow syntax: [a, b]
    except Exception as exc:
        raise ParameterError(f"parameter {name!r}: cannot read {text!r} as a {kind}: {exc}",
                             variable=name) from exc
