"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    # os.umask can only be read by setting it; do that once, at import (single-threaded).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; the renamed file gets the mode a plain open() would give, so
# a step container running as another user can read the run's spec and parameters.
_FILE_MODE = 0o666 & ~_umask()


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory + rename.

    ``durable`` fsyncs the data before the rename, so a power loss cannot leave the new
    name on an empty file; without it a killed process still leaves the old file or the
    new one (the rename is atomic), which is enough for what is derived again on demand.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as :func:`write_text_atomic` writes text (durably)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
