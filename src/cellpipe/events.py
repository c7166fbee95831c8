"""What progress displays are told: one step's state changed (any engine or cluster target)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepEvent:
    """A change of a step's state, for progress displays (the CLI table, the magics' view).

    ``status`` is one of ``running``, ``succeeded``, ``cached``, ``failed``, ``skipped``,
    ``retrying``, ``cancelled``, ``blocked``. ``run_id`` is the local run's id, or the
    cluster workflow's name.
    """

    run_id: str
    step: str
    status: str
    attempt: int = 1
    elapsed: float = 0.0
    message: str = ""
