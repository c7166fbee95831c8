"""The parameters cell: which of its statements are parameters, their types and values.

A literal assignment of a JSON-able value (papermill's convention) is a parameter; any
other statement is code that runs in place. Values travel as JSON, so they must be JSON.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from cellpipe.core.diagnostics import Diagnostic
from cellpipe.core.kinds import ParameterType


@dataclass(frozen=True)
class Parameter:
    """A hyperparameter from the parameters cell.

    Attributes:
        name: Variable name.
        type: ``int``, ``float``, ``str``, ``bool``, ``list``, ``dict`` or ``none``.
        default: The notebook's value (JSON-compatible).
        cell: Index of the parameters cell.
        line: Line of the assignment.
    """

    name: str
    type: ParameterType
    default: Any
    cell: int
    line: int


PARAMETER_TYPES: dict[type, ParameterType] = {
    int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "dict",
    type(None): "none"}
_ANNOTATED: dict[str, ParameterType] = {
    "int": "int", "float": "float", "str": "str", "bool": "bool", "list": "list",
    "dict": "dict", "None": "none"}


def parameters_of(
    stmt: ast.stmt, cell: int, line: int, diagnostics: list[Diagnostic]
) -> list[Parameter] | None:
    """Read one statement of the parameters cell as parameters.

    Returns None for a statement that is not a literal assignment of a parameter type
    (it is code: papermill runs it in place), and ``[]`` after reporting an assignment
    whose value contradicts its annotation.
    """
    annotation: str | None = None
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return None  # a docstring or a bare string comment
    if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
        names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        value_node = stmt.value
    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
        names = [stmt.target.id]
        value_node = stmt.value
        annotation = ast.unparse(stmt.annotation)
    else:
        return None
    try:
        value = ast.literal_eval(value_node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None  # a derived value: code
    if json_problem(value):
        return None  # a tuple, a set, a dict with int keys: code, not a parameter type
    kind = PARAMETER_TYPES[type(value)]
    if annotation is not None:
        wanted = _ANNOTATED.get(annotation.split("[")[0])
        if wanted == "float" and kind == "int":
            value, kind = float(value), "float"
        elif wanted is not None and wanted != kind:
            diagnostics.append(
                Diagnostic(
                    "error", "CP202",
                    f"parameter {names[0]!r} is annotated {annotation} but its value is a {kind}",
                    cell=cell, line=line, variable=names[0],
                    hint="make the value match the annotation",
                )
            )
            return []
    return [Parameter(name, kind, value, cell, line) for name in names]


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot travel as a JSON parameter value (None when it can)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return None
    if isinstance(value, float):
        return None if value == value and abs(value) != float("inf") else "NaN/inf is not JSON"
    if isinstance(value, list):
        return next((p for p in map(json_problem, value) if p), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "dict keys must be strings"
        return next((p for p in map(json_problem, value.values()) if p), None)
    return f"{type(value).__name__} values are not supported (parameters travel as JSON)"
