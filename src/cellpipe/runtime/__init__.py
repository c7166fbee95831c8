"""The step runtime: the one entrypoint that executes a step anywhere.

Load inputs ─▶ run the step's code with IPython semantics ─▶ save outputs, metrics, report.
The same code runs in a local process, a container, an Argo pod and a KFP task
(``python -m cellpipe.runtime``), so a step behaves the same everywhere.
"""

from __future__ import annotations

from cellpipe.runtime.execute import EXIT_INFRA, EXIT_OK, EXIT_USER, StepRequest, run_step

__all__ = ["EXIT_INFRA", "EXIT_OK", "EXIT_USER", "StepRequest", "run_step"]
