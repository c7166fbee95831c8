"""Helpers for the engine tests: counting step executions, runs kept under tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cellpipe import api


def count(path: Path, tag: str) -> str:
    """Code that appends ``tag`` to ``path``: the file says how often each step ran."""
    return f"open({str(path)!r}, 'a').write({tag!r})"


def run(path: Path, tmp_path: Path, *args: Any, **kwargs: Any) -> Any:
    """``cellpipe.run`` with its runs directory under ``tmp_path``."""
    return api.run(path, *args, root=tmp_path / ".cellpipe", **kwargs)
