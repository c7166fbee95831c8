"""What a run logs besides numbers: the steps' files staged for upload, and the git commit."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cellpipe.core.layout import LOG_FILE, REPORT_NOTEBOOK, StepLayout, StepOutputs

STEPS_PREFIX = "steps"


def stage_step(step_dir: Path, stage: Path, step: str) -> list[str]:
    """Copy a step's report (notebook and HTML), figures (PNG) and log under ``stage``.

    The HTML is nbconvert's when it is installed, else cellpipe's plain page; the figures
    are the PNG images the step's cells displayed (what cluster UIs show, see
    :func:`cellpipe.runtime.artifacts.write_artifacts`). Returns the staged files' names.
    """
    from cellpipe.runtime.artifacts import write_artifacts

    files = StepLayout(step_dir)
    if not files.report.is_file() and not files.log.is_file():
        return []
    stage.mkdir(parents=True, exist_ok=True)
    if files.report.is_file():
        result: dict[str, Any] = {}
        if files.result.is_file():
            try:
                result = json.loads(files.result.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                result = {}
        write_artifacts(step_dir, StepOutputs(stage), step, result)
        shutil.copyfile(files.report, stage / REPORT_NOTEBOOK)
    if files.log.is_file():
        shutil.copyfile(files.log, stage / LOG_FILE)
    return sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())


def git_tags(directory: Path, notebook: Path | None = None) -> dict[str, str]:
    """MLflow's source tags for the git checkout ``directory`` is in ({} outside one).

    ``mlflow.source.git.commit`` (HEAD), ``mlflow.source.git.repoURL`` (the ``origin``
    remote, when set), ``cellpipe.git.dirty`` (the work tree has changes) and
    ``cellpipe.git.notebook_changed`` (the notebook itself differs from HEAD).
    """
    commit = _git(directory, "rev-parse", "HEAD")
    if not commit:
        return {}
    tags = {"mlflow.source.git.commit": commit}
    remote = _git(directory, "remote", "get-url", "origin")
    if remote:
        tags["mlflow.source.git.repoURL"] = remote
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    tags["cellpipe.git.dirty"] = "true" if status else "false"
    if notebook is not None:
        changed = _git(directory, "status", "--porcelain", "--", str(notebook))
        tags["cellpipe.git.notebook_changed"] = "true" if changed else "false"
    return tags


def _git(directory: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
