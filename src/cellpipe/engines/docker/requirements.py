"""What each step's image must hold: distributions pinned from the notebook's environment.

A step needs the distributions behind its own imports, its ancestors' imports (the values
it receives were made with those libraries, and unpickling them imports them again) and
every import above it in the notebook (run top to bottom, those modules are loaded when it
runs, and libraries rely on that for their optional imports), plus what cellpipe's runtime
needs, plus what the marshal formats need to read those values back (pyarrow for frames).
Modules are mapped to distributions with ``importlib.metadata.packages_distributions``
and pinned to the versions installed here;
the stdlib is left out; the closure of their requirements (markers evaluated for this
interpreter) is pinned the same way, so an image holds exactly what the notebook ran with.

A user's override (``metadata.cellpipe.requirements`` in the notebook, or a requirements
file) wins: an exact pin replaces the found version, a name not found is added to every
step. An import that maps to no installed distribution is reported (lint CP501).
"""

from __future__ import annotations

import graphlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from cellpipe.core.analysis import imported_modules
from cellpipe.core.spec import PipelineSpec, StepSpec
from cellpipe.errors import CellpipeError

# What ``python -m cellpipe.runtime`` imports: the shell, the report, the spec check,
# the fallback serializer. cellpipe itself goes in as a wheel built from this install.
RUNTIME_DISTRIBUTIONS = ("ipython", "nbformat", "cloudpickle", "blake3")
# Marshal formats that read a library's values with another library.
FORMAT_COMPANIONS = {"pandas": ("pyarrow",), "polars": ("pyarrow",)}
# Never pinned into an image: cellpipe comes as its own wheel, pip tooling is the venv's.
NOT_PINNED = frozenset({"cellpipe", "pip", "setuptools", "wheel"})


@dataclass(frozen=True)
class StepRequirements:
    """One step's image contents.

    Attributes:
        step: The step's name.
        pins: Canonical distribution name → exact version (the whole closure).
        loose: Requirement strings for packages not installed here (from ``!pip install``
            lines or the override), resolved when their wheels are downloaded.
        local_modules: Top-level names of the notebook's own modules (files beside it)
            the step or its ancestors import; they go into the step's code layer.
        reasons: Canonical name → why it is in (``import pandas``, ``runtime``, …), for
            ``cellpipe build --verbose`` and error messages.
    """

    step: str
    pins: Mapping[str, str]
    loose: tuple[str, ...] = ()
    local_modules: tuple[str, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)

    def key(self) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        """What makes two steps share one dependency layer."""
        return tuple(sorted(self.pins.items())), tuple(sorted(self.loose))


@dataclass(frozen=True)
class UnmappedImport:
    """An import whose module belongs to no installed distribution."""

    module: str
    step: str
    cell: int
    line: int
    found_at: str | None  # where Python finds it, when it is importable but not packaged


def canonical(name: str) -> str:
    """PEP 503 normalized distribution name."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _module_map() -> Mapping[str, Mapping[str, str]]:
    # the map cache keys use (engines.inputs): one scan per environment, kept on disk
    from cellpipe.engines.inputs import module_distributions

    return module_distributions()


@cache
def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cell_modules(cells: Iterable[tuple[int, str]]) -> dict[str, tuple[int, int]]:
    """Module → (cell index, line) of its first import in these (index, source) cells."""
    modules: dict[str, tuple[int, int]] = {}
    for index, source in cells:
        for module, line in imported_modules(source):
            modules.setdefault(module, (index, line))
    return modules


def _step_modules(step: StepSpec) -> dict[str, tuple[int, int]]:
    """Module → (cell index, line) of its first import in the step (replayed imports: -1)."""
    modules = _cell_modules((cell.index, cell.source) for cell in step.cells)
    for statement in list(step.imports) + list(step.definitions):
        for module, _ in imported_modules(statement):
            modules.setdefault(module, (-1, 0))
    return modules


def _is_stdlib(module: str) -> bool:
    return module in sys.stdlib_module_names or module == "__future__"


def _is_local(module: str, notebook_dir: Path | None) -> bool:
    if notebook_dir is None:
        return False
    return (notebook_dir / f"{module}.py").is_file() or (
        notebook_dir / module / "__init__.py").is_file()


def unmapped_imports(
    steps: Iterable[tuple[str, Iterable[tuple[int, str]]]], notebook_dir: Path | None
) -> list[UnmappedImport]:
    """Imports that map to no installed distribution (neither stdlib nor beside the notebook).

    Args:
        steps: Each step's name and its (cell index, source) cells.
        notebook_dir: The notebook's directory (its own modules are found there).
    """
    import importlib.util

    found: list[UnmappedImport] = []
    seen: set[str] = set()
    for step_name, cells in steps:
        for module, (cell, line) in _cell_modules(cells).items():
            if module in seen or _is_stdlib(module) or _is_local(module, notebook_dir):
                continue
            if module in _module_map() or cell < 0:
                continue
            seen.add(module)
            try:
                module_spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                module_spec = None
            origin = None
            if module_spec is not None:
                origin = module_spec.origin or ", ".join(module_spec.submodule_search_locations
                                                         or [])
            found.append(UnmappedImport(module, step_name, cell, line, origin))
    return found


def _parse_override(lines: Iterable[str]) -> dict[str, Any]:
    from packaging.requirements import InvalidRequirement, Requirement

    parsed: dict[str, Any] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            raise CellpipeError(f"requirement override {line!r}: pip options are not supported",
                                hint="list one requirement per line, e.g. pandas==2.2.3")
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise CellpipeError(f"requirement override {line!r} is not a requirement: {exc}",
                                hint="write it as pip does, e.g. scikit-learn==1.5.2") from exc
        parsed[canonical(requirement.name)] = requirement
    return parsed


def install_line_requirements(step: StepSpec, notebook_dir: Path | None) -> list[str]:
    """The requirements a step's ``!pip install`` lines name; ``-r FILE`` is read.

    The file is relative to the notebook's directory, as the notebook's own ``!pip``
    runs there; its comments, options and blank lines are left out (nested ``-r`` too).

    Raises:
        CellpipeError: the file named by ``-r`` cannot be read.
    """
    found: list[str] = []
    for item in step.requirements:
        if not item.startswith("-r "):
            found.append(item)
            continue
        name = item[3:].strip()
        path = Path(name) if Path(name).is_absolute() else (notebook_dir or Path.cwd()) / name
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CellpipeError(
                f"step {step.name!r}: '!pip install -r {name}' names a file that cannot "
                f"be read ({exc.strerror})", step=step.name, path=str(path),
                hint="put the requirements file beside the notebook, or list the packages "
                "in the notebook metadata's cellpipe.requirements") from exc
        for line in lines:
            text = line.split(" #", 1)[0].strip()
            if text and not text.startswith(("#", "-")):
                found.append(text)
    return found


def read_requirements_file(path: str | Path) -> list[str]:
    """Lines of a requirements file (a clear error when it cannot be read)."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CellpipeError(f"cannot read the requirements file {path}: {exc.strerror}",
                            hint="pass an existing file to --requirements") from exc


def _closure(roots: Mapping[str, str], extras: Mapping[str, set[str]] | None = None
             ) -> tuple[dict[str, str], dict[str, str]]:
    """Pin ``roots`` and everything they require here, transitively; returns (pins, reasons)."""
    from packaging.requirements import InvalidRequirement, Requirement

    pins: dict[str, str] = {}
    reasons: dict[str, str] = {}
    wanted_extras: dict[str, set[str]] = {name: set((extras or {}).get(name, ()))
                                          for name in roots}
    todo = [(name, why) for name, why in roots.items()]
    done_extras: dict[str, set[str]] = {}
    while todo:
        name, why = todo.pop()
        version = _installed_version(name)
        if version is None:
            continue
        key = canonical(name)
        extras_now = wanted_extras.get(key, set()) | wanted_extras.get(name, set())
        if key in pins and extras_now <= done_extras.get(key, set()):
            continue
        if key not in NOT_PINNED:
            pins[key] = version
            reasons.setdefault(key, why)
        done_extras[key] = done_extras.get(key, set()) | extras_now
        for line in metadata.requires(name) or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in (extras_now or {""})
            ):
                continue
            dep = canonical(requirement.name)
            if requirement.extras:
                wanted_extras.setdefault(dep, set()).update(requirement.extras)
            if dep not in pins or not wanted_extras.get(dep, set()) <= done_extras.get(dep, set()):
                todo.append((requirement.name, f"required by {key}"))
    return pins, reasons


def step_requirements(
    spec: PipelineSpec,
    notebook_dir: Path | None = None,
    override: Sequence[str] = (),
) -> dict[str, StepRequirements]:
    """Each step's pinned requirements (see the module docstring).

    Args:
        spec: The pipeline spec.
        notebook_dir: The notebook's directory (its own modules are found there).
        override: Extra requirement lines (a requirements file); they win over both the
            notebook metadata's override and the found pins.
    """
    overrides = _parse_override(list(spec.pipeline.requirements or ()))
    overrides.update(_parse_override(override))
    steps = {step.name: step for step in spec.steps}
    # A step carries its own imports and, through its upstream steps, its ancestors': built
    # once per step in dependency order instead of walking every step's ancestors again.
    carried: dict[str, dict[str, str]] = {}
    for name in graphlib.TopologicalSorter(
            {n: s.upstream for n, s in steps.items()}).static_order():
        modules = {module: f"step {name}" for module in _step_modules(steps[name])}
        for upstream in steps[name].upstream:
            for module, source in carried[upstream].items():
                modules.setdefault(module, source)
        carried[name] = modules
    closures: dict[frozenset[tuple[str, str]], tuple[dict[str, str], dict[str, str]]] = {}

    def closure(roots: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        key = frozenset(roots.items())  # steps mostly share their roots: walk them once
        if key not in closures:
            closures[key] = _closure(roots)
        pins, reasons = closures[key]
        return dict(pins), dict(reasons)

    result: dict[str, StepRequirements] = {}
    for name, step in steps.items():
        modules = dict(carried[name])
        last_cell = step.last_cell
        for item in spec.pipeline.imports or ():
            if item.cell <= last_cell:  # imported above it when run top to bottom
                modules.setdefault(item.module, f"cell {item.cell + 1}")
        roots: dict[str, str] = {dist: "runtime" for dist in RUNTIME_DISTRIBUTIONS}
        local: list[str] = []
        for module, source in sorted(modules.items()):
            if _is_stdlib(module):
                continue
            if _is_local(module, notebook_dir):
                local.append(module)
                continue
            for dist in _module_map().get(module, []):
                roots.setdefault(dist, f"import {module} ({source})")
        loose: list[str] = []
        for requirement in install_line_requirements(step, notebook_dir):  # !pip install
            from packaging.requirements import InvalidRequirement, Requirement

            try:
                parsed = Requirement(requirement)
            except InvalidRequirement:
                continue
            if _installed_version(parsed.name) is not None:
                roots.setdefault(parsed.name, f"!pip install {requirement}")
            else:
                loose.append(requirement)
        for dist in list(roots):
            for companion in FORMAT_COMPANIONS.get(canonical(dist), ()):
                if _installed_version(companion) is not None:
                    roots.setdefault(companion, f"reads {dist} values")
        pins, reasons = closure(roots)
        for key, requirement in overrides.items():
            installed = pins.get(key) or _installed_version(key)
            exact = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
            fits = installed is not None and requirement.specifier.contains(
                installed, prereleases=True)
            if (exact and installed is not None) or fits:
                if key not in pins:  # installed but not imported: add it with its closure
                    extra_pins, extra_reasons = closure({key: "requirements override"})
                    for dep, version in extra_pins.items():
                        pins.setdefault(dep, version)
                        reasons.setdefault(dep, extra_reasons[dep])
                if exact:
                    pins[key] = exact[0]
                    reasons[key] = f"requirements override {requirement}"
            else:
                pins.pop(key, None)
                loose.append(str(requirement))
        result[name] = StepRequirements(
            step=name, pins=dict(sorted(pins.items())), loose=tuple(sorted(set(loose))),
            local_modules=tuple(sorted(local)), reasons=reasons,
        )
    return result
