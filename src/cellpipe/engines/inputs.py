"""What a step's result depends on besides its code, values and parameters.

The files it reads (external inputs, or files an earlier step wrote), the source of the
notebook's own modules it imports (transitively), and the versions of the distributions
behind its imports (plus Python's). These go into the step's cache key, so a changed data
file, helper module or library reruns exactly the steps that use it, with a reason that
says which.

File contents are hashed once per run and remembered across runs by (size, mtime_ns), so
an unchanged large file is not read again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from cellpipe.core.analysis import imported_modules
from cellpipe.core.atomic import write_text_atomic
from cellpipe.core.layout import ROOT_NAME
from cellpipe.core.spec import StepSpec
from cellpipe.marshal.hashing import ALGORITHM, file_digest

_CHUNK = 8 * 1024 * 1024
# Files in these folders are cellpipe's own or caches, never a step's input.
_IGNORED_PARTS = frozenset({ROOT_NAME, "__pycache__", ".ipynb_checkpoints", ".git"})


class FileHashes:
    """Content hashes of files, computed once per run and remembered by (size, mtime_ns)."""

    def __init__(self, root: Path, notebook_dir: Path) -> None:
        self.path = Path(root) / "cache" / "files.json"
        self.notebook_dir = Path(notebook_dir)
        try:
            self.known: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    def files(self, pattern: str) -> list[Path]:
        """The files a path pattern names (a file, a glob, or every file in a folder)."""
        base = Path(os.path.expanduser(pattern))
        full = base if base.is_absolute() else self.notebook_dir / base
        if any(c in pattern for c in "*?["):
            found = [Path(p) for p in glob.glob(str(full), recursive=True)]
        else:
            found = [full]
        files: list[Path] = []
        for path in found:
            if path.is_dir():
                files.extend(p for p in path.rglob("*") if p.is_file()
                             and not _IGNORED_PARTS & set(p.parts))
            elif path.is_file():
                files.append(path)
        return sorted(files)

    def digest(self, path: Path) -> str:
        """The file's digest (remembered while its size, mtime, ctime and inode are unchanged).

        BLAKE3 (the artifacts' algorithm), read once through a memory map on all cores.
        """
        try:
            found = path.stat()
        except OSError:
            return "missing"
        identity = [found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino]
        key = str(path.resolve())
        known = self.known.get(key)
        if known and known[:4] == identity and known[4] == ALGORITHM:
            return str(known[5])
        try:
            value, _ = file_digest(path, ALGORITHM)
        except OSError:
            return "missing"
        self.known[key] = [*identity, ALGORITHM, value]
        self.changed = True
        return value

    def of(self, patterns: Iterable[str]) -> dict[str, str]:
        """Each file the patterns name (relative to the notebook) → its digest."""
        found: dict[str, str] = {}
        for pattern in patterns:
            files = self.files(pattern)
            if not files:
                found[pattern] = "missing"
            for path in files:
                try:
                    name = str(path.relative_to(self.notebook_dir))
                except ValueError:
                    name = str(path)
                found[name] = self.digest(path)
        return dict(sorted(found.items()))

    def save(self) -> None:
        """Remember the hashes for the next run."""
        if self.changed:  # a memo: lost on a power loss, it is computed again
            write_text_atomic(self.path, json.dumps(self.known, sort_keys=True), durable=False)
            self.changed = False


def step_imports(step: StepSpec) -> set[str]:
    """Top-level modules a step imports (its cells, replayed imports and definitions)."""
    modules: set[str] = set()
    for cell in step.cells:
        modules.update(module for module, _ in imported_modules(cell.source))
    for statement in [*step.imports, *step.definitions]:
        modules.update(module for module, _ in imported_modules(statement))
    return modules


def local_modules(modules: Iterable[str], search: list[Path]) -> dict[str, str]:
    """The notebook's own modules among ``modules``, transitively: name → sha256 of source.

    A module is the notebook's own when it is a ``.py`` file or a package folder in one of
    ``search`` (the notebook's folder and its ``sys.path`` additions).
    """
    found: dict[str, str] = {}
    todo = sorted(set(modules))
    while todo:
        module = todo.pop()
        if module in found or module in sys.stdlib_module_names:
            continue
        files = _module_files(module, search)
        if not files:
            continue
        digest = hashlib.sha256()
        for path in files:
            source = path.read_bytes()
            digest.update(path.name.encode() + b"\0" + source)
            todo.extend(m for m, _ in imported_modules(source.decode("utf-8", "replace")))
        found[module] = digest.hexdigest()
    return dict(sorted(found.items()))


def _module_files(module: str, search: list[Path]) -> list[Path]:
    for folder in search:
        single = folder / f"{module}.py"
        if single.is_file():
            return [single]
        package = folder / module
        if (package / "__init__.py").is_file():
            return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    return []


_SITE_DIRS: dict[tuple[str, ...], list[str]] = {}


def _site_dirs() -> list[str]:
    """The folders on ``sys.path`` that hold installed distributions (``*.dist-info``)."""
    key = tuple(sys.path)
    if key not in _SITE_DIRS:
        found = []
        for entry in dict.fromkeys(key):
            try:
                with os.scandir(entry or ".") as listing:
                    if any(e.name.endswith((".dist-info", ".egg-info")) for e in listing):
                        found.append(entry)
            except OSError:
                continue
        _SITE_DIRS[key] = found
    return _SITE_DIRS[key]


def environment_stamp() -> list[Any]:
    """What changes when a distribution is installed, upgraded or removed.

    ``sys.path`` itself, and the modification times of its folders that hold
    distributions (a new ``*.dist-info`` changes its folder's). Other folders on it (the
    current one, a script's) change for other reasons and are left out.
    """
    stamp: list[Any] = [list(sys.path)]
    for entry in _site_dirs():
        try:
            stamp.append([entry, os.stat(entry).st_mtime_ns])
        except OSError:
            continue
    return stamp


def _scan_distributions() -> dict[str, dict[str, str]]:
    """Top-level module → {distribution (as its metadata names it): version}."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in versions:
            versions[name.lower()] = dist.version
    return {module: {d: versions[d.lower()] for d in dict.fromkeys(dists)
                     if d.lower() in versions}
            for module, dists in metadata.packages_distributions().items()}


# (stamp, map) of the last scan in this process: one tuple, replaced whole, so runs in
# threads of one process never see a stamp without its map.
_DISTRIBUTIONS: list[tuple[list[Any], dict[str, dict[str, str]]]] = []


def module_distributions(cache: Path | None = None) -> Mapping[str, Mapping[str, str]]:
    """Top-level module → the installed distributions providing it, with their versions.

    One scan per environment: it takes ~0.7 s with a hundred distributions (as with
    JupyterLab installed), so the map is kept in this process and in ``cache`` (a file)
    until a folder on ``sys.path`` holding distributions changes. The docker engine pins
    from the same map. Read-only: it is shared.
    """
    stamp = environment_stamp()
    known = _DISTRIBUTIONS[-1] if _DISTRIBUTIONS else None
    if known is not None and known[0] == stamp:
        return known[1]
    if cache is not None:
        try:
            kept = json.loads(cache.read_text(encoding="utf-8"))
            if kept.get("stamp") == stamp and isinstance(kept.get("modules"), dict):
                _DISTRIBUTIONS[:] = [(stamp, kept["modules"])]
                return dict(kept["modules"])
        except (OSError, ValueError):
            pass
    modules = _scan_distributions()
    _DISTRIBUTIONS[:] = [(stamp, modules)]
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(cache, json.dumps({"stamp": stamp, "modules": modules}),
                              durable=False)
        except OSError:
            pass  # a read-only place: scanned again next run
    return modules


def distribution_versions(modules: Iterable[str], cache: Path | None = None) -> dict[str, str]:
    """The installed distributions behind ``modules`` with their versions, and Python's.

    ``cache`` is a file keeping the module → distribution map between runs (see
    :func:`module_distributions`).
    """
    found = {"python": platform.python_version()}
    known = module_distributions(cache)
    for module in sorted(set(modules)):
        found.update((dist.lower(), version) for dist, version in known.get(module, {}).items())
    return dict(sorted(found.items()))


def search_path(notebook_dir: Path, setup: Iterable[str]) -> list[Path]:
    """Where the notebook's own modules are found: its folder, and literal sys.path additions."""
    import ast

    folders = [Path(notebook_dir)]
    for statement in setup:
        try:
            node = ast.parse(statement).body[0]
        except (SyntaxError, IndexError):
            continue
        call = node.value if isinstance(node, ast.Expr) else None
        if not isinstance(call, ast.Call) or not call.args:
            continue
        if not ast.unparse(call.func).startswith("sys.path."):
            continue
        argument = call.args[-1]
        if isinstance(argument, ast.Call) and argument.args:  # os.path.abspath("lib")
            argument = argument.args[0]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            folder = Path(os.path.expanduser(argument.value))
            folders.append(folder if folder.is_absolute() else Path(notebook_dir) / folder)
    return folders
