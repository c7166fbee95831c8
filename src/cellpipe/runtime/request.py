"""What a step's run is asked to do, and the exit codes that say whose fault a failure is.

``EXIT_USER`` (1) when the step's own code raised or left a value that cannot be passed on,
``EXIT_INFRA`` (2) when cellpipe or its surroundings failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cellpipe.core.spec import PipelineSpec

EXIT_OK = 0

EXIT_USER = 1

EXIT_INFRA = 2

@dataclass(frozen=True)
class StepRequest:
    """What the runtime needs to run one step.

    Attributes:
        spec: The pipeline spec (a step's slice of it, usually).
        step: Name of the step to run.
        store: Where artifacts live (a directory or fsspec URL).
        parameters: Values of the run's parameters (JSON data).
        step_dir: Where the step's result, report and outputs listing are written.
        input_stores: Per producing step, the store to read its artifacts from, when it
            differs from ``store`` (cache hits reuse another run's artifacts).
        runtime: ``ipython`` (an IPython shell in this process, the default) or ``kernel``
            (the step as a notebook in a Jupyter kernel, through papermill).
        carry_files: How files travel between steps that share no folder (clusters):
            ``""`` not at all (one folder), ``"store"`` through the store (the files the
            step reads from earlier steps are restored first, those it writes saved after
            it), ``"workflow"`` as the workflow's own artifacts for literal paths (Argo
            places them; the runtime records and checks their sha256) and through the
            store for patterns.
        artifacts_dir: Where the step leaves what a cluster's UI shows (its outputs
            directory, ``--artifacts``): the report as HTML, figures, classification
            metrics, models (:mod:`cellpipe.runtime.artifacts`); ``""`` for none.
    """

    spec: PipelineSpec
    step: str
    store: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    step_dir: str = "."
    input_stores: Mapping[str, str] = field(default_factory=dict)
    runtime: str = "ipython"
    carry_files: str = ""
    artifacts_dir: str = ""

