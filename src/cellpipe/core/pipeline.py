"""Linking steps into a DAG: every read comes from the last earlier step that wrote it.

One pass over the plan's units in notebook order keeps, for every name, what last bound
it (a step's value, an import, a definition, a parameter). Each step's events are
replayed against that: a value read becomes a data edge from its producer, an import or
a definition is replayed in the step, a parameter is bound from the run's values.
"""

from __future__ import annotations

import ast
import builtins
import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cellpipe.core.analysis import CellCode, Definition, Event, Import
from cellpipe.core.diagnostics import Diagnostic, did_you_mean
from cellpipe.core.notebook import Notebook
from cellpipe.core.plan import Parameter, Plan, StepPlan

# Names that exist in every IPython session without being defined in the notebook.
_AMBIENT = frozenset(dir(builtins)) | {
    "get_ipython", "display", "In", "Out", "_", "__", "___", "_ih", "_oh", "_dh", "exit",
    "quit", "__name__", "__file__", "__builtins__",
}
# Modules whose global random state makes a step's values depend on earlier steps' draws.
_GLOBAL_RNG = frozenset({"np.random", "numpy.random", "random"})
_RNG_SAFE = {"seed", "default_rng", "RandomState", "Generator", "SeedSequence", "PCG64",
             "get_state", "set_state", "Random"}


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


@dataclass(frozen=True)
class Edge:
    """``source`` → ``target``, carrying ``variables``; ``explicit`` if declared by after:."""

    source: str
    target: str
    variables: tuple[str, ...]
    explicit: bool


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
    kind: str  # value | import | def | param
    producer: str | None = None
    obj: Import | Definition | None = None
    definite: bool = True
    alias: bool = False


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
        self.explain_late_definitions()
        return Pipeline(
            notebook=self.notebook,
            split=self.plan.split,
            steps=tuple(self.steps),
            edges=tuple(edges),
            parameters=tuple(self.plan.parameters),
            metrics=tuple(self.plan.metrics),
            diagnostics=tuple(self.diagnostics),
        )

    def explain_late_definitions(self) -> None:
        """A name read before the step that makes it: say which step, and where it is."""
        first_writer: dict[str, Step] = {}
        for step in self.steps:
            for name in step.writes:
                first_writer.setdefault(name, step)
        for i, diagnostic in enumerate(self.diagnostics):
            writer = first_writer.get(diagnostic.variable or "")
            if diagnostic.code != "CP301" or writer is None or writer.name == diagnostic.step:
                continue
            cell = writer.cells[0][0]
            self.diagnostics[i] = replace(
                diagnostic,
                message=f"{diagnostic.variable!r} is read in step {diagnostic.step!r} before "
                f"step {writer.name!r} (from cell {cell + 1}) assigns it",
                hint=f"move this cell below cell {cell + 1}, or make it part of a step that "
                f"runs after {writer.name!r}",
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
        for step in self.steps:
            for variable, producer in step.reads.items():
                data.setdefault((producer, step.name), set()).add(variable)
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
            ancestors = _closure(explicit)
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
        keys = sorted(set(data) | explicit, key=lambda k: (order[k[1]], order[k[0]]))
        return [
            Edge(s, t, tuple(sorted(data.get((s, t), ()))), (s, t) in explicit) for s, t in keys
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
        names = [s.name for s in self.steps]
        users = sorted({step for step, _, _ in self.rng_users}, key=names.index)
        if len(users) > 1:
            step, cell, line = next(u for u in self.rng_users if u[0] == users[1])
            self.diagnostics.append(
                Diagnostic(
                    "warning", "CP308",
                    f"steps {', '.join(users)} draw from the global random state; in the pipeline "
                    f"each step starts from the seed, so {users[1]!r} sees other numbers than "
                    "top to bottom",
                    cell=cell, line=line, step=step,
                    hint="create a generator per step: rng = np.random.default_rng(seed)",
                )
            )


def _replace(step: Step, **changes: Any) -> Step:
    return replace(step, **changes)


def _closure(edges: set[tuple[str, str]]) -> dict[str, set[str]]:
    parents: dict[str, set[str]] = {}
    for source, target in edges:
        parents.setdefault(target, set()).add(source)
    result: dict[str, set[str]] = {}

    def ancestors(node: str, trail: frozenset[str] = frozenset()) -> set[str]:
        if node in result:
            return result[node]
        found: set[str] = set()
        for parent in parents.get(node, ()):
            if parent not in trail:
                found |= {parent} | ancestors(parent, trail | {node})
        result[node] = found
        return found

    for node in list(parents):
        ancestors(node)
    return result


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

    @property
    def name(self) -> str:
        return self.plan.name

    def event(self, event: Event, code: CellCode) -> None:
        kind = event.kind
        if kind == "load":
            self.load(event.name, code.index, event.line)
        elif kind == "store":
            self.store(event)
        elif kind == "mutate":
            self.mutate(event.name, code.index, event.line, event.alias)
        elif kind == "del":
            self.local.pop(event.name, None)
            self.writes.pop(event.name, None)
            self.mutated.pop(event.name, None)
            self.deleted.add(event.name)
        elif kind == "call":
            self.call(event, code)
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
        """Session setup from earlier cells runs first in the step; resolve what it reads.

        Seeds are replayed only in steps that draw random numbers from a global state.
        """
        uses_rng = any(_rng_call(c) for c in self.plan.cells)
        for statement, names in self.linker.setup:
            if _is_seed(statement) and not uses_rng:
                continue
            self.setup.append(statement)
            for name in names:
                self.load(name, self.plan.first_cell, 1)

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
        finally:
            self.expanding.discard(key)

    def store(self, event: Event) -> None:
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
        self.local[name] = _Binding("value", self.name, None, event.definite, event.alias)
        self.writes[name] = None
        self.deleted.discard(name)

    def mutate(self, name: str, cell: int, line: int, alias: bool) -> None:
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
                if binding.kind == "value" and binding.producer and name not in self.local:
                    self.reads.setdefault(name, (binding.producer, self.plan.first_cell, 1))
                elif binding.kind == "param":
                    self.params.setdefault(name, None)
        outputs = dict.fromkeys([*self.writes, *self.mutated])
        for name in self.deleted - set(self.local):
            outputs.pop(name, None)
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
        for name, binding in self.local.items():
            if binding.kind in ("import", "def"):
                linker.bindings[name] = _Binding(binding.kind, self.name, binding.obj)
        for name in outputs:
            linker.bindings[name] = _Binding("value", self.name)
        for name in self.deleted - set(self.local):
            linker.bindings.pop(name, None)
        if self.dynamic:
            linker.dynamic_producers.append(self.name)

        own_cells = {c.index for c in self.plan.cells}
        for code in self.plan.cells:
            linker.setup.extend(s for s in code.setup if s not in linker.setup)
        self.note_rng()
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
        )

    def note_rng(self) -> None:
        for code in self.plan.cells:
            found = _rng_call(code)
            if found:
                self.linker.rng_users.append((self.name, code.index, found))
                return


def _is_seed(statement: str) -> bool:
    return ".seed(" in statement or statement.startswith(("torch.manual_seed", "tf.random"))


def _rng_call(code: CellCode) -> int:
    """Line of the first draw from a global random state in the cell, or 0 (cached)."""
    if code.rng_line is None:
        code.rng_line = 0
        for node in ast.walk(code.tree) if code.tree is not None else ():
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr not in _RNG_SAFE
                and _dotted(node.func.value) in _GLOBAL_RNG
            ):
                code.rng_line = node.lineno + code.line_offset
                break
    return code.rng_line


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))

