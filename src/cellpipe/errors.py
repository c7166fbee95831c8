"""The one error tree of cellpipe.

Every error says what went wrong, where (notebook, cell, line, step, variable) and how to
fix it. Errors survive pickling, so a step process can hand one to its parent intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar


class CellpipeError(Exception):
    """Base of every error cellpipe raises on purpose.

    Attributes:
        message: What went wrong, in one sentence.
        path: The notebook (or other file) concerned, if any.
        cell: 0-based index of the cell concerned, if any.
        line: 1-based line inside that cell, if any.
        step: The step concerned, if any.
        variable: The variable concerned, if any.
        hint: How to fix it.
        http_status: How the server extension answers a request that raised it: 4xx when
            the request (its notebook, its fields) is at fault, 5xx when cellpipe or what it
            needs around it is.
    """

    http_status: ClassVar[int] = 400

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        cell: int | None = None,
        line: int | None = None,
        step: str | None = None,
        variable: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.cell = cell
        self.line = line
        self.step = step
        self.variable = variable
        self.hint = hint
        super().__init__(str(self))

    def _fields(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "cell": self.cell,
            "line": self.line,
            "step": self.step,
            "variable": self.variable,
            "hint": self.hint,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only fields are not restored by Exception's default reduce.
        return (_rebuild, (type(self), self.message, self._fields()))

    def to_dict(self, kind: str | None = None) -> dict[str, Any]:
        """The error as JSON data: what a step's ``result.json`` and run records hold.

        ``kind`` says whose fault it is (``user``: the step's own code or values;
        ``infrastructure``: cellpipe or its surroundings). :meth:`from_dict` reads it back.
        """
        data: dict[str, Any] = {"kind": kind} if kind else {}
        data.update({
            "message": self.message,
            "cell": self.cell,
            "line": self.line,
            "variable": self.variable,
            "hint": self.hint,
            "step": self.step,
            "path": self.path,
            "type_name": getattr(self, "type_name", None),
            "consumers": list(getattr(self, "consumers", ())),
            "type": type(self).__name__,
        })
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellpipeError:
        """The error :meth:`to_dict` wrote, as the class it names (or ``CellpipeError``)."""
        found: type[CellpipeError] = CellpipeError
        todo = [CellpipeError]
        while todo:
            klass = todo.pop()
            if klass.__name__ == data.get("type"):
                found = klass
                break
            todo.extend(klass.__subclasses__())
        fields = {k: data.get(k) for k in ("path", "cell", "line", "step", "variable", "hint")}
        try:
            error = found(str(data.get("message", "")), **fields)
        except TypeError:  # a subclass with its own signature
            error = CellpipeError(str(data.get("message", "")), **fields)
        return error

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.cell is not None:
            where.append(f"cell {self.cell + 1}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.step:
            where.append(f"step {self.step!r}")
        text = f"{': '.join([', '.join(where)]) + ': ' if where else ''}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


def _rebuild(cls: type[CellpipeError], message: str, fields: dict[str, Any]) -> CellpipeError:
    return cls(message, **fields)


class NotebookReadError(CellpipeError):
    """The file is missing, not JSON, not a notebook, or not a Python notebook."""


class AnnotationError(CellpipeError):
    """A tag or ``%%step`` header cannot be understood."""


class PipelineError(CellpipeError):
    """The notebook cannot become a sound pipeline; ``diagnostics`` says why."""

    http_status = 422

    def __init__(self, message: str, diagnostics: list[Any] | None = None, **fields: Any) -> None:
        self.diagnostics = list(diagnostics or [])
        super().__init__(message, **fields)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_pipeline, (self.message, self.diagnostics, self._fields()))

    def to_dict(self, kind: str | None = None) -> dict[str, Any]:
        """As :meth:`CellpipeError.to_dict`, plus ``diagnostics`` (each finding's JSON)."""
        data = super().to_dict(kind)
        data["diagnostics"] = [d.to_dict() if callable(getattr(d, "to_dict", None))
                               else {"message": str(d)} for d in self.diagnostics]
        return data


def _rebuild_pipeline(
    message: str, diagnostics: list[Any], fields: dict[str, Any]
) -> PipelineError:
    return PipelineError(message, diagnostics, **fields)


class SpecError(CellpipeError):
    """A pipeline spec does not match its schema."""


class MissingDependencyError(CellpipeError):
    """An optional backend is used but its extra is not installed."""

    http_status = 500  # the server's own environment lacks it

    @classmethod
    def for_extra(cls, module: str, extra: str, what: str) -> MissingDependencyError:
        """Build the error for a missing optional module, with the pip command that fixes it."""
        return cls(
            f"{what} needs the Python package {module!r}, which is not installed",
            hint=f"pip install 'cellpipe[{extra}]'",
        )


class ToolNotFoundError(CellpipeError):
    """An external program (such as graphviz's ``dot``) is not installed."""

    http_status = 500


class ServiceUnavailableError(CellpipeError):
    """A service cellpipe needs does not answer: the Docker daemon, a cluster's API."""

    http_status = 503


@dataclass(frozen=True)
class StepError:
    """A failed step attempt as runs record it: ``result.json``, ``run.json``, the server.

    ``kind`` says whose fault it is: ``user`` (the step's own code or values) or
    ``infrastructure`` (cellpipe or its surroundings). A cell's exception adds ``ename``,
    ``evalue``, ``cell``, ``line`` and ``traceback``; an error cellpipe raised on purpose is
    :meth:`CellpipeError.to_dict` (the same keys, all present).
    """

    kind: str
    message: str
    hint: str | None = None
    cell: int | None = None
    line: int | None = None
    variable: str | None = None
    ename: str | None = None
    evalue: str | None = None
    traceback: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the fields that are set."""
        return {f.name: value for f in fields(self)
                if (value := getattr(self, f.name)) is not None}

    @classmethod
    def of_exception(cls, exc: BaseException, kind: str = "infrastructure") -> StepError:
        """An unexpected exception (a bug, the environment failing), with its traceback."""
        import traceback

        return cls(kind, f"{type(exc).__name__}: {exc}",
                   traceback="".join(traceback.format_exception(exc)))
