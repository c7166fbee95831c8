"""Build contexts: a dependency layer per requirement set, a thin code layer per step.

A dependency image is the base image plus one layer: a venv at ``/opt/cellpipe/venv``
holding the pinned wheels (installed ``--no-index`` from wheels downloaded on the host,
in a throwaway build stage, so no wheel file stays in the image) and a non-root user.
A step image adds one small layer: the step's slice of the spec and the notebook's own
modules it imports. Both are tagged by a hash of everything that goes into them, so an
unchanged step is never rebuilt, and a change in one step's code rebuilds only its layer.

Nothing from the host's environment goes into a context: no environment variables, no
credentials, no notebook outputs (the spec holds cell sources only).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cellpipe.core.layout import IMAGE_STEP_DIR
from cellpipe.core.spec import PipelineSpec

VENV = "/opt/cellpipe/venv"
STEP_DIR = IMAGE_STEP_DIR
USER_ID = 10001
HOME = "/home/cellpipe"
WORKDIR = f"{HOME}/work"
PYTHON_MINOR = "3.11"

_DEPS_DOCKERFILE = """\
# cellpipe dependency layer: generated; the wheels were resolved on the host
FROM {base} AS install
COPY wheels/ /tmp/cellpipe-wheels/
RUN python3 -c "import sys; v = '%d.%d' % sys.version_info[:2]; sys.exit(0 if v == '{python}' \
else 'cellpipe: the base image has Python ' + v + '; the wheels are for Python {python}: use a \
base image with Python {python} (--base-image)')" \\
 && python3 -m venv {venv} \\
 && {venv}/bin/python -m pip install --no-index --no-deps --no-cache-dir \\
      --disable-pip-version-check --quiet /tmp/cellpipe-wheels/*.whl

FROM {base}
RUN echo 'cellpipe:x:{uid}:{uid}:cellpipe:{home}:/bin/sh' >> /etc/passwd \\
 && echo 'cellpipe:x:{uid}:' >> /etc/group \\
 && mkdir -p {workdir} && chown -R {uid}:{uid} {home}
COPY --from=install {venv} {venv}
ENV PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin PYTHONUNBUFFERED=1 HOME={home} \\
    MPLBACKEND=Agg
USER {uid}:{uid}
WORKDIR {workdir}
"""

_STEP_DOCKERFILE = """\
# cellpipe step {step!r} of pipeline {pipeline!r}: generated
FROM {deps}
COPY step/ {step_dir}/
ENV PYTHONPATH={step_dir}/modules CELLPIPE_STEP={step}
CMD ["python", "-m", "cellpipe.runtime", "--spec", "{step_dir}/spec.json", "--step", \
"{step}"]
"""


@dataclass(frozen=True)
class DepsContext:
    """A dependency layer's context, not yet written: its Dockerfile and wheel files."""

    base: str
    base_id: str
    dockerfile: str
    wheels: tuple[tuple[str, Path, str], ...]  # (file name, path, sha256)

    @property
    def digest(self) -> str:
        """Hash of everything the image is made of (the tag)."""
        digest = hashlib.sha256()
        digest.update(self.dockerfile.encode())
        digest.update(self.base_id.encode())
        for name, _, sha in self.wheels:
            digest.update(f"{name} {sha}\n".encode())
        return digest.hexdigest()

    def write(self, directory: Path) -> None:
        """Write the context: the Dockerfile and the wheels (hard links when possible)."""
        (directory / "wheels").mkdir(parents=True, exist_ok=True)
        (directory / "Dockerfile").write_text(self.dockerfile, encoding="utf-8")
        for name, path, _ in self.wheels:
            _link(path, directory / "wheels" / name)


@dataclass(frozen=True)
class StepContext:
    """A step layer's context: the Dockerfile and the files under ``step/``."""

    step: str
    deps_ref: str
    dockerfile: str
    files: tuple[tuple[str, bytes], ...]  # (path under step/, content)

    @property
    def digest(self) -> str:
        """Hash of everything the layer is made of (the tag)."""
        digest = hashlib.sha256()
        digest.update(self.dockerfile.encode())
        for name, content in self.files:
            digest.update(f"{name} {hashlib.sha256(content).hexdigest()}\n".encode())
        return digest.hexdigest()

    def write(self, directory: Path) -> None:
        """Write the context."""
        (directory / "Dockerfile").write_text(self.dockerfile, encoding="utf-8")
        for name, content in self.files:
            target = directory / "step" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(0o644)


def deps_context(base: str, base_id: str, wheels: Sequence[tuple[str, Path, str]]) -> DepsContext:
    """The dependency layer for one requirement set on ``base`` (whose image id is ``base_id``)."""
    dockerfile = _DEPS_DOCKERFILE.format(base=base, venv=VENV, uid=USER_ID, home=HOME,
                                         workdir=WORKDIR, python=PYTHON_MINOR)
    return DepsContext(base, base_id, dockerfile, tuple(sorted(wheels)))


def step_context(
    spec: PipelineSpec,
    name: str,
    deps_ref: str,
    notebook_dir: Path | None,
    local_modules: Sequence[str] = (),
) -> StepContext:
    """The code layer of step ``name`` on the dependency image ``deps_ref``."""
    files: list[tuple[str, bytes]] = [
        ("spec.json", (json.dumps(spec.slice(name).to_dict(), indent=1, sort_keys=True) + "\n")
         .encode()),
    ]
    for module in local_modules:
        files.extend(_module_files(notebook_dir, module))
    dockerfile = _STEP_DOCKERFILE.format(step=name, pipeline=spec.pipeline.name,
                                         deps=deps_ref, step_dir=STEP_DIR)
    return StepContext(name, deps_ref, dockerfile, tuple(sorted(files)))


def _module_files(notebook_dir: Path | None, module: str) -> list[tuple[str, bytes]]:
    if notebook_dir is None:
        return []
    single = notebook_dir / f"{module}.py"
    if single.is_file():
        return [(f"modules/{module}.py", single.read_bytes())]
    package = notebook_dir / module
    files = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files.append((f"modules/{path.relative_to(notebook_dir).as_posix()}",
                          path.read_bytes()))
    return files


def _link(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copyfile(source, target)
