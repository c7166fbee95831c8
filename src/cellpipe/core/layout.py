"""Where runs live and what a run's folder holds: the one place that knows the names.

::

    $CELLPIPE_HOME, else .cellpipe/ beside the notebook (the "root")
      runs/<run-id>/
        run.json          status, timings, parameters, metrics, each step's state
        events.jsonl      step states appended while the run goes (folded into run.json)
        spec.json         the PipelineSpec the run ran
        parameters.json   the parameter values
        artifacts/        the run's store: <step>/<name>.<ext> + sidecars
        steps/<step>/
          spec.json       the step's slice of the spec
          log.txt         the step's stdout and stderr
          report.ipynb    the step's cells as executed (report.html rendered on demand)
          result.json     what the step's process left (status, outputs, metrics, error)
      cache/              cache entries, the file-hash memo, the distribution map
      tune/
        studies.db        the tuning studies (Optuna's SQLite schema); a trial names its run
        <study>/history.png   the optimization-history plot (cellpipe tune --show)

A step on a cluster also leaves files for the cluster's UI in its outputs directory
(``python -m cellpipe.runtime --outputs-dir DIR``; the rest only with ``--artifacts``)::

    metrics.json          the step's metrics; one file per metric beside it (Argo's parameters)
    report.html           the executed report, rendered
    figures/figure-N.png  each PNG image its cells displayed;  figures.md  them, embedded
    classification.json   its classification metrics (confusion matrices, ROC curves)
    models/<name>/        each model:NAME value, a store of its own: <step>/<name>.<ext> + sidecar

Engines, the runtime, the api and (through the api) the front ends take every path from
here; nothing else joins these names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CACHE_DIR", "EVENTS_FILE", "LOG_FILE", "OUTPUT_CLASSIFICATION",
           "OUTPUT_FIGURES", "OUTPUT_FIGURES_PAGE", "OUTPUT_METRICS", "OUTPUT_MODELS",
           "OUTPUT_REPORT", "PARAMETERS_FILE", "REPORT_HTML", "REPORT_NOTEBOOK", "RESULT_FILE",
           "RUNS_DIR", "RUN_FILE", "SPEC_FILE", "TUNE_DIR", "RunLayout", "StepLayout",
           "StepOutputs", "default_root", "tune_storage"]

ROOT_NAME = ".cellpipe"
RUNS_DIR = "runs"
CACHE_DIR = "cache"
TUNE_DIR = "tune"
STUDIES_FILE = "studies.db"
RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
SPEC_FILE = "spec.json"
PARAMETERS_FILE = "parameters.json"
ARTIFACTS_DIR = "artifacts"
STEPS_DIR = "steps"
LOG_FILE = "log.txt"
REPORT_NOTEBOOK = "report.ipynb"
REPORT_HTML = "report.html"
RESULT_FILE = "result.json"
STEP_FILES = (LOG_FILE, REPORT_NOTEBOOK, REPORT_HTML, RESULT_FILE)  # what a cached step copies
# In a cluster run's object store: each step's result and report, under STORE_STEPS_DIR/<step>/
# (the runtime puts them there; ClusterRun reads them back).
STORE_STEPS_DIR = ".steps"
STORE_STEP_FILES = (RESULT_FILE, REPORT_NOTEBOOK)
# Where a step's image keeps its slice of the spec (docker builds it, Argo's pods read it).
IMAGE_STEP_DIR = "/opt/cellpipe/step"
IMAGE_SPEC = f"{IMAGE_STEP_DIR}/{SPEC_FILE}"
# Where a step's code arrives when every step shares one image (no build): Argo's pods get
# the slice and the start script as input artifacts there.
CARRIED_STEP_DIR = "/cellpipe/step"
CARRIED_SPEC = f"{CARRIED_STEP_DIR}/{SPEC_FILE}"
CARRIED_START = f"{CARRIED_STEP_DIR}/start.py"
# A step's outputs directory (--outputs-dir): what cluster targets publish from it.
OUTPUT_METRICS = "metrics.json"
OUTPUT_REPORT = REPORT_HTML
OUTPUT_FIGURES = "figures"
OUTPUT_FIGURES_PAGE = "figures.md"
OUTPUT_CLASSIFICATION = "classification.json"
OUTPUT_MODELS = "models"


def default_root(notebook: str | Path | None) -> Path:
    """``$CELLPIPE_HOME``, else ``.cellpipe`` beside the notebook (or in the cwd)."""
    home = os.environ.get("CELLPIPE_HOME")
    if home:
        return Path(home)
    base = Path(notebook).resolve().parent if notebook else Path.cwd()
    return base / ROOT_NAME


def tune_storage(root: str | Path) -> Path:
    """The SQLite file of the tuning studies under the root ``root``."""
    return Path(root) / TUNE_DIR / STUDIES_FILE


@dataclass(frozen=True)
class StepLayout:
    """The files of one step of one run (``runs/<id>/steps/<step>/``)."""

    path: Path

    @property
    def spec(self) -> Path:
        """The step's slice of the spec."""
        return self.path / SPEC_FILE

    @property
    def log(self) -> Path:
        """The step's stdout and stderr."""
        return self.path / LOG_FILE

    @property
    def report(self) -> Path:
        """The step's cells as executed."""
        return self.path / REPORT_NOTEBOOK

    @property
    def report_html(self) -> Path:
        """The report rendered as HTML (on demand)."""
        return self.path / REPORT_HTML

    @property
    def result(self) -> Path:
        """What the step's process left."""
        return self.path / RESULT_FILE


@dataclass(frozen=True)
class StepOutputs:
    """What a step leaves in its outputs directory for a cluster (``--outputs-dir``)."""

    path: Path

    @property
    def metrics(self) -> Path:
        """All its metrics, as one JSON object."""
        return self.path / OUTPUT_METRICS

    def metric(self, name: str) -> Path:
        """One metric's value (JSON): an Argo output parameter reads it."""
        return self.path / name

    @property
    def report(self) -> Path:
        """Its executed report, rendered as HTML."""
        return self.path / OUTPUT_REPORT

    @property
    def figures(self) -> Path:
        """The folder of the PNG images its cells displayed (``figure-1.png``, …)."""
        return self.path / OUTPUT_FIGURES

    def figure(self, number: int) -> Path:
        """Figure ``number`` (from 1)."""
        return self.figures / f"figure-{number}.png"

    @property
    def figures_page(self) -> Path:
        """A Markdown page with every figure embedded."""
        return self.path / OUTPUT_FIGURES_PAGE

    @property
    def classification(self) -> Path:
        """Its classification metrics: name → confusion matrix or ROC curve (JSON)."""
        return self.path / OUTPUT_CLASSIFICATION

    def model(self, name: str) -> Path:
        """The store that holds model ``name`` (``<step>/<name>.<ext>`` and its sidecar)."""
        return self.path / OUTPUT_MODELS / name


@dataclass(frozen=True)
class RunLayout:
    """The files of one run (``runs/<id>/``)."""

    path: Path

    @classmethod
    def of(cls, root: str | Path, run_id: str) -> RunLayout:
        """The layout of run ``run_id`` under the root ``root``."""
        return cls(Path(root) / RUNS_DIR / run_id)

    @property
    def record(self) -> Path:
        """``run.json``."""
        return self.path / RUN_FILE

    @property
    def events(self) -> Path:
        """``events.jsonl``."""
        return self.path / EVENTS_FILE

    @property
    def spec(self) -> Path:
        """The spec the run ran."""
        return self.path / SPEC_FILE

    @property
    def parameters(self) -> Path:
        """The run's parameter values."""
        return self.path / PARAMETERS_FILE

    @property
    def artifacts(self) -> Path:
        """The run's artifact store."""
        return self.path / ARTIFACTS_DIR

    def step(self, name: str) -> StepLayout:
        """The files of step ``name``."""
        return StepLayout(self.path / STEPS_DIR / name)
