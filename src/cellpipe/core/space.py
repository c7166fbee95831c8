"""Search spaces for tuning: ``lr=loguniform(1e-4, 1e-1)``, ``depth=int(2, 8)``, ``k=choice(a, b)``.

One syntax for every place a space is written (``cellpipe tune -p``, a YAML file,
``metadata.cellpipe.tune.space``, ``cellpipe compile --target katib -p``) and one meaning
wherever it is searched: Optuna here (:meth:`Dimension.suggest`), Katib's feasible spaces
on a cluster. Every dimension names a parameter of the notebook's parameters cell, and its
bounds and choices are converted to that parameter's declared type, so a space that cannot
feed the notebook is refused before any trial runs.

The forms:

=============================  =====================================================
``uniform(LOW, HIGH)``         a float in [LOW, HIGH] (``float(LOW, HIGH)`` too)
``loguniform(LOW, HIGH)``      a float, sampled on a log scale (LOW > 0)
``int(LOW, HIGH)``             an int in [LOW, HIGH], both ends included
``int(LOW, HIGH, STEP)``       … every STEP-th value from LOW
``logint(LOW, HIGH)``          an int, sampled on a log scale (LOW > 0)
``choice(A, B, …)``            one of the values, each converted to the parameter's type
=============================  =====================================================

A YAML or metadata space maps names to these strings, or to a list (a ``choice``).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cellpipe.core.spec import Parameter, PipelineSpec
from cellpipe.errors import CellpipeError

__all__ = ["FORMS", "Dimension", "SpaceError", "parse_dimension", "parse_space"]

DimensionKind = Literal["float", "int", "categorical"]

FORMS = ("uniform", "float", "loguniform", "int", "logint", "choice")
_FORM = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.DOTALL)
_HINT = ('write NAME=uniform(LOW, HIGH), loguniform(LOW, HIGH), int(LOW, HIGH[, STEP]), '
         'logint(LOW, HIGH) or choice(A, B, ...)')


class SpaceError(CellpipeError):
    """A search space that cannot be searched, or cannot feed the notebook's parameters."""


@dataclass(frozen=True)
class Dimension:
    """One parameter's range.

    Attributes:
        name: The parameter it sets.
        kind: ``float``, ``int`` or ``categorical``.
        low: The smallest value (numbers only).
        high: The largest value, included (numbers only).
        log: Sampled on a log scale.
        step: For ints, the spacing of the values (1 when not given); None for floats.
        choices: The values of a ``categorical`` dimension, typed as the parameter.
        text: The dimension as written (``loguniform(1e-4, 1e-1)``), for messages.
    """

    name: str
    kind: DimensionKind
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: int | None = None
    choices: tuple[Any, ...] = ()
    text: str = ""

    def suggest(self, trial: Any) -> Any:
        """Draw this dimension's value from an Optuna ``trial``."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1,
                                     log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def grid(self) -> list[Any]:
        """Every value, for a grid search; a float range has none.

        Raises:
            SpaceError: a ``uniform``/``loguniform`` range, which has no finite grid.
        """
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            assert self.low is not None and self.high is not None
            if self.log:
                raise SpaceError(f"{self.name}={self.text} is sampled on a log scale; a grid "
                                 "search needs a list of values", variable=self.name,
                                 hint=f"write {self.name}=int(LOW, HIGH, STEP) or choice(...)")
            return list(range(int(self.low), int(self.high) + 1, self.step or 1))
        raise SpaceError(f"{self.name}={self.text} is a continuous range; a grid search needs "
                         "a finite list of values", variable=self.name,
                         hint=f"write {self.name}=choice(A, B, ...) for --sampler grid")

    def to_dict(self) -> dict[str, Any]:
        """The dimension as plain data (JSON)."""
        found: dict[str, Any] = {"name": self.name, "kind": self.kind, "text": self.text}
        if self.kind == "categorical":
            found["choices"] = list(self.choices)
        else:
            found.update(low=self.low, high=self.high, log=self.log)
            if self.step is not None:
                found["step"] = self.step
        return found


def parse_dimension(name: str, text: Any, parameters: PipelineSpec | Iterable[Parameter]
                    ) -> Dimension:
    """One dimension from its text (``int(2, 8)``) or a list (a choice).

    Raises:
        SpaceError: the form is unknown, its bounds are not numbers or are out of order, a
            log range starts at or below zero, or the values do not fit the parameter.
    """
    parameter = _parameter(parameters, name)
    if isinstance(text, (list, tuple)):
        return _choice(parameter, list(text), f"choice({', '.join(map(str, text))})")
    if not isinstance(text, str):
        raise SpaceError(f"the search space of {name!r} is {text!r}", variable=name, hint=_HINT)
    match = _FORM.match(text)
    if match is None:
        raise SpaceError(f"cannot read the search space {name}={text}", variable=name,
                         hint=_HINT)
    form, inside = match.group(1).lower(), match.group(2)
    written = f"{form}({inside.strip()})"
    args = _split(inside)
    if form == "choice":
        if not args:
            raise SpaceError(f"{name}={text} has no choices", variable=name, hint=_HINT)
        return _choice(parameter, [_literal(a) for a in args], written)
    if form not in FORMS:
        from cellpipe.core.diagnostics import did_you_mean

        raise SpaceError(f"unknown search space {form!r} in {name}={text}", variable=name,
                         hint=did_you_mean(form, set(FORMS)) or _HINT)
    integer = form in ("int", "logint")
    log = form in ("loguniform", "logint")
    if len(args) not in ((2, 3) if form == "int" else (2,)):
        wanted = "LOW, HIGH[, STEP]" if form == "int" else "LOW, HIGH"
        raise SpaceError(f"{name}={text} needs {wanted}", variable=name, hint=_HINT)
    numbers = [_number(a, name, text, integer) for a in args]
    low, high = numbers[0], numbers[1]
    if not low < high:
        raise SpaceError(f"{name}={text}: LOW must be below HIGH", variable=name,
                         hint=f"write {form}({min(low, high)}, {max(low, high)})"
                         if low != high else f"a single value is -p {name}={low} on run")
    if log and low <= 0:
        raise SpaceError(f"{name}={text}: a log scale needs LOW above 0", variable=name,
                         hint=f"write uniform({low}, {high}), or a positive LOW")
    step = None
    if integer:
        step = int(numbers[2]) if len(numbers) == 3 else 1
        if step <= 0:
            raise SpaceError(f"{name}={text}: STEP must be positive", variable=name, hint=_HINT)
    _fits(parameter, "int" if integer else "float", text)
    return Dimension(name=name, kind="int" if integer else "float", low=low, high=high,
                     log=log, step=step, text=written)


def parse_space(space: Mapping[str, Any] | Iterable[str],
                parameters: PipelineSpec | Iterable[Parameter]) -> list[Dimension]:
    """A whole space: a mapping of names to forms, or ``NAME=FORM`` strings (``-p``).

    Raises:
        SpaceError: a dimension cannot be read (see :func:`parse_dimension`), a name is
            given twice, or the space is empty.
    """
    declared = (parameters.parameters if isinstance(parameters, PipelineSpec)
                else tuple(parameters))
    items: list[tuple[str, Any]] = []
    if isinstance(space, Mapping):
        items = [(str(k), v) for k, v in space.items()]
    else:
        for entry in space:
            name, sep, text = entry.partition("=")
            if not sep or not name.strip():
                raise SpaceError(f"cannot read {entry!r} as NAME=SPACE", hint=_HINT)
            items.append((name.strip(), text.strip()))
    if not items:
        names = ", ".join(p.name for p in declared) or "none"
        raise SpaceError("the search space is empty",
                         hint=f"give -p NAME=SPACE for the parameters to tune ({names})")
    seen: set[str] = set()
    found = []
    for name, text in items:
        if name in seen:
            raise SpaceError(f"parameter {name!r} is given twice in the search space",
                             variable=name, hint="keep one range per parameter")
        seen.add(name)
        found.append(parse_dimension(name, text, declared))
    return found


def _parameter(parameters: PipelineSpec | Iterable[Parameter], name: str) -> Parameter:
    declared = (parameters.parameters if isinstance(parameters, PipelineSpec)
                else tuple(parameters))
    for parameter in declared:
        if parameter.name == name:
            return parameter
    from cellpipe.core.diagnostics import did_you_mean

    names = [p.name for p in declared]
    raise SpaceError(f"the notebook has no parameter {name!r} to tune", variable=name,
                     hint=did_you_mean(name, set(names))
                     or f"its parameters are: {', '.join(names) or 'none'} (the cell tagged "
                     "parameters)")


def _fits(parameter: Parameter, kind: str, text: str) -> None:
    declared = parameter.type
    if kind == "float" and declared == "int":
        raise SpaceError(f"parameter {parameter.name!r} is an int; {text} draws floats",
                         variable=parameter.name,
                         hint=f"write {parameter.name}=int(LOW, HIGH) (or logint)")
    if declared not in ("int", "float", "none") and not (kind == "int" and declared == "int"):
        raise SpaceError(f"parameter {parameter.name!r} is a {declared}; {text} draws numbers",
                         variable=parameter.name,
                         hint=f"write {parameter.name}=choice(...) with {declared} values")


def _choice(parameter: Parameter, values: list[Any], written: str) -> Dimension:
    from cellpipe.core.values import ParameterError, convert_parameter

    converted = []
    for value in values:
        try:
            converted.append(convert_parameter([parameter], parameter.name, value))
        except ParameterError as exc:
            raise SpaceError(f"{parameter.name}={written}: {exc.message}",
                             variable=parameter.name, hint=exc.hint) from None
    if len({repr(v) for v in converted}) != len(converted):
        raise SpaceError(f"{parameter.name}={written} names a value twice",
                         variable=parameter.name, hint="give each choice once")
    if not all(v is None or isinstance(v, (str, int, float, bool)) for v in converted):
        raise SpaceError(f"{parameter.name}={written}: a choice is a number, a string, a bool "
                         "or None", variable=parameter.name,
                         hint="tune lists or dicts through a string parameter the notebook reads")
    return Dimension(name=parameter.name, kind="categorical", choices=tuple(converted),
                     text=written)


def _split(inside: str) -> list[str]:
    parts = [p.strip() for p in inside.split(",")]
    return [p for p in parts if p] if any(parts) else []


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string (choice(rbf, linear))


def _number(text: str, name: str, whole: str, integer: bool) -> float | int:
    value = _literal(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpaceError(f"{name}={whole}: {text!r} is not a number", variable=name, hint=_HINT)
    if integer:
        if float(value) != int(value):
            raise SpaceError(f"{name}={whole}: {text!r} is not a whole number", variable=name,
                             hint=_HINT)
        return int(value)
    return float(value)
