"""Linking steps into a DAG: every read comes from the last earlier step that wrote it.

One pass over the plan's units in notebook order keeps, for every name, what last bound
it (a step's value, an import, a definition, a parameter). Each step's events are
replayed against that (:mod:`cellpipe.core.resolve`): a value read becomes a data edge
from its producer, an import or a definition is replayed in the step, a parameter is
bound from the run's values.
"""

from __future__ import annotations

import graphlib
from dataclasses import replace
from typing import Any

from cellpipe.core.analysis import (
    RANDOM_STATE,
    CellCode,
    Definition,
    Event,
    Import,
)
from cellpipe.core.dag import ancestor_map
from cellpipe.core.diagnostics import Diagnostic, did_you_mean
from cellpipe.core.linked import Binding, Edge, NameSource, Pipeline, Step
from cellpipe.core.notebook import Notebook
from cellpipe.core.plan import Plan, StepPlan
from cellpipe.core.resolve import StepAnalyzer


def link(notebook: Notebook, plan: Plan) -> Pipeline:
    """Resolve every step's reads and build the DAG."""
    return Linker(notebook, plan).run()


class Linker:
    """One pass over a plan: the steps, their edges and the diagnostics."""

    def __init__(self, notebook: Notebook, plan: Plan) -> None:
        self.notebook = notebook
        self.plan = plan
        self.diagnostics = list(plan.diagnostics)
        self.bindings: dict[str, Binding] = {
            p.name: Binding("param") for p in plan.parameters
        }
        self.param_cell = plan.parameter_cells[0] if plan.parameter_cells else None
        self.setup: list[tuple[str, tuple[str, ...]]] = []
        self.star_imports: list[Import] = []
        self.dynamic_producers: list[str] = []
        self.rng_users: list[tuple[str, int, int]] = []
        # Names whose values share objects (``combine = [train_df, test_df]``).
        self.alias_groups: dict[str, frozenset[str]] = {}
        # Files: (pattern, step) in notebook order; the working directory (os.chdir).
        self.file_writers: list[tuple[str, str]] = []
        self.file_readers: list[tuple[str, str]] = []
        self.file_kinds: dict[tuple[str, str], str] = {}
        self.cwd = ""
        self.steps: list[Step] = []
        self.metrics = {name: step for name, step in plan.metrics}

    def run(self) -> Pipeline:
        """Link every unit in notebook order; the pipeline with its diagnostics."""
        for unit in self.plan.units:
            if isinstance(unit, CellCode):
                self.shared(unit)
            else:
                self.steps.append(self.step(unit))
        edges = self.edges()
        self.check_cycles(edges)
        self.check_rng()
        self.explain_late_definitions(edges)
        self.check_split_steps()
        self.note_files(edges)
        return Pipeline(
            notebook=self.notebook,
            split=self.plan.split,
            steps=tuple(self.steps),
            edges=tuple(edges),
            parameters=tuple(self.plan.parameters),
            metrics=tuple(self.plan.metrics),
            diagnostics=tuple(self.diagnostics),
            names=self.final_names(),
            star_imports=tuple(dict.fromkeys(i.source for i in self.star_imports)),
        )

    def final_names(self) -> dict[str, NameSource]:
        """What every name holds at the end of the notebook, and where that comes from."""
        found: dict[str, NameSource] = {}
        for name, binding in sorted(self.bindings.items()):
            if not name.isidentifier() or binding.kind == "seed":
                continue  # the hidden values: the random state, a dynamic step's names
            if binding.kind == "value" and binding.producer:
                found[name] = NameSource("value", binding.producer, cell=binding.cell)
            elif binding.kind == "param":
                found[name] = NameSource("parameter", cell=self.param_cell)
            elif isinstance(binding.obj, Import):
                found[name] = NameSource("import", binding.producer, binding.obj.source,
                                         cell=binding.obj.cell)
            elif isinstance(binding.obj, Definition):
                definition = binding.obj
                reads = tuple(sorted(definition.scope.free - {name}))
                found[name] = NameSource("definition", binding.producer, definition.source,
                                         reads, cell=definition.cell)
        # A name last assigned in a cell marked skip: the notebook ends with a value the
        # pipeline never computes.
        for cell, names in self.plan.skipped:
            for name in names:
                known = found.get(name)
                if known is None or (known.cell is not None and known.cell < cell):
                    found[name] = NameSource("skip", cell=cell)
        return found

    def explain_late_definitions(self, edges: list[Edge]) -> None:
        """A name read before the step that makes it: say which step, and where it is."""
        first_writer: dict[str, Step] = {}
        for step in self.steps:
            for name in step.writes:
                first_writer.setdefault(name, step)
        by_name = {s.name: s for s in self.steps}
        for i, diagnostic in enumerate(self.diagnostics):
            writer = first_writer.get(diagnostic.variable or "")
            if diagnostic.code != "CP301" or writer is None or writer.name == diagnostic.step:
                continue
            cell = writer.cells[0][0]
            reader = by_name.get(diagnostic.step or "")
            if reader is not None and reader.cells[0][0] < cell < (diagnostic.cell or 0):
                self.diagnostics[i] = self.split_step(reader, writer, diagnostic, edges)
                continue
            self.diagnostics[i] = replace(
                diagnostic,
                message=f"{diagnostic.variable!r} is read in step {diagnostic.step!r} before "
                f"step {writer.name!r} (from cell {cell + 1}) assigns it",
                hint=f"move this cell below cell {cell + 1}, or make it part of a step that "
                f"runs after {writer.name!r}",
            )

    def note_files(self, edges: list[Edge]) -> None:
        """CP311 (info): which files link steps, and so travel between them on clusters."""
        first_cell = {s.name: s.cells[0][0] for s in self.steps}
        for edge in edges:
            if edge.files:
                self.diagnostics.append(Diagnostic(
                    "info", "CP311",
                    f"step {edge.target!r} runs after step {edge.source!r} because of "
                    f"file{'s' if len(edge.files) > 1 else ''} {', '.join(edge.files)}; on "
                    "Argo and Kubeflow Pipelines they travel from step to step (Argo "
                    "artifacts with an object store, else the run's store)",
                    cell=first_cell[edge.target], step=edge.target,
                ))

    def check_split_steps(self) -> None:
        """CP404: a value read from a step whose cells are apart, changed again below the reader.

        The notebook's reader sees the value before that change; a pipeline step (which
        runs as one) would see it only after.
        """
        by_name = {s.name: s for s in self.steps}
        for step in self.steps:
            first = step.cells[0][0]
            for variable, producer_name in sorted(step.reads.items()):
                producer = by_name.get(producer_name)
                if producer is None or producer.cells[0][0] > first:
                    continue
                changed = producer.write_cells.get(variable)
                if changed is None or changed < first:
                    continue
                cells = ", ".join(str(index + 1) for index, _ in producer.cells)
                self.diagnostics.append(Diagnostic(
                    "error", "CP404",
                    f"step {step.name!r} (cell {first + 1}) reads {variable!r} from step "
                    f"{producer.name!r} (cells {cells}), whose cell {changed + 1}, below "
                    f"cell {first + 1}, changes it again: top to bottom, cell {first + 1} "
                    f"sees {variable!r} before that change; a step runs as one, so the "
                    "pipeline would give it the changed value",
                    cell=first, step=step.name, variable=variable,
                    hint=f"rename the cells of {producer.name!r} from cell {changed + 1} on "
                    f"to a step of their own (e.g. step:{producer.name}-2), or move them "
                    f"above cell {first + 1}",
                ))

    def split_step(
        self, reader: Step, writer: Step, diagnostic: Diagnostic, edges: list[Edge]
    ) -> Diagnostic:
        """CP404: a step whose cells are apart reads what a step between them makes.

        A step runs as one, where its first cell is; if the step between its parts needs
        the step itself (a loop of steps), no order computes what the notebook does.
        """
        cells = ", ".join(str(index + 1) for index, _ in reader.cells)
        variable = diagnostic.variable or ""
        path = _path(edges, reader.name, writer.name)
        if path:
            loop = (*path, (writer.name, reader.name, (variable,)))
            shown = " → ".join([reader.name, *(target for _, target, _ in loop)])
            carried = "; ".join(f"{a} → {b}: {', '.join(v)}" for a, b, v in loop)
            message = (
                f"step {reader.name!r} (cells {cells}) cannot run where its first cell puts "
                f"it: cell {(diagnostic.cell or 0) + 1} reads {variable!r} from step "
                f"{writer.name!r}, which needs step {reader.name!r} itself — a loop of steps "
                f"{shown} ({carried})"
            )
        else:
            loop = ()
            message = (
                f"step {reader.name!r} (cells {cells}) runs as one step where its first cell "
                f"is, but cell {(diagnostic.cell or 0) + 1} reads {variable!r}, which step "
                f"{writer.name!r} (cell {writer.cells[0][0] + 1}, between its cells) assigns"
            )
        return replace(
            diagnostic, code="CP404", message=message, loop=loop,
            hint=f"rename the cells from cell {(diagnostic.cell or 0) + 1} on to a step of "
            f"their own (e.g. step:{reader.name}-2), or move the cells of step "
            f"{reader.name!r} together",
        )

    # -- shared cells ---------------------------------------------------------------

    def shared(self, code: CellCode) -> None:
        """A cell outside any step: its imports, definitions and setup bind for later steps."""
        self.notes(code, None)
        self.setup.extend(s for s in code.setup if s not in self.setup)
        for event in code.events:
            if event.kind == "store" and isinstance(event.binding, (Import, Definition)):
                kind = "import" if isinstance(event.binding, Import) else "def"
                self.bindings[event.name] = Binding(kind, None, event.binding)
            elif event.kind == "star":
                self.star(event, code, None)
            elif event.kind == "rng" and event.name == "seed" and isinstance(event.binding, tuple):
                # Seeds outside any step (numpy's, random's, …): the first step that draws
                # replays them, in order.
                earlier = self.bindings.get(RANDOM_STATE)
                seeds = list(earlier.seeds) if earlier is not None and earlier.kind == "seed" \
                    else []
                self.bindings[RANDOM_STATE] = Binding("seed", seeds=(*seeds, event.binding),
                                                       where=(code.index, event.line))

    def star(self, event: Event, code: CellCode, step: str | None) -> None:
        """``from m import *``: a warning (CP302), since cellpipe cannot list the names it binds."""
        if isinstance(event.binding, Import):
            self.star_imports.append(event.binding)
        self.diagnostics.append(
            Diagnostic(
                "warning", "CP302",
                f"'from {event.name} import *' hides which names it defines: names not found "
                "elsewhere are assumed to come from it",
                cell=code.index, line=event.line, step=step,
                hint=f"import the names you use: from {event.name} import a, b",
            )
        )

    def notes(self, code: CellCode, step: str | None) -> None:
        """The analyzer's notes about a cell, as info diagnostics."""
        for code_id, message, line in code.notes:
            self.diagnostics.append(Diagnostic("info", code_id, message, cell=code.index,
                                               line=line, step=step))
        if code.syntax_error:
            message, line = code.syntax_error
            self.diagnostics.append(
                Diagnostic("error", "CP307", f"syntax error: {message}", cell=code.index,
                           line=line, step=step, hint="fix the cell so that it runs")
            )

    # -- steps ----------------------------------------------------------------------

    def step(self, plan: StepPlan) -> Step:
        """Resolve one step's events against what earlier steps bound."""
        analyzer = StepAnalyzer(self, plan)
        analyzer.replay_setup()
        for code in plan.cells:
            self.notes(code, plan.name)
            for event in code.events:
                analyzer.event(event, code)
        return analyzer.finish()

    def edges(self) -> list[Edge]:
        """The data, file and explicit (``after:``) edges between steps."""
        order = {s.name: i for i, s in enumerate(self.steps)}
        data: dict[tuple[str, str], set[str]] = {}
        files: dict[tuple[str, str], set[str]] = {}
        for step in self.steps:
            for variable, producer in step.reads.items():
                data.setdefault((producer, step.name), set()).add(variable)
            for path, writer in step.file_reads.items():
                if writer is not None and writer != step.name:
                    files.setdefault((writer, step.name), set()).add(path)
            for before, paths in step.file_order.items():
                if before != step.name:
                    files.setdefault((before, step.name), set()).update(paths)
        explicit: set[tuple[str, str]] = set()
        uses_after = any(p.after for p in self.plan.steps)
        for plan in self.plan.steps:
            for upstream, cell in plan.after:
                if upstream == plan.name:
                    continue
                if upstream not in order:
                    suggestion = did_you_mean(upstream, set(order))
                    self.diagnostics.append(
                        Diagnostic(
                            "error", "CP105",
                            f"step {plan.name!r} runs after {upstream!r}, "
                            "but there is no such step",
                            cell=cell, step=plan.name,
                            hint=suggestion or f"steps are: {', '.join(order)}",
                        )
                    )
                    continue
                explicit.add((upstream, plan.name))
        if uses_after:
            ancestors = ancestor_map(explicit)
            for (source, target), variables in sorted(data.items()):
                if source not in ancestors.get(target, set()):
                    self.diagnostics.append(
                        Diagnostic(
                            "info", "CP402",
                            f"step {target!r} reads {', '.join(sorted(variables))} from step "
                            f"{source!r}, which its after: tags do not name; the edge is added",
                            cell=self.plan_of(target).first_cell, step=target,
                        )
                    )
        keys = sorted(set(data) | set(files) | explicit,
                      key=lambda k: (order[k[1]], order[k[0]]))
        return [
            Edge(s, t, tuple(sorted(data.get((s, t), ()))), (s, t) in explicit,
                 tuple(sorted(files.get((s, t), ())))) for s, t in keys
        ]

    def plan_of(self, name: str) -> StepPlan:
        """The plan of step ``name``."""
        return next(p for p in self.plan.steps if p.name == name)

    def check_cycles(self, edges: list[Edge]) -> None:
        """CP error for steps that need each other; otherwise each step's upstream, ordered."""
        graph: dict[str, set[str]] = {s.name: set() for s in self.steps}
        for edge in edges:
            graph[edge.target].add(edge.source)
        try:
            graphlib.TopologicalSorter(graph).prepare()
        except graphlib.CycleError as exc:
            loop = list(exc.args[1])  # each step feeds the next: edge direction
            self.diagnostics.append(
                Diagnostic(
                    "error", "CP401",
                    f"the steps form a cycle: {' → '.join(loop)}",
                    cell=self.plan_of(loop[0]).first_cell, step=loop[0],
                    hint="an after: tag points to a step that itself needs this one; remove it",
                )
            )
        # Upstream lists follow edges; rebuild steps with them.
        upstream: dict[str, list[str]] = {s.name: [] for s in self.steps}
        for edge in edges:
            upstream[edge.target].append(edge.source)
        order = {s.name: i for i, s in enumerate(self.steps)}
        self.steps = [
            _replace(s, upstream=tuple(sorted(set(upstream[s.name]), key=order.__getitem__)))
            for s in self.steps
        ]

    def check_rng(self) -> None:
        """CP308 (info): the steps that share the global random state run in notebook order."""
        names = [s.name for s in self.steps]
        users = sorted({step for step, _, _ in self.rng_users}, key=names.index)
        if len(users) > 1:
            step, cell, line = next(u for u in self.rng_users if u[0] == users[1])
            self.diagnostics.append(
                Diagnostic(
                    "info", "CP308",
                    f"steps {', '.join(users)} share the global random state: they run in "
                    "notebook order, each continuing from the state the one before left, so "
                    "the numbers are the top-to-bottom numbers",
                    cell=cell, line=line, step=step,
                    hint="a generator per step (rng = np.random.default_rng(seed)) lets them "
                    "run in parallel",
                )
            )


def _replace(step: Step, **changes: Any) -> Step:
    return replace(step, **changes)


def _path(edges: list[Edge], start: str, goal: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """The edges of a shortest path from ``start`` to ``goal`` (empty when there is none)."""
    out: dict[str, list[Edge]] = {}
    for edge in edges:
        out.setdefault(edge.source, []).append(edge)
    came: dict[str, Edge] = {}
    todo = [start]
    while todo:
        node = todo.pop(0)
        if node == goal:
            path = []
            while node != start:
                edge = came[node]
                path.append((edge.source, edge.target, edge.variables))
                node = edge.source
            return tuple(reversed(path))
        for edge in out.get(node, []):
            if edge.target not in came and edge.target != start:
                came[edge.target] = edge
                todo.append(edge.target)
    return ()

