"""Name resolution inside one step: each event of its cells against what is bound.

A read becomes an edge from the step that last wrote the name, an import or a
definition is replayed, a parameter bound; mutations, deletions, shared objects and the
global random state are tracked so the step exports exactly what later steps read.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cellpipe.core.analysis import (
    RANDOM_STATE,
    CellCode,
    Definition,
    Event,
    Import,
    process_bound_maker,
    stateful_maker,
)
from cellpipe.core.diagnostics import Diagnostic, did_you_mean
from cellpipe.core.file_links import link_declared_input, link_file
from cellpipe.core.linked import Binding, Step
from cellpipe.core.plan import StepPlan
from cellpipe.core.step_exports import finish_step

if TYPE_CHECKING:
    from cellpipe.core.linker import Linker

# Names that exist in every IPython session without being defined in the notebook.
AMBIENT = frozenset(dir(builtins)) | {
    "get_ipython", "display", "In", "Out", "_", "__", "___", "_ih", "_oh", "_dh", "exit",
    "quit", "__name__", "__file__", "__builtins__",
}

# Names held in one container up to which they are kept shared between steps.
MAX_SHARED_GROUP = 32

# ``from numpy.random import normal`` and the like: calling such a name draws.
RNG_IMPORT = ("from numpy.random import", "from random import", "from np.random import")

RNG_IMPORT_SAFE = {"default_rng", "RandomState", "Generator", "SeedSequence", "PCG64",
                    "MT19937", "Random", "SystemRandom", "getstate", "get_state"}


@dataclass
class StepAnalyzer:
    """Name resolution inside one step, against the linker's bindings."""

    linker: Linker
    plan: StepPlan
    local: dict[str, Binding] = field(default_factory=dict)
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
    file_lines: dict[str, tuple[int, int]] = field(default_factory=dict)  # first use

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
        """The step's name."""
        return self.plan.name

    def event(self, event: Event, code: CellCode) -> None:
        """One event of one cell: a load, a store, a delete, a call, an import, a file use."""
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
        self.local[RANDOM_STATE] = Binding("value", self.name, where=(cell, line))
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
        self.local[RANDOM_STATE] = Binding("value", self.name, where=(cell, line))
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
        link_file(self, event, code)

    def declared_input(self, declared: str) -> None:
        """An ``inputs:`` path links to the earlier steps that write into it."""
        link_declared_input(self, declared)

    def binding_of(self, name: str) -> Binding | None:
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
        """A read of ``name``: from this step, an earlier one, a parameter, or undefined."""
        local = self.local.get(name)
        if local is not None:
            if local.kind == "def" and isinstance(local.obj, Definition):
                self.expand(local.obj, cell, line)
            if local.definite:
                return
        binding = self.linker.bindings.get(name)
        if binding is None:
            if local is not None or name in AMBIENT or name in self.deleted:
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
                self.local.setdefault(name, Binding("value", definite=False))
            for name in sorted(definition.scope.global_mutations):
                self.mutate(name, cell, line, alias=False)
            if definition.scope.draws_random:
                self.draw_random(cell, line)
        finally:
            self.expanding.discard(key)

    def store(self, event: Event, cell: int) -> None:
        """An assignment, import or definition binding a name in this step."""
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
            self.local[name] = Binding("import", self.name, event.binding, event.definite)
            self.writes.pop(name, None)
            return
        if isinstance(event.binding, Definition):
            self.local[name] = Binding("def", self.name, event.binding, event.definite)
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
        self.local[name] = Binding("value", self.name, None, event.definite, event.alias,
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
        """An in-place change of ``name``: the step reads it and writes it again."""
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
        """A call: what the callee changes of its arguments, and random draws."""
        target = self.binding_of(event.name)
        if (target is not None and target.kind == "import" and isinstance(target.obj, Import)
                and target.obj.source.startswith(RNG_IMPORT)
                and event.name not in RNG_IMPORT_SAFE):
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
        """CP101: a name read that nothing binds before (with a suggestion)."""
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
        """The step as linked: reads, writes, imports, definitions, setup."""
        return finish_step(self)

