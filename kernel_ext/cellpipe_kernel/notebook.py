"""Which notebook "this notebook" is, from inside its kernel.

The magics analyze the *saved* ``.ipynb`` file, so they need its path. ``--notebook PATH``
wins; otherwise the kernel's session says it: ipykernel puts the notebook path into the
user namespace as ``__session__``, and jupyter_server (≥ 2) passes it to the kernels it
starts as the environment variable ``JPY_SESSION_NAME``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellpipe.errors import CellpipeError

SESSION_VARIABLE = "__session__"
SESSION_ENV = "JPY_SESSION_NAME"
_PASS_IT = "pass --notebook PATH"


def find_notebook(user_ns: Mapping[str, Any], given: str | os.PathLike[str] | None = None) -> Path:
    """Return the absolute path of the notebook the magics should read.

    Args:
        user_ns: The kernel's user namespace (where ipykernel puts ``__session__``).
        given: The ``--notebook`` argument, if any; relative to the kernel's cwd.

    Raises:
        CellpipeError: No notebook is named, the session is not a notebook, or the file
            does not exist (yet): the hint says to save it or to pass ``--notebook``.
    """
    if given is not None:
        return _existing(Path(given), "--notebook")
    for origin, session in (
        (SESSION_VARIABLE, user_ns.get(SESSION_VARIABLE)),
        (f"${SESSION_ENV}", os.environ.get(SESSION_ENV)),
    ):
        if isinstance(session, str) and session:
            if not session.endswith(".ipynb"):
                raise CellpipeError(
                    f"this kernel's session {session!r} (from {origin}) is not a notebook",
                    hint=_PASS_IT,
                )
            return _existing(Path(session), origin)
    raise CellpipeError(
        "cannot tell which notebook this kernel runs: it has no Jupyter session",
        hint=_PASS_IT,
    )


def runs_root(notebook: Path) -> Path:
    """Where the runs of ``notebook`` are kept: ``$CELLPIPE_HOME`` or ``.cellpipe`` beside it.

    The same place ``api.run(..., root=None)`` writes to.
    """
    from cellpipe import api

    return api.default_root(notebook)


def _existing(path: Path, origin: str) -> Path:
    path = path.expanduser()
    candidates = [path if path.is_absolute() else Path.cwd() / path]
    if not path.is_absolute():
        # jupyter_server names a session relative to its root when it has no name, while
        # the kernel runs in the notebook's folder: the file name alone is found there.
        candidates.append(Path.cwd() / path.name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    if origin == "--notebook":
        hint = f"check the path; a relative one starts in the kernel's folder, {Path.cwd()}"
    else:
        hint = f"save the notebook first (the magics read the saved file), or {_PASS_IT}"
    raise CellpipeError(f"the notebook {str(path)!r} (from {origin}) does not exist", hint=hint)
