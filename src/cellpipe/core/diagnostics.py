"""Lint diagnostics: what the analyzer has to say about a notebook, with where and how to fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]

# Every code cellpipe emits, with a one-line title; README documents them.
CODES: dict[str, str] = {
    "CP101": "invalid step name",
    "CP102": "invalid step setting",
    "CP103": "invalid %%step header",
    "CP104": "a cell names two different steps",
    "CP105": "unknown step in after:",
    "CP106": "duplicate step name",
    "CP107": "empty step",
    "CP108": "conflicting settings in one step",
    "CP109": "--split ignored: the notebook has step tags",
    "CP110": "metrics cell outside any step",
    "CP201": "the parameters cell is not valid Python",
    "CP202": "a parameter's value mismatches its annotation",
    "CP203": "a step reassigns a parameter",
    "CP204": "parameter defined twice",
    "CP205": "the parameters cell holds code besides literal assignments (run in place)",
    "CP211": "metrics cell names no metric",
    "CP301": "name read but never defined earlier",
    "CP302": "star import hides which names are defined",
    "CP303": "exec/eval: names cannot be resolved statically",
    "CP304": "globals() written: names cannot be resolved statically",
    "CP305": "package install line is not run in steps",
    "CP306": "mutation through a possible alias",
    "CP307": "syntax error",
    "CP308": "steps share the global random state (run in notebook order)",
    "CP309": "a step reads a value that cannot leave the step that made it",
    "CP310": "a file path cellpipe cannot follow",
    "CP311": "files link two steps (they travel between the steps on clusters)",
    "CP312": "a model: tag names a variable the step does not assign",
    "CP401": "dependency cycle",
    "CP402": "inferred data edge",
    "CP404": "a step's cells are apart and the steps between them need each other",
    "CP501": "import maps to no installed distribution (step images will lack it)",
    # lint --target only: what a cluster run breaks on that a local run does not
    "CP601": "a file read from the notebook's folder is not there on a cluster",
    "CP602": "a path of this machine (absolute, home or Windows folder)",
    "CP603": "a localhost address: inside a pod it is the pod itself",
    "CP604": "GPUs asked for without a node selector or toleration",
    "CP605": "no memory limit, and the cluster settings require one",
    "CP606": "no memory limit",
}


@dataclass(frozen=True)
class Diagnostic:
    """One finding of lint.

    Attributes:
        severity: ``error`` (the pipeline cannot be built), ``warning`` (it can, but the
            contract may not hold there) or ``info``.
        code: A stable code such as ``CP301`` (see :data:`CODES`).
        message: What was found.
        cell: 0-based index of the cell in the notebook, if it concerns one.
        line: 1-based line in that cell's source, if known.
        step: The step concerned, if any.
        variable: The variable concerned, if any.
        hint: How to fix it.
        cell_id: The nbformat id of the cell, if it has one.
    """

    severity: Severity
    code: str
    message: str
    cell: int | None = None
    line: int | None = None
    step: str | None = None
    variable: str | None = None
    hint: str | None = None
    cell_id: str | None = field(default=None, compare=False)
    loop: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used by ``cellpipe lint --format json``."""
        found: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "cell": self.cell,
            "cell_id": self.cell_id,
            "line": self.line,
            "step": self.step,
            "variable": self.variable,
            "hint": self.hint,
        }
        if self.loop:  # steps that need each other: from → to, carrying variables
            found["loop"] = [{"from": a, "to": b, "variables": list(v)} for a, b, v in self.loop]
        return found

    def where(self) -> str:
        """Return 'cell N, line L' (1-based cell number) or '' when not tied to a cell."""
        parts = []
        if self.cell is not None:
            parts.append(f"cell {self.cell + 1}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts)

    def format(self) -> str:
        """Return a one-line human form: ``cell 3, line 2: error CP301 …``."""
        where = self.where()
        text = f"{where + ': ' if where else ''}{self.severity} {self.code}: {self.message}"
        if self.step and f"step {self.step!r}" not in self.message:
            text += f" [step {self.step}]"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text


def did_you_mean(name: str, candidates: list[str] | set[str]) -> str:
    """Return ' (did you mean 'x'?)'-style text for the closest candidate, or ''."""
    import difflib

    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
