"""Linking steps into a DAG: every read comes from the last earlier step that wrote it.

One pass over the plan's units in notebook order keeps, for every name, what last bound
it (a step's value, an import, a definition, a parameter). Each step's events are
replayed against that: a value read becomes a data edge from its producer, an import or
a definition is replayed in the step, a parameter is bound from the run's values.
"""

from __future__ import annotations

import builtins
import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cellpipe.core.analysis import (
    DYNAMIC_NAMES,
    RANDOM_STATE,
    CellCode,
    Definition,
    Event,
    Import,
    process_bound_maker,
    stateful_maker,
)
from cellpipe.core.dag import ancestor_map
from cellpipe.core.diagnostics import Diagnostic, did_you_mean
from cellpipe.core.notebook import Notebook
from cellpipe.core.plan import Parameter, Plan, StepPlan

# Names that exist in every IPython session without being defined in the notebook.
_AMBIENT = frozenset(dir(builtins)) | {
    "get_ipython", "display", "In", "Out", "_", "__", "___", "_ih", "_oh", "_dh", "exit",
    "quit", "__name__", "__file__", "__builtins__",
}
# Names held in one container up to which they are kept shared between steps.
MAX_SHARED_GROUP = 32
# ``from numpy.random import normal`` and the like: calling such a name draws.
_RNG_IMPORT = ("from numpy.random import", "from random import", "from np.random import")
_RNG_IMPORT_SAFE = {"default_rng", "RandomState", "Generator", "SeedSequence", "PCG64",
                    "MT19937", "Random", "SystemRandom", "getstate", "get_state"}


@dataclass(frozen=True)
class Step:
    """One step of the pipeline, fully linked.

    Attributes:
        name: Step name.
        cells: ``(index, id)`` of its cells, in order.
        sources: The source of each cell as it runs in the step (``%%step`` header and
            install lines removed).
        upstream: Steps it runs after (data and explicit edges), sorted by step order.
        reads: Variable → the step that produced the value it reads.
        parameters: Parameters it reads.
        writes: Variables it leaves for later steps (assigned or changed in place).
        mutates: Of ``writes``, those changed in place rather than assigned.
        imports: Import statements replayed before its cells.
        definitions: Function and class definitions replayed before its cells.
        setup: Session setup replayed before its cells (``%matplotlib``, options, seeds).
        settings: Per-step settings from annotations.
        requirements: Packages from install lines in its cells.
        metrics: Metric names this step reports.
        dynamic: True when names cannot be resolved statically (exec, globals(), star
            imports): the step receives every earlier value and exports all it ends with.
        metrics_cells: Indices of its cells tagged ``metrics``.
        random_state: ``draws`` when it draws from the global random state (it reads the
            state the step before left and passes it on), ``seeds`` when it only sets it,
            ``""`` when it does not touch it.
        write_cells: Per output, the last cell that assigns or changes it.
        file_reads: Path patterns (relative to the notebook) of files it reads → the step
            that writes them before it, or None for an external input.
        file_writes: Path patterns of files it writes (or directories it makes).
        file_order: Steps it must run after because of files besides reads: one wrote a
            file this step writes again, read a file this step overwrites, or made the
            directory it writes into.
    """

    name: str
    cells: tuple[tuple[int, str], ...]
    sources: tuple[str, ...]
    upstream: tuple[str, ...]
    reads: Mapping[str, str]
    parameters: tuple[str, ...]
    writes: tuple[str, ...]
    mutates: tuple[str, ...]
    imports: tuple[str, ...]
    definitions: tuple[str, ...]
    setup: tuple[str, ...]
    settings: Mapping[str, Any]
    requirements: tuple[str, ...]
    metrics: tuple[str, ...]
    dynamic: bool
    metrics_cells: tuple[int, ...] = ()
    random_state: str = ""
    write_cells: Mapping[str, int] = field(default_factory=dict, compare=False)
    file_reads: Mapping[str, str | None] = field(default_factory=dict)
    file_writes: tuple[str, ...] = ()
    file_order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class NameSource:
    """Where the value a name holds at the end of the notebook comes from.

    Attributes:
        kind: ``value`` (a step's output), ``parameter``, ``import``, ``definition`` (a
            notebook function or class, replayed), or ``skip`` (last assigned in a cell
            marked skip: not part of the pipeline).
        step: The producing step (values; definitions made in a step).
        source: The statement that replays it (imports, definitions).
        reads: Names a definition reads when called (resolved the same way).
        cell: The cell that last binds it.
    """

    kind: str
    step: str | None = None
    source: str = ""
    reads: tuple[str, ...] = ()
    cell: int | None = None


@dataclass(frozen=True)
class Edge:
    """``source`` → ``target``, carrying ``variables``; ``explicit`` if declared by after:.

    ``files`` are the paths (patterns) that make the edge: the target reads what the source
    wrote, or the two must keep their notebook order on a file.
    """

    source: str
    target: str
    variables: tuple[str, ...]
    explicit: bool
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    """The linked pipeline with everything lint found."""

    notebook: Notebook
    split: str
    steps: tuple[Step, ...]
    edges: tuple[Edge, ...]
    parameters: tuple[Parameter, ...]
    metrics: tuple[tuple[str, str], ...]
    diagnostics: tuple[Diagnostic, ...]
    names: Mapping[str, NameSource] = field(default_factory=dict)
    star_imports: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Diagnostic]:
        """Diagnostics of severity error."""
        return [d for d in self.diagnostics if d.severity == "error"]

    def step(self, name: str) -> Step:
        """Return the step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


@dataclass
class _Binding:
    kind: str  # value | import | def | param | seed
    producer: str | None = None
    obj: Import | Definition | None = None
    definite: bool = True
    alias: bool = False
    stateful: bool = False  # a generator or iterator: using it changes it
    methods: frozenset[str] = frozenset()  # an instance's methods that change it
    bound: str | None = None  # what it is when it cannot leave its process ("an open file")
    where: tuple[int, int] = (0, 0)  # cell and line of the store
    seeds: tuple[tuple[str, tuple[str, ...]], ...] = ()  # seed: (code, names it reads)
    cell: int | None = None  # the cell that bound it last
    path: tuple[object, ...] | None = None  # a value built like a path: its template


def link(notebook: Notebook, plan: Plan) -> Pipeline:
    """Resolve every step's reads and build the DAG."""
    return _Linker(notebook, plan).run()


class _Linker:
    def __init__(self, notebook: Notebook, plan: Plan) -> None:
        self.notebook = notebook
        self.plan = plan
        self.diagnostics = list(plan.diagnostics)
        self.bindings: dict[str, _Binding] = {
            p.name: _Binding("param") for p in plan.parameters
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
        self.notes(code, None)
        self.setup.extend(s for s in code.setup if s not in self.setup)
        for event in code.events:
            if event.kind == "store" and isinstance(event.binding, (Import, Definition)):
                kind = "import" if isinstance(event.binding, Import) else "def"
                self.bindings[event.name] = _Binding(kind, None, event.binding)
            elif event.kind == "star":
                self.star(event, code, None)
            elif event.kind == "rng" and event.name == "seed" and isinstance(event.binding, tuple):
                # Seeds outside any step (numpy's, random's, …): the first step that draws
                # replays them, in order.
                earlier = self.bindings.get(RANDOM_STATE)
                seeds = list(earlier.seeds) if earlier is not None and earlier.kind == "seed" \
                    else []
                self.bindings[RANDOM_STATE] = _Binding("seed", seeds=(*seeds, event.binding),
                                                       where=(code.index, event.line))

    def star(self, event: Event, code: CellCode, step: str | None) -> None:
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
        analyzer = _StepAnalyzer(self, plan)
        analyzer.replay_setup()
        for code in plan.cells:
            self.notes(code, plan.name)
            for event in code.events:
                analyzer.event(event, code)
        return analyzer.finish()

    def edges(self) -> list[Edge]:
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
        return next(p for p in self.plan.steps if p.name == name)

    def check_cycles(self, edges: list[Edge]) -> None:
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


@dataclass
class _StepAnalyzer:
    linker: _Linker
    plan: StepPlan
    local: dict[str, _Binding] = field(default_factory=dict)
    reads: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    params: dict[str, None] = field(default_factory=dict)
    imports: dict[int, Import] = field(default_factory=dict)
    definitions: dict[int, Definition] = field(default_factory=dict)
    writes: dict[str, None] = field(default_factory=dict)
    mutated: dict[str, None] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    unprovable: tuple[int, int] | None = None
    dynamic: bool = False
    expanding: set[int] = field(default_factory=set)
    expanded: set[int] = field(default_factory=set)
    param_mutation_cache: dict[int, set[int]] = field(default_factory=dict)
    dynamic_definitions: set[int] = field(default_factory=set)
    setup: list[str] = field(default_factory=list)
    random_state: str = ""
    rng_lines: list[tuple[int, int]] = field(default_factory=list)
    bound_reads: set[str] = field(default_factory=set)
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    write_cells: dict[str, int] = field(default_factory=dict)
    file_reads: dict[str, str | None] = field(default_factory=dict)
    file_writes: dict[str, str] = field(default_factory=dict)  # pattern → write | append
    file_order: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.groups = dict(self.linker.alias_groups)

    def group_of(self, name: str) -> frozenset[str]:
        """The names that share objects with ``name`` (itself included), if any."""
        return self.groups.get(name, frozenset())

    def keep_groups_together(self, outputs: dict[str, None]) -> None:
        """Export every name of a group of shared objects when one of them is exported.

        Then all of a group always come from one step, which saves them together, so a
        change through one name shows through the others in every later step.
        """
        todo = [n for n in outputs if n in self.groups]
        done: set[frozenset[str]] = set()
        while todo:
            group = self.group_of(todo.pop())
            if group in done:
                continue
            done.add(group)
            for member in sorted(group):
                if member in outputs or member in self.deleted:
                    continue
                binding = self.local.get(member) or self.linker.bindings.get(member)
                if binding is None or binding.kind != "value":
                    continue
                if member not in self.local:
                    self.load(member, self.plan.first_cell, 1)
                    self.mutated[member] = None
                outputs[member] = None
                todo.append(member)

    @property
    def name(self) -> str:
        return self.plan.name

    def event(self, event: Event, code: CellCode) -> None:
        kind = event.kind
        if kind == "load":
            self.load(event.name, code.index, event.line)
        elif kind == "store":
            self.store(event, code.index)
        elif kind == "mutate":
            self.mutate(event.name, code.index, event.line, event.alias)
        elif kind == "del":
            self.local.pop(event.name, None)
            self.writes.pop(event.name, None)
            self.mutated.pop(event.name, None)
            self.deleted.add(event.name)
        elif kind == "call":
            self.call(event, code)
        elif kind == "use":
            self.use(event.name, code.index, event.line, event.method)
        elif kind == "file":
            self.file(event, code)
        elif kind == "rng":
            if event.name == "seed":
                self.seed_random(code.index, event.line)
            else:
                self.draw_random(code.index, event.line)
        elif kind == "dynamic":
            self.mark_dynamic(event.name, code.index, event.line)
        elif kind == "star":
            self.linker.star(event, code, self.name)

    def mark_dynamic(self, what: str, cell: int, line: int) -> None:
        """exec/eval/globals() at ``cell``/``line`` runs in this step: names are unknown."""
        self.dynamic = True
        shown = "exec/eval" if what in ("exec", "eval") else "globals()"
        self.linker.diagnostics.append(
            Diagnostic(
                "warning", "CP303" if what in ("exec", "eval") else "CP304",
                f"{shown} hides which names this line reads and writes: step {self.name!r} "
                "receives every value earlier steps produced and exports all it ends with",
                cell=cell, line=line, step=self.name,
                hint="assign variables by name so the analyzer can follow them",
            )
        )

    def replay_setup(self) -> None:
        """Session setup from earlier cells runs first in the step; resolve what it reads."""
        for statement, names in self.linker.setup:
            self.setup.append(statement)
            for name in names:
                self.load(name, self.plan.first_cell, 1)

    # -- the global random state and objects that change as they are used --------------

    def seed_random(self, cell: int, line: int) -> None:
        """``np.random.seed(…)`` here: the step sets the global random state."""
        self.local[RANDOM_STATE] = _Binding("value", self.name, where=(cell, line))
        self.writes[RANDOM_STATE] = None
        if self.random_state != "draws":
            self.random_state = "seeds"
        self.rng_lines.append((cell, line))

    def draw_random(self, cell: int, line: int) -> None:
        """A draw from the global random state: it continues from the last step that drew.

        The state is a hidden value: read from the step before (a data edge), or, when
        only a seed outside any step came before, that seed is replayed here first.
        """
        local = self.local.get(RANDOM_STATE)
        if local is None or not local.definite:
            binding = self.linker.bindings.get(RANDOM_STATE)
            if binding is not None and binding.kind == "seed":
                for statement, names in binding.seeds:
                    if statement not in self.setup:
                        self.setup.append(statement)
                    for name in names:
                        self.load(name, cell, line)
            elif binding is not None and binding.producer is not None:
                self.reads.setdefault(RANDOM_STATE, (binding.producer, cell, line))
        self.local[RANDOM_STATE] = _Binding("value", self.name, where=(cell, line))
        self.writes[RANDOM_STATE] = None
        self.random_state = "draws"
        self.rng_lines.append((cell, line))

    # -- files --------------------------------------------------------------------------

    def path_of(self, name: str) -> object:
        """What a name in a path is: a template, ``*`` (a parameter: known at run time)."""
        binding = self.binding_of(name)
        if binding is None:
            return None
        if binding.kind == "param":
            return "*"
        return binding.path

    def file(self, event: Event, code: CellCode) -> None:
        """A read, write, mkdir or chdir of a file: files link steps as variables do."""
        from cellpipe.core.files import inside, matches, normalize, resolve

        template = event.binding if isinstance(event.binding, tuple) else None
        pattern = resolve(template, self.path_of) if template is not None else None  # type: ignore[arg-type]
        if pattern is None:
            if event.name != "chdir":
                self.linker.diagnostics.append(Diagnostic(
                    "info", "CP310",
                    f"cellpipe cannot see which file this line {event.name}s",
                    cell=code.index, line=event.line, step=self.name,
                    hint="if it is another step's file, tag this step after:STEP (or "
                    "cache:off); build the path from literals and parameters to let cellpipe "
                    "follow it",
                ))
            return
        if not pattern.startswith(("/", "~")) and "://" not in pattern and self.linker.cwd:
            pattern = normalize(f"{self.linker.cwd}/{pattern}")
        if event.name == "chdir":
            self.linker.cwd = "" if pattern == "." else pattern
            return
        linker = self.linker
        for directory, maker in reversed(linker.file_writers):  # written into a made directory
            if maker != self.name and directory != pattern and inside(pattern, directory):
                self.file_order.setdefault(maker, set()).add(directory)
                break
        if event.name == "read":
            if any(matches(pattern, w) for w in self.file_writes):
                return  # this step wrote it before reading it
            # the last step that wrote it, and those that appended to it since
            writers = []
            for written, writer in reversed(linker.file_writers):
                if writer != self.name and matches(pattern, written):
                    writers.append(writer)
                    if linker.file_kinds.get((written, writer)) != "append":
                        break
            self.file_reads.setdefault(pattern, writers[0] if writers else None)
            for writer in writers[1:]:
                self.file_order.setdefault(writer, set()).add(pattern)
            return
        if event.name != "append":
            # a write (or a directory made): after the step that wrote it last, and after
            # every step that read it before this one overwrites it
            for written, writer in reversed(linker.file_writers):
                if writer != self.name and matches(pattern, written):
                    self.file_order.setdefault(writer, set()).add(pattern)
                    if linker.file_kinds.get((written, writer)) != "append":
                        break
        for read, reader in linker.file_readers:
            if reader != self.name and matches(pattern, read):
                self.file_order.setdefault(reader, set()).add(pattern)
        if self.file_writes.get(pattern) != "write":
            self.file_writes[pattern] = "append" if event.name == "append" else "write"

    def declared_input(self, declared: str) -> None:
        """An ``inputs:`` path links to the earlier steps that write into it.

        Each earlier written path inside a declared file, folder or pattern is read as a
        seen read would be (from its last writer, after those appending to it), so it
        travels on clusters; a declared path no step writes is an external input.
        """
        from cellpipe.core.files import inside, matches, normalize

        pattern = normalize(declared)
        linked = False
        for written in dict.fromkeys(w for w, _ in reversed(self.linker.file_writers)):
            if not inside(written, pattern) or written in self.file_reads \
                    or any(matches(written, own) for own in self.file_writes):
                continue
            writers: list[str] = []
            for path, writer in reversed(self.linker.file_writers):
                if writer != self.name and path == written:
                    writers.append(writer)
                    if self.linker.file_kinds.get((path, writer)) != "append":
                        break
            if writers:
                linked = True
                self.file_reads[written] = writers[0]
                for writer in writers[1:]:
                    self.file_order.setdefault(writer, set()).add(written)
        if not linked:
            self.file_reads.setdefault(pattern, None)

    def binding_of(self, name: str) -> _Binding | None:
        """What ``name`` is bound to at this point of the step."""
        local = self.local.get(name)
        if local is not None and (local.definite or name not in self.linker.bindings):
            return local
        return self.linker.bindings.get(name) if local is None else local

    def use(self, name: str, cell: int, line: int, method: str | None = None) -> None:
        """A method call on ``name``, or ``name`` passed to a call or iterated.

        A random generator, an iterator or a generator object changes when it is used; an
        instance of a notebook class changes when one of its methods that change ``self``
        is called: the step changes it in place, so later steps read it from here.
        """
        binding = self.binding_of(name)
        if binding is None or binding.kind != "value":
            return
        if binding.stateful or (method is not None and method in binding.methods):
            self.mutate(name, cell, line, alias=False)

    def load(self, name: str, cell: int, line: int) -> None:
        local = self.local.get(name)
        if local is not None:
            if local.kind == "def" and isinstance(local.obj, Definition):
                self.expand(local.obj, cell, line)
            if local.definite:
                return
        binding = self.linker.bindings.get(name)
        if binding is None:
            if local is not None or name in _AMBIENT or name in self.deleted:
                if name in self.deleted and local is None:
                    self.undefined(name, cell, line, deleted=True)
                return
            # Assumed to come from a star import: replay them all (they are cheap).
            for star in self.linker.star_imports:
                self.imports.setdefault(id(star), star)
            if self.linker.dynamic_producers:
                self.reads.setdefault(name, (self.linker.dynamic_producers[-1], cell, line))
            elif not self.linker.star_imports:
                self.undefined(name, cell, line)
            return
        if binding.kind == "import" and isinstance(binding.obj, Import):
            self.imports.setdefault(id(binding.obj), binding.obj)
        elif binding.kind == "def" and isinstance(binding.obj, Definition):
            self.definitions.setdefault(id(binding.obj), binding.obj)
            self.expand(binding.obj, cell, line)
        elif binding.kind == "param":
            self.params.setdefault(name, None)
        elif binding.producer is not None:
            self.reads.setdefault(name, (binding.producer, cell, line))
            if binding.bound and name not in self.bound_reads:
                self.bound_reads.add(name)
                made_cell, made_line = binding.where
                self.linker.diagnostics.append(
                    Diagnostic(
                        "warning", "CP309",
                        f"step {self.name!r} reads {name!r}, which step {binding.producer!r} "
                        f"leaves as {binding.bound} (cell {made_cell + 1}, line {made_line}): "
                        "it cannot be passed between steps, so this step will fail",
                        cell=cell, line=line, step=self.name, variable=name,
                        hint=f"make {name!r} again in step {self.name!r} (re-open the file, "
                        f"reconnect), or keep what you need from it in a plain variable in "
                        f"step {binding.producer!r}",
                    )
                )

    def expand(self, definition: Definition, cell: int, line: int) -> None:
        """A reference to a notebook function: its globals are read, its effects happen."""
        key = id(definition)
        # Once per step: a second reference reads nothing new (names the step assigned in
        # between are local, which only removes reads), and without this the walk is
        # exponential in the depth of the call graph.
        if key in self.expanding or key in self.expanded:
            return
        self.expanding.add(key)
        self.expanded.add(key)
        if definition.scope.dynamic and key not in self.dynamic_definitions:
            self.dynamic_definitions.add(key)
            for what, dynamic_line in definition.scope.dynamic:
                self.mark_dynamic(what, definition.cell, dynamic_line)
        try:
            for free in sorted(definition.scope.free):
                if free != definition.name:
                    self.load(free, cell, line)
            for name in sorted(definition.scope.global_writes):
                self.writes.setdefault(name, None)
                self.local.setdefault(name, _Binding("value", definite=False))
            for name in sorted(definition.scope.global_mutations):
                self.mutate(name, cell, line, alias=False)
            if definition.scope.draws_random:
                self.draw_random(cell, line)
        finally:
            self.expanding.discard(key)

    def store(self, event: Event, cell: int) -> None:
        name = event.name
        if event.binding == "confirm":
            if name in self.local:
                self.local[name].definite = True
            return
        if event.binding == "demote":
            if name in self.local:
                self.local[name].definite = False
            return
        if isinstance(event.binding, Import):
            self.local[name] = _Binding("import", self.name, event.binding, event.definite)
            self.writes.pop(name, None)
            return
        if isinstance(event.binding, Definition):
            self.local[name] = _Binding("def", self.name, event.binding, event.definite)
            self.writes.pop(name, None)
            return
        stateful, bound, methods = False, None, frozenset[str]()
        if event.made_by:
            maker = self.definition_of(event.made_by)
            if maker is not None and maker.scope.generator:
                stateful, bound = True, "a generator"
            elif maker is not None:
                methods = maker.scope.mutating_methods
            else:
                stateful = stateful_maker(event.made_by)
                bound = process_bound_maker(event.made_by)
        elif event.source:
            origin = self.binding_of(event.source)
            if origin is not None and origin.kind == "value":
                stateful, bound, methods = origin.stateful, origin.bound, origin.methods
        path = event.path
        if path is None and event.source:
            origin = self.binding_of(event.source)
            path = origin.path if origin is not None else None
        self.local[name] = _Binding("value", self.name, None, event.definite, event.alias,
                                    stateful=stateful, bound=bound, where=(cell, event.line),
                                    methods=methods, path=path)
        self.writes[name] = None
        self.write_cells[name] = cell
        self.deleted.discard(name)
        self.groups.pop(name, None)  # rebound: no longer shares the objects it held
        if event.shares:
            # ``combine = [train_df, test_df]``: the names share objects from now on.
            members = {name}
            for held in event.shares:
                origin = self.binding_of(held)
                if held != name and origin is not None and origin.kind == "value":
                    members |= self.group_of(held) | {held}
            # A container of many names is an aggregate of results (scores = [s1, …, s500]),
            # not the alias idiom; keeping those together would export them all again.
            if 1 < len(members) <= MAX_SHARED_GROUP:
                for member in members:
                    self.groups[member] = frozenset(members)

    def mutate(self, name: str, cell: int, line: int, alias: bool) -> None:
        self.write_cells[name] = cell
        local = self.local.get(name)
        if local is not None:
            if local.kind == "value" and (alias or local.alias) and self.unprovable is None:
                self.unprovable = (cell, line)
            if local.definite or name not in self.linker.bindings:
                return
        binding = self.linker.bindings.get(name)
        if binding is None or binding.kind in ("import", "def"):
            self.load(name, cell, line)  # reports an undefined name; modules are not data
            return
        self.load(name, cell, line)
        self.mutated[name] = None
        if alias and self.unprovable is None:
            self.unprovable = (cell, line)

    def definition_of(self, name: str) -> Definition | None:
        """The notebook function or class ``name`` is bound to here, if any."""
        target = self.local.get(name) or self.linker.bindings.get(name)
        return target.obj if target is not None and isinstance(target.obj, Definition) else None

    def call(self, event: Event, code: CellCode) -> None:
        target = self.binding_of(event.name)
        if (target is not None and target.kind == "import" and isinstance(target.obj, Import)
                and target.obj.source.startswith(_RNG_IMPORT)
                and event.name not in _RNG_IMPORT_SAFE):
            if event.name == "seed":
                self.seed_random(code.index, event.line)
            else:
                self.draw_random(code.index, event.line)
        definition = self.definition_of(event.name)
        if definition is None:
            return
        scope = definition.scope
        keywords = dict(event.keywords)
        for index in sorted(self.mutated_params(definition, frozenset())):
            if index < scope.positional and index < len(event.args):
                name = event.args[index]
            else:
                name = keywords.get(scope.params[index]) if index < len(scope.params) else None
            if name:
                self.mutate(name, code.index, event.line, alias=False)

    def mutated_params(self, definition: Definition, seen: frozenset[int]) -> set[int]:
        """Parameters a function changes in place, itself or through functions it calls.

        Memoized per step so shared callees are walked once; inside a cycle of mutually
        recursive functions the answer is what the walk found before closing the cycle.
        """
        cached = self.param_mutation_cache.get(id(definition))
        if cached is not None:
            return cached
        scope = definition.scope
        found = set(scope.param_mutations)
        for callee_name, slot, index in sorted(scope.param_passes, key=repr):
            callee = self.definition_of(callee_name)
            if index in found or callee is None or id(callee) in seen:
                continue
            params = callee.scope.params
            if isinstance(slot, int):
                position = slot if slot < callee.scope.positional else None
            else:
                position = params.index(slot) if slot in params else None
            changed = self.mutated_params(callee, seen | {id(definition)})
            if position is not None and position in changed:
                found.add(index)
        self.param_mutation_cache[id(definition)] = found
        return found

    def undefined(self, name: str, cell: int, line: int, deleted: bool = False) -> None:
        known = set(self.linker.bindings) | set(self.local)
        suggestion = did_you_mean(name, known)
        message = (
            f"{name!r} is read here but was deleted earlier in step {self.name!r}"
            if deleted
            else f"{name!r} is read in step {self.name!r} but no earlier cell defines it"
        )
        self.linker.diagnostics.append(
            Diagnostic(
                "error", "CP301", message, cell=cell, line=line, step=self.name, variable=name,
                hint=suggestion or "define it in an earlier cell (or the parameters cell), "
                "or move this cell below the one that defines it",
            )
        )

    def finish(self) -> Step:
        linker = self.linker
        if self.unprovable is not None:
            cell, line = self.unprovable
            values = [
                n for n, b in linker.bindings.items() if n in self.reads and b.kind == "value"
            ]
            for name in values:
                self.mutated.setdefault(name, None)
                self.write_cells[name] = max(self.write_cells.get(name, cell), cell)
            if values:
                linker.diagnostics.append(
                    Diagnostic(
                        "info", "CP306",
                        f"step {self.name!r} changes an object that may be shared with other "
                        "names; "
                        f"every value it read ({', '.join(sorted(values))}) is exported again",
                        cell=cell, line=line, step=self.name,
                        hint="copy before changing (d = d.copy()) to keep the exports small",
                    )
                )
        if self.dynamic:
            for name, binding in linker.bindings.items():
                if name == RANDOM_STATE:
                    continue
                if binding.kind == "value" and binding.producer and name not in self.local:
                    self.reads.setdefault(name, (binding.producer, self.plan.first_cell, 1))
                elif binding.kind == "param":
                    self.params.setdefault(name, None)
            self.writes[DYNAMIC_NAMES] = None
        for pattern in self.plan.settings.get("inputs", []):
            self.declared_input(pattern)
        outputs = dict.fromkeys([*self.writes, *self.mutated])
        for name in self.deleted - set(self.local):
            outputs.pop(name, None)
        self.keep_groups_together(outputs)
        linker.alias_groups = {n: g for n, g in self.groups.items() if n not in self.deleted}
        # Parameters reassigned here: later steps read this step's value.
        for name in outputs:
            if name in linker.bindings and linker.bindings[name].kind == "param":
                linker.diagnostics.append(
                    Diagnostic(
                        "info", "CP203",
                        f"step {self.name!r} changes parameter {name!r}; later steps read the "
                        "changed value",
                        cell=self.plan.first_cell, step=self.name, variable=name,
                    )
                )
        last_cell = max(c.index for c in self.plan.cells) if self.plan.cells else None
        for name, binding in self.local.items():
            if binding.kind in ("import", "def"):
                linker.bindings[name] = _Binding(binding.kind, self.name, binding.obj,
                                                 cell=last_cell)
        for name in outputs:
            before = self.local.get(name) or linker.bindings.get(name)
            linker.bindings[name] = _Binding(
                "value", self.name,
                stateful=bool(before and before.stateful),
                methods=before.methods if before is not None else frozenset(),
                path=before.path if before is not None else None,
                bound=before.bound if before is not None and name in self.local else None,
                where=before.where if before is not None else (self.plan.first_cell, 1),
                cell=last_cell,
            )
        for name in self.deleted - set(self.local):
            linker.bindings.pop(name, None)
        if self.dynamic:
            linker.dynamic_producers.append(self.name)

        own_cells = {c.index for c in self.plan.cells}
        for code in self.plan.cells:
            linker.setup.extend(s for s in code.setup if s not in linker.setup)
        if self.rng_lines:
            cell, line = self.rng_lines[0]
            linker.rng_users.append((self.name, cell, line))
        linker.file_writers.extend((path, self.name) for path in self.file_writes)
        linker.file_kinds.update(((path, self.name), kind)
                                 for path, kind in self.file_writes.items())
        linker.file_readers.extend((path, self.name) for path in self.file_reads)
        imports = sorted(
            (i for i in self.imports.values() if i.cell not in own_cells),
            key=lambda i: (i.cell, i.line),
        )
        definitions = sorted(
            (d for d in self.definitions.values() if d.cell not in own_cells),
            key=lambda d: (d.cell, d.line),
        )
        requirements = [r for code in self.plan.cells for r in code.requirements]
        metrics = tuple(n for n, s in linker.plan.metrics if s == self.name)
        return Step(
            name=self.name,
            cells=tuple(zip([c.index for c in self.plan.cells], self.plan.cell_ids, strict=True)),
            sources=tuple(c.source for c in self.plan.cells),
            upstream=(),
            reads={n: p for n, (p, _, _) in sorted(self.reads.items())},
            parameters=tuple(sorted(self.params)),
            writes=tuple(sorted(outputs)),
            mutates=tuple(sorted(n for n in self.mutated if n in outputs)),
            imports=tuple(dict.fromkeys(i.source for i in imports)),
            definitions=tuple(dict.fromkeys(d.source for d in definitions)),
            setup=tuple(self.setup),
            settings=dict(sorted(self.plan.settings.items())),
            requirements=tuple(dict.fromkeys(requirements)),
            metrics=metrics,
            dynamic=self.dynamic,
            metrics_cells=tuple(self.plan.metrics_cells),
            random_state=self.random_state,
            write_cells={n: c for n, c in self.write_cells.items() if n in outputs},
            file_reads=dict(sorted(self.file_reads.items())),
            file_writes=tuple(self.file_writes),
            file_order={s: tuple(sorted(p)) for s, p in sorted(self.file_order.items())},
        )


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

