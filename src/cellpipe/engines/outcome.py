"""How a step ended, read from what it left.

Its result file, and whether saved results can be reused (an artifact torn by a crash or
changed behind cellpipe's back cannot).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellpipe.core.layout import StepLayout
from cellpipe.errors import StepError

__all__ = ["EXIT_NAMES", "damage", "failure_message", "read_result"]

EXIT_NAMES = {0: "succeeded", 1: "failed in the step's code", 2: "failed in cellpipe's runtime"}


def failure_message(outcome: int | str | None, result: Mapping[str, Any],
                    timeout: Any = None, known: str | None = None) -> tuple[str, dict[str, Any]]:
    """(the message, the error record) of a step attempt that did not succeed.

    ``outcome`` is the exit code (negative: the signal), or ``"timeout"``; ``result`` what
    the step's runtime wrote (empty when nothing); ``known`` the engine's own reason (an
    out-of-memory kill) when it has one.
    """
    error: dict[str, Any] = dict(result.get("error") or {})
    if outcome == "timeout":
        message = f"timed out after {timeout} s"
    elif known:
        message = known
    elif isinstance(outcome, int) and outcome < 0:
        message = f"killed by signal {signal.Signals(-outcome).name}"
    elif outcome == 0 and not result:
        # The process ended "successfully" without the runtime writing its result:
        # something ended it early (os._exit, a library calling exit) or it crashed.
        message = ("the step's process exited 0 without writing its result: something "
                   "in the step ended the process early (os._exit(), a library exiting) "
                   "or cellpipe's runtime crashed; see its log")
        error = StepError("infrastructure", message).to_dict()
    else:
        code = outcome if isinstance(outcome, int) else 2
        message = error.get("message") or EXIT_NAMES.get(code, f"exit code {outcome}")
        if error.get("cell") is not None:
            message = f"cell {error['cell'] + 1}" + (
                f", line {error['line']}" if error.get("line") else "") + f": {message}"
    return message, {**error, "message": message}


def damage(store: str, outputs: Mapping[str, Any]) -> str | None:
    """Why a step's saved results cannot be reused (None when they are intact).

    Each artifact's size and digest are checked (a local file nothing has written to
    since it was saved is trusted by its identity): a result torn by a crash, or
    changed behind cellpipe's back, makes the step run again instead of failing its
    readers.
    """
    from cellpipe.marshal import MarshalError, open_store

    try:
        opened = open_store(store)
    except (MarshalError, OSError) as exc:
        return str(exc)
    for meta in outputs.values():
        try:
            opened.verify(meta["step"], meta["name"], full=False)
        except MarshalError as exc:
            return exc.message
        except (KeyError, TypeError):
            return "its record names no artifact"
    return None


def read_result(step_dir: Path) -> dict[str, Any]:
    """What the step's runtime wrote in ``result.json`` (empty when nothing readable)."""
    try:
        text = StepLayout(step_dir).result.read_text(encoding="utf-8")
        data: dict[str, Any] = json.loads(text)
        return data
    except (OSError, json.JSONDecodeError):
        return {}
