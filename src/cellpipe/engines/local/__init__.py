"""The local engine: each step a process, independent steps in parallel, cached, resumable."""

from __future__ import annotations

from cellpipe.engines.local.engine import LocalEngine, RunOptions, StepEvent
from cellpipe.engines.local.runs import RunRecord, RunsDirectory

__all__ = ["LocalEngine", "RunOptions", "RunRecord", "RunsDirectory", "StepEvent"]
