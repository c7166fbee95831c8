"""The local engine: each step a process, independent steps in parallel, cached, resumable."""

from __future__ import annotations

from cellpipe.engines.local.engine import LocalEngine
from cellpipe.engines.runs import RunRecord, RunsDirectory
from cellpipe.engines.scheduler import RunOptions, StepEvent

__all__ = ["LocalEngine", "RunOptions", "RunRecord", "RunsDirectory", "StepEvent"]
