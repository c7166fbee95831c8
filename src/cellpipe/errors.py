"""The one error tree of cellpipe.

Every error says what went wrong, where (notebook, cell, line, step, variable) and how to
fix it. Errors survive pickling, so a step process can hand one to its parent intact.
"""

from __future__ import annotations

from typing import Any


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
    """

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

    def __init__(self, message: str, diagnostics: list[Any] | None = None, **fields: Any) -> None:
        self.diagnostics = list(diagnostics or [])
        super().__init__(message, **fields)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_pipeline, (self.message, self.diagnostics, self._fields()))


def _rebuild_pipeline(
    message: str, diagnostics: list[Any], fields: dict[str, Any]
) -> PipelineError:
    return PipelineError(message, diagnostics, **fields)


class SpecError(CellpipeError):
    """A pipeline spec does not match its schema."""


class MissingDependencyError(CellpipeError):
    """An optional backend is used but its extra is not installed."""

    @classmethod
    def for_extra(cls, module: str, extra: str, what: str) -> MissingDependencyError:
        """Build the error for a missing optional module, with the pip command that fixes it."""
        return cls(
            f"{what} needs the Python package {module!r}, which is not installed",
            hint=f"pip install 'cellpipe[{extra}]'",
        )


class ToolNotFoundError(CellpipeError):
    """An external program (such as graphviz's ``dot``) is not installed."""
