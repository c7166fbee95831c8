"""The end of a step's analysis: what it exports, replays and binds for later steps.

After every event of a step is resolved (:class:`cellpipe.core.resolve.StepAnalyzer`),
this decides the step's reads, writes (names later steps read, with the names sharing
objects with them), imports and definitions to replay, setup, random state and files,
and records the step's bindings in the linker for the steps after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellpipe.core.analysis import (
    DYNAMIC_NAMES,
    RANDOM_STATE,
)
from cellpipe.core.diagnostics import Diagnostic, did_you_mean
from cellpipe.core.linked import Binding, Step

if TYPE_CHECKING:
    from cellpipe.core.resolve import StepAnalyzer

__all__ = ["finish_step"]


def finish_step(self: StepAnalyzer) -> Step:
    """The step as linked: reads, writes, imports, definitions, setup."""
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
            linker.bindings[name] = Binding(binding.kind, self.name, binding.obj,
                                             cell=last_cell)
    for name in outputs:
        before = self.local.get(name) or linker.bindings.get(name)
        linker.bindings[name] = Binding(
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
    if not self.dynamic:
        check_models(self, outputs)
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
        file_lines=dict(sorted(self.file_lines.items())),
        classification=dict(sorted(self.plan.classification.items())),
    )


def check_models(self: StepAnalyzer, outputs: dict[str, None]) -> None:
    """CP312: a ``model:NAME`` the step does not assign (a read one is the producer's)."""
    for name in self.plan.settings.get("model", []):
        if name in outputs:
            continue
        cell = self.plan.model_cells.get(name, self.plan.first_cell)
        if name in self.reads:
            producer = self.reads[name][0]
            self.linker.diagnostics.append(Diagnostic(
                "warning", "CP312",
                f"step {self.name!r} names {name!r} a model but does not assign it: it reads "
                f"the value step {producer!r} made",
                cell=cell, step=self.name, variable=name,
                hint=f"tag the step that makes it (model:{name} on step {producer!r}); here "
                "the model artifact holds the value as this step read it"))
            continue
        self.linker.diagnostics.append(Diagnostic(
            "error", "CP312",
            f"step {self.name!r} names {name!r} a model, but no cell of the step assigns it",
            cell=cell, step=self.name, variable=name,
            hint=did_you_mean(name, {n for n in outputs if n.isidentifier()})
            or f"assign {name} in the step, or remove the model:{name} tag"))
