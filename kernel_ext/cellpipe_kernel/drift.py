"""Whether the saved notebook differs from what this kernel ran.

``%cellpipe lint`` and ``%cellpipe run`` read the *saved* file, so a cell edited and run
but not saved, or saved but not run again, makes the pipeline compute something else
than the kernel holds. Cell sources are compared, not times alone:

- **Run, not saved**: the kernel remembers when it ran each cell's source (a
  ``post_run_cell`` hook, from ``%load_ext cellpipe`` on). A source it ran *after* the
  file was last written that no saved cell has is an edit the file does not have.
  (Sources run before the last save were either saved or replaced since: not flagged.)
- **Saved, not run**: a saved code cell whose source this kernel never ran (its whole
  input history, also from before ``%load_ext``) was edited after it ran, or never ran.
  This is said only once the kernel has run some of the saved cells: a kernel that ran
  none of them just has not run the notebook, which is no difference worth a note.

Sources are compared with trailing whitespace and blank edge lines ignored; cells that
call ``%cellpipe`` or ``%load_ext`` are left out (they are how the user asks).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat

_EXECUTIONS = "_cellpipe_executions"  # attribute of the shell: [(time, source), ...]
_KEEP = 2000  # executions remembered
_IGNORED = ("%cellpipe", "%load_ext", "%reload_ext")


def normalized(source: str) -> str:
    """A cell's source for comparison: no trailing spaces, no blank first or last lines."""
    return "\n".join(line.rstrip() for line in source.strip("\n").splitlines()).strip("\n")


def _asks(source: str) -> bool:
    return any(word in source for word in _IGNORED)


def remember(shell: Any, source: str, when: float | None = None) -> None:
    """Remember that ``shell`` ran ``source`` (now, or at ``when``)."""
    executions = getattr(shell, _EXECUTIONS, None)
    if executions is None:
        executions = []
        setattr(shell, _EXECUTIONS, executions)
    executions.append((time.time() if when is None else when, source))
    del executions[:-_KEEP]


def install(shell: Any) -> None:
    """Remember every cell ``shell`` runs from now on (once per shell)."""
    if getattr(shell, "_cellpipe_drift_hook", None) is not None:
        return

    def after(result: Any) -> None:
        source = getattr(getattr(result, "info", None), "raw_cell", None)
        if isinstance(source, str):
            remember(shell, source)

    shell.events.register("post_run_cell", after)
    shell._cellpipe_drift_hook = after


def differences(shell: Any, notebook: Path) -> str | None:
    """What differs between the saved ``notebook`` and what ``shell`` ran; None if nothing.

    Returns:
        One sentence per difference, joined (see the module docstring for the rules).
    """
    try:
        nb = nbformat.read(notebook, as_version=4)
        saved_at = notebook.stat().st_mtime
    except Exception:  # not readable: lint/run will say why
        return None
    saved: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        source = normalized(str(cell.get("source", "")))
        if cell.get("cell_type") == "code" and source and not _asks(source):
            saved.setdefault(source, index)
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or []
    executions = getattr(shell, _EXECUTIONS, None) or []
    ran = {normalized(s) for s in history if isinstance(s, str)}
    ran |= {normalized(s) for _, s in executions}
    notes = []
    unsaved = {normalized(s) for when, s in executions if when > saved_at}
    unsaved = {s for s in unsaved if s and not _asks(s) and s not in saved}
    if unsaved:
        notes.append(f"{len(unsaved)} cell(s) run after the notebook was last saved "
                     "are not in the saved file (save it first)")
    if ran & set(saved):
        stale = sorted(index + 1 for source, index in saved.items() if source not in ran)
        if stale:
            cells = ", ".join(map(str, stale[:8])) + (" …" if len(stale) > 8 else "")
            notes.append(f"cell(s) {cells} as saved did not run in this kernel (edited "
                         "since they ran, or never run)")
    return "; ".join(notes) or None


def note(shell: Any, notebook: Path, command: str) -> str | None:
    """The line ``%cellpipe COMMAND`` prints when the file differs from the kernel."""
    found = differences(shell, notebook)
    if found is None:
        return None
    return (f"note: {notebook.name} as saved differs from what this kernel ran: {found}. "
            f"%cellpipe {command} uses the saved file.")
