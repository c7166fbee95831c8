"""Grouping cells into steps; finding the parameters and metrics cells.

Tagged notebooks: a ``step:`` tag or ``%%step`` header starts (or continues) a step,
untagged cells join the step above, cells with the same step name anywhere form one step
(Kale's rule). Cells above the first step form a step of their own unless they hold only
imports, definitions and setup. Untagged notebooks are split at markdown H1/H2 headings,
at every code cell, or not at all.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from cellpipe.core.analysis import CellCode, scan_cell
from cellpipe.core.annotations import (
    LIST_SETTINGS,
    CellAnnotation,
    normalize_step_name,
    parse_cell,
)
from cellpipe.core.charts import classification_kind
from cellpipe.core.diagnostics import Diagnostic
from cellpipe.core.kinds import SPLITS, ClassificationKind, Split
from cellpipe.core.notebook import Notebook
from cellpipe.core.parameters import Parameter as Parameter
from cellpipe.core.parameters import parameters_of

_HEADING = re.compile(r"^\s{0,3}(#{1,2})\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass
class StepPlan:
    """A step before analysis: its cells in order and its annotations."""

    name: str
    cells: list[CellCode] = field(default_factory=list)
    cell_ids: list[str] = field(default_factory=list)
    after: list[tuple[str, int]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    metrics_cells: list[int] = field(default_factory=list)
    first_cell: int = 0
    # the metrics cells' classification metrics: name → ClassificationKind
    classification: dict[str, ClassificationKind] = field(default_factory=dict)
    # where each ``model:`` name was given: name → cell
    model_cells: dict[str, int] = field(default_factory=dict)


@dataclass
class Plan:
    """The notebook cut into steps.

    Attributes:
        split: How it was cut.
        units: Steps and shared cells in notebook order: a :class:`StepPlan`, or a
            ``CellCode`` whose imports, definitions and setup every later step may use.
        parameters: The parameters, in order.
        metrics: Metric names with the step that reports them.
        diagnostics: Problems found while planning.
    """

    split: Split
    units: list[StepPlan | CellCode]
    parameters: list[Parameter]
    metrics: list[tuple[str, str]]
    diagnostics: list[Diagnostic]
    parameter_cells: list[int] = field(default_factory=list)
    skipped: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)

    @property
    def steps(self) -> list[StepPlan]:
        """The steps in order."""
        return [u for u in self.units if isinstance(u, StepPlan)]


def plan_notebook(notebook: Notebook, split: str | None = None) -> Plan:
    """Cut a notebook into steps; see the module docstring for the rules."""
    diagnostics: list[Diagnostic] = []
    annotations: dict[int, CellAnnotation] = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            annotations[cell.index] = parse_cell(cell.tags, cell.source, cell.index, diagnostics)
    tagged = any(a.step for a in annotations.values())
    if tagged:
        if split and split != "tags":
            diagnostics.append(
                Diagnostic(
                    "info", "CP109",
                    f"--split {split} ignored: the notebook marks its steps with tags or %%step",
                )
            )
        mode: Split = "tags"
    elif split in SPLITS:
        mode = split
    elif split not in (None, "tags", "auto"):
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    else:
        has_heading = any(
            c.cell_type == "markdown" and _HEADING.search(c.source) for c in notebook.cells
        )
        mode = "headings" if has_heading else "none"
    return _Planner(notebook, annotations, diagnostics, mode).run()


class _Planner:
    def __init__(
        self,
        notebook: Notebook,
        annotations: dict[int, CellAnnotation],
        diagnostics: list[Diagnostic],
        mode: Split,
    ) -> None:
        self.notebook = notebook
        self.annotations = annotations
        self.diagnostics = diagnostics
        self.mode = mode
        self.units: list[StepPlan | CellCode] = []
        self.steps: dict[str, StepPlan] = {}
        self.parameters: list[Parameter] = []
        self.parameter_cells: list[int] = []
        self.metrics: list[tuple[str, str]] = []
        self.used_names: set[str] = set()
        # Parameters cells' statements that are not literal assignments: cell → the step
        # they run in ("" until a step takes them), and their lines.
        self.residues: dict[int, str] = {}
        self.residue_lines: dict[int, list[int]] = {}
        self.carry: list[CellCode] = []
        self.skipped: list[tuple[int, tuple[str, ...]]] = []

    def run(self) -> Plan:
        current: StepPlan | None = None
        pending: list[CellCode] = []  # untagged cells not yet given to a step
        section: str | None = None  # heading-split: name of the current section
        for cell in self.notebook.cells:
            if cell.cell_type == "markdown":
                match = _HEADING.search(cell.source) if self.mode == "headings" else None
                if match:
                    self.flush(pending, current)
                    pending, current = [], None
                    section = _heading_name(match.group(2))
                    self._section_name = section
                continue
            if cell.cell_type != "code":
                continue
            note = self.annotations[cell.index]
            if note.role == "skip":
                self.skipped.append((cell.index, _stored_names(note.body)))
                continue
            if note.role == "parameters":
                residue = self.read_parameters(cell.index, note)
                if residue is None:
                    continue
                code = residue  # the cell's other statements: code that runs in place
            else:
                code = scan_cell(cell.index, note.body, note.body_line_offset)
            if note.role == "metrics":
                owner: StepPlan | None
                if note.step and self.mode == "tags":  # ``step:NAME`` and ``metrics``
                    owner = current = self.step_named(note.step, cell.index, pending)
                    pending = []
                else:
                    owner = current or (self.steps.get(section) if section else None)
                self.read_metrics(code, owner, pending)
                if owner is None and pending:
                    pending.append(code)
                elif owner is not None:
                    self.add_cell(owner, code, cell.id)
                    owner.metrics_cells.append(cell.index)
                else:
                    self.diagnostics.append(
                        Diagnostic(
                            "error", "CP110", "the metrics cell is above every step",
                            cell=cell.index,
                            hint="move it below the step that computes the metrics",
                        )
                    )
                continue
            if code.index in self.residues and self.mode == "cells":
                pending_residue = [code]
                self.flush(pending_residue, None)
                continue
            if self.mode == "tags":
                if note.step:
                    if note.step not in self.steps:
                        self.flush(pending, None)
                        pending = []
                    current = self.step_named(note.step, cell.index, [])
                elif current is None:
                    pending.append(code)
                    continue
                self.add_cell(current, code, cell.id, note)
            elif self.mode == "cells":
                if code.only_shared or not code.python.strip():
                    self.units.append(code)
                    continue
                current = self.new_step(self.unique(f"cell-{cell.index + 1}"), cell.index)
                self.add_cell(current, code, cell.id, note)
            else:  # headings or none: collect, decide at the next heading
                pending.append(code)
        self.flush(pending, current)
        if self.carry:  # the parameters cell's code, with no step after it: a step of its own
            step = self.new_step(self.unique("parameters"), self.carry[0].index)
            self.add_cell(step, self.carry[0], self.notebook.cells[self.carry[0].index].id)
        self.explain_residues()
        self.check_steps()
        return Plan(
            self.mode, self.units, self.parameters, self.metrics, self.diagnostics,
            self.parameter_cells, self.skipped,
        )

    # -- building steps -------------------------------------------------------------

    def flush_name(self) -> str:
        if self.mode == "none":
            return self.unique(normalize_step_name(self.notebook.name) or "main")
        return self.unique("setup" if not self.steps else "main")

    def flush(self, pending: list[CellCode], current: StepPlan | None) -> None:
        """Give pending cells to a step: the current one, a section's, or a new one."""
        if not pending:
            return
        if current is not None and self.mode == "tags":
            for code in pending:
                self.add_cell(current, code, self.notebook.cells[code.index].id)
            return
        if all(c.only_shared or (c.syntax_error is None and not c.python.strip())
               or c.index in self.residues for c in pending):
            # Imports, definitions, setup: shared, not a step. The parameters cell's own
            # code runs as part of the next step.
            for code in pending:
                if code.index in self.residues and not code.only_shared:
                    self.carry.append(code)
                else:
                    self.units.append(code)
            return
        name = self._section_name if self.mode == "headings" else None
        step = self.new_step(self.unique(name) if name else self.flush_name(), pending[0].index)
        for code in pending:
            self.add_cell(step, code, self.notebook.cells[code.index].id)

    _section_name: str | None = None

    def step_named(self, name: str, first_cell: int, pending: list[CellCode]) -> StepPlan:
        """The step called ``name``; a new one (after giving ``pending`` away) if none yet."""
        step = self.steps.get(name)
        if step is None:
            self.flush(pending, None)
            step = self.new_step(name, first_cell)
        return step

    def new_step(self, name: str, first_cell: int) -> StepPlan:
        step = StepPlan(name=name, first_cell=first_cell)
        self.steps[name] = step
        self.used_names.add(name)
        self.units.append(step)
        return step

    def unique(self, name: str) -> str:
        candidate, n = name, 2
        while candidate in self.used_names:
            candidate, n = f"{name}-{n}", n + 1
        return candidate

    def add_cell(
        self, step: StepPlan, code: CellCode, cell_id: str, note: CellAnnotation | None = None
    ) -> None:
        carried, self.carry = self.carry, []
        for earlier in carried:  # the parameters cell's code, kept in notebook order
            step.cells.append(earlier)
            step.cell_ids.append(self.notebook.cells[earlier.index].id)
            self.residues[earlier.index] = step.name
        if code.index in self.residues:
            self.residues[code.index] = step.name
        step.cells.append(code)
        step.cell_ids.append(cell_id)
        if note is None:
            return
        step.after.extend((a, code.index) for a in note.after)
        for key, value in note.settings.items():
            if key in LIST_SETTINGS:  # declared inputs and models add up over a step's cells
                step.settings[key] = list(dict.fromkeys([*step.settings.get(key, []), *value]))
                if key == "model":
                    for name in value:
                        step.model_cells.setdefault(name, code.index)
                continue
            if key in step.settings and step.settings[key] != value:
                self.diagnostics.append(
                    Diagnostic(
                        "error", "CP108",
                        f"step {step.name!r} sets {key} to {step.settings[key]!r} and to {value!r}",
                        cell=code.index, step=step.name, hint=f"keep one {key} setting per step",
                    )
                )
            step.settings[key] = value

    def check_steps(self) -> None:
        by_dns: dict[str, str] = {}
        for step in self.steps.values():
            dns = step.name.replace("_", "-")
            if dns in by_dns and by_dns[dns] != step.name:
                self.diagnostics.append(
                    Diagnostic(
                        "error", "CP106",
                        f"steps {by_dns[dns]!r} and {step.name!r} have the same cluster name "
                        f"{dns!r}",
                        cell=step.first_cell, step=step.name,
                        hint="rename one of them: '-' and '_' are the same on Kubernetes",
                    )
                )
            by_dns[dns] = step.name
            if not any(c.tree is None or c.tree.body for c in step.cells):
                self.diagnostics.append(
                    Diagnostic(
                        "error", "CP107", f"step {step.name!r} has no code",
                        cell=step.first_cell, step=step.name,
                        hint="add code to the step, or remove its tag",
                    )
                )

    # -- parameters and metrics -----------------------------------------------------

    def read_parameters(self, index: int, note: CellAnnotation) -> CellCode | None:
        """Read the literal assignments; return the cell's other statements as code.

        papermill's convention: the literal assignments are the parameters; anything else
        (a print, a derived value, an import) runs once, in notebook order, as part of
        the next step. Their lines keep their numbers (the parameters are blanked out).
        """
        self.parameter_cells.append(index)
        seen = {p.name for p in self.parameters}
        try:
            tree = ast.parse(note.body)
        except SyntaxError as exc:
            self.diagnostics.append(
                Diagnostic(
                    "error", "CP201", f"the parameters cell is not valid Python: {exc.msg}",
                    cell=index, line=(exc.lineno or 1) + note.body_line_offset,
                    hint="the parameters cell holds literal assignments, e.g. lr = 0.1",
                )
            )
            return None
        lines = note.body.split("\n")
        code_lines: list[int] = []
        for stmt in tree.body:
            line = stmt.lineno + note.body_line_offset
            params = parameters_of(stmt, index, line, self.diagnostics)
            if params is None:  # not a parameter: code that runs in place
                if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                    code_lines.append(line)
                continue
            for number in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1):
                lines[number - 1] = ""
            for param in params:
                if param.name in seen:
                    self.diagnostics.append(
                        Diagnostic(
                            "warning", "CP204", f"parameter {param.name!r} is defined twice",
                            cell=index, line=line, variable=param.name,
                            hint="the last value wins; keep one assignment",
                        )
                    )
                    self.parameters = [p for p in self.parameters if p.name != param.name]
                seen.add(param.name)
                self.parameters.append(param)
        if not code_lines:
            return None
        residue = scan_cell(index, "\n".join(lines), note.body_line_offset)
        self.residues[index] = ""
        self.residue_lines[index] = code_lines
        return residue

    def explain_residues(self) -> None:
        """CP205: say where the parameters cell's other code runs."""
        for index, step in self.residues.items():
            lines = self.residue_lines.get(index, [])
            where = f"as part of step {step!r}" if step else "with the shared cells"
            shown = ", ".join(map(str, lines[:8])) + (", …" if len(lines) > 8 else "")
            self.diagnostics.append(
                Diagnostic(
                    "warning", "CP205",
                    f"the parameters cell has code besides literal assignments (line"
                    f"{'s' if len(lines) > 1 else ''} {shown}): it runs once, in notebook "
                    f"order, {where}; the names it assigns are ordinary variables, not "
                    "parameters",
                    cell=index, line=lines[0] if lines else None, step=step or None,
                    hint="keep only literal assignments (lr = 0.1) in the parameters cell to "
                    "make every name there a parameter; move derived values to a step",
                )
            )

    def read_metrics(
        self, code: CellCode, owner: StepPlan | None, pending: list[CellCode]
    ) -> None:
        names: list[str] = []
        charts: dict[str, ClassificationKind] = {}
        tree = code.tree
        if tree is not None:
            for stmt in tree.body:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    kind = classification_kind(stmt.value)
                    for target in targets:
                        assigned = [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
                        if kind is not None and isinstance(target, ast.Name):
                            charts[target.id] = kind
                        else:
                            names.extend(assigned)
                elif isinstance(stmt, ast.Expr):
                    value = stmt.value
                    if isinstance(value, ast.Name):
                        names.append(value.id)
                    elif isinstance(value, ast.Tuple):
                        names.extend(e.id for e in value.elts if isinstance(e, ast.Name))
                    elif (
                        isinstance(value, ast.Call)
                        and isinstance(value.func, ast.Name)
                        and value.func.id == "print"
                    ):
                        names.extend(a.id for a in value.args if isinstance(a, ast.Name))
        names = [n for n in names if n not in charts]
        if owner is not None:
            owner.classification.update(charts)
        if not names and not charts:
            self.diagnostics.append(
                Diagnostic(
                    "warning", "CP211", "the metrics cell names no metric",
                    cell=code.index,
                    hint="assign metrics (acc = …), end with a name, or print(name) per metric",
                )
            )
        step_name = owner.name if owner else "?"
        for name in dict.fromkeys(names):
            self.metrics.append((name, step_name))


def _heading_name(text: str) -> str:
    text = re.sub(r"^[\d.\s]+", "", re.sub(r"[`*_\[\]()]", " ", text))
    return normalize_step_name(text)[:40].strip("-_") or "section"


def _stored_names(source: str) -> tuple[str, ...]:
    """Names a cell assigns at its top level (a skip cell: not part of the pipeline)."""
    from cellpipe.core.analysis import to_python

    try:
        tree = ast.parse(to_python(source))
    except (SyntaxError, ValueError):
        return ()
    names: dict[str, None] = {}
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names[node.id] = None
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names[node.name] = None
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name.split(".")[0], None) for a in node.names
                             if a.name != "*")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                 ast.Lambda)) and node is not stmt:
                break
    return tuple(names)
