"""Building (or reusing) each step's image through the ``docker`` SDK, and pushing it.

``ImageBuilder.plan`` works out every image's content hash without touching the daemon's
build (requirements, wheels, contexts); ``ImageBuilder.build`` builds the images whose
tag is not there yet and pushes to ``--registry`` when one is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellpipe.core.spec import PipelineSpec
from cellpipe.engines.docker.client import base_image, connect, docker_module, ensure_image
from cellpipe.engines.docker.context import (
    DepsContext,
    StepContext,
    deps_context,
    step_context,
)
from cellpipe.engines.docker.requirements import StepRequirements, step_requirements
from cellpipe.errors import CellpipeError

TAG_LENGTH = 16
DEPS_REPOSITORY = "cellpipe-deps"


@dataclass(frozen=True)
class StepImage:
    """One step's image after ``build``.

    Attributes:
        step: The step's name.
        ref: The image reference (``[registry/prefix/]pipeline-step:hash``).
        status: ``built`` or ``reused`` (the tag was already there).
        deps_ref: The dependency image it is built on.
        deps_status: ``built``, ``reused``, or ``shared`` (built for an earlier step now).
        pushed: ``pushed``, ``present`` (already in the registry) or ``""`` (no registry).
        seconds: Time spent building this step's layers.
    """

    step: str
    ref: str
    status: str
    deps_ref: str
    deps_status: str
    pushed: str = ""
    seconds: float = 0.0


@dataclass
class _Plan:
    step: str
    requirements: StepRequirements
    deps: DepsContext
    deps_ref: str
    context: StepContext
    ref: str


@dataclass
class ImageBuilder:
    """Builds step images for a spec.

    Attributes:
        notebook_dir: The notebook's directory (its own modules are copied from there).
        base_image: ``--base-image`` (else ``CELLPIPE_BASE_IMAGE``, the notebook's
            metadata, ``python:3.11-slim``); a step's ``image:`` tag wins.
        registry: ``HOST:PORT/PREFIX`` to tag and push step images to.
        requirements: Extra requirement lines that win over the found pins.
        client: A docker client (default: from the environment).
        on_image: Called with each step's :class:`StepImage` as it is ready.
    """

    notebook_dir: Path | None = None
    base_image: str | None = None
    registry: str | None = None
    requirements: Sequence[str] = ()
    client: Any = None
    on_image: Callable[[StepImage], None] | None = None
    wheel_cache: Any = None
    _base_ids: dict[str, str] = field(default_factory=dict)

    def _client(self) -> Any:
        self.client = connect(self.client)
        return self.client

    def plan(self, spec: PipelineSpec, steps: Sequence[str] | None = None) -> list[_Plan]:
        """Every selected step's contexts and image references (nothing is built)."""
        from cellpipe.engines.docker.runtime_wheel import build_runtime_wheel
        from cellpipe.engines.docker.wheels import WheelCache

        cache = self.wheel_cache or WheelCache()
        runtime = build_runtime_wheel(cache.root / "runtime")
        runtime_entry = (runtime.name, runtime, _sha256(runtime))
        requirements = step_requirements(spec, self.notebook_dir, self.requirements)
        wanted = [s for s in spec.steps if steps is None or s.name in steps]
        pipeline_base = base_image(spec.pipeline.base_image, self.base_image)
        deps_by_key: dict[Any, tuple[DepsContext, str]] = {}
        plans = []
        for step in wanted:
            name = step.name
            needs = requirements[name]
            base = step.settings.image or pipeline_base
            key = (base, needs.key())
            if key not in deps_by_key:
                wheels = cache.ensure(needs.pins, needs.loose)
                entries = [(w.path.name, w.path, w.sha256) for w in wheels] + [runtime_entry]
                deps = deps_context(base, self._base_id(base), entries)
                deps_by_key[key] = (deps, f"{DEPS_REPOSITORY}:{deps.digest[:TAG_LENGTH]}")
            deps, deps_ref = deps_by_key[key]
            context = step_context(spec, name, deps_ref, self.notebook_dir, needs.local_modules)
            ref = f"{self._repository(spec, name)}:{context.digest[:TAG_LENGTH]}"
            plans.append(_Plan(name, needs, deps, deps_ref, context, ref))
        return plans

    def build(self, spec: PipelineSpec, steps: Sequence[str] | None = None
              ) -> dict[str, StepImage]:
        """Build what is missing, reuse the rest, push when a registry is set."""
        self._client()
        images: dict[str, StepImage] = {}
        deps_done: dict[str, str] = {}
        for plan in self.plan(spec, steps):
            started = time.perf_counter()
            if plan.deps_ref in deps_done:
                deps_status = "shared" if deps_done[plan.deps_ref] == "built" else "reused"
            else:
                deps_status = self._ensure(plan.deps_ref, plan.deps.write,
                                           f"the dependency layer of step {plan.step!r}")
                deps_done[plan.deps_ref] = deps_status
            status = self._ensure(plan.ref, plan.context.write, f"the image of step {plan.step!r}")
            pushed = self._push(plan.ref) if self.registry else ""
            image = StepImage(plan.step, plan.ref, status, plan.deps_ref, deps_status, pushed,
                              round(time.perf_counter() - started, 3))
            images[plan.step] = image
            if self.on_image is not None:
                self.on_image(image)
        return images

    # -- helpers ------------------------------------------------------------------------

    def _repository(self, spec: PipelineSpec, step: str) -> str:
        name = f"{spec.pipeline.name}-{step}".lower().replace("_", "-")
        if self.registry:
            return f"{self.registry.rstrip('/')}/{name}"
        return f"cellpipe/{name}"

    def _base_id(self, base: str) -> str:
        if base not in self._base_ids:
            image = ensure_image(self._client(), base, "base image")
            self._base_ids[base] = str(image.id)
        return self._base_ids[base]

    def _ensure(self, ref: str, write: Callable[[Path], None], what: str) -> str:
        docker = docker_module()
        client = self._client()
        try:
            client.images.get(ref)
            return "reused"
        except docker.errors.ImageNotFound:
            pass
        with tempfile.TemporaryDirectory(prefix="cellpipe-build-") as directory:
            write(Path(directory))
            try:
                _, log = client.images.build(path=directory, tag=ref, rm=True, forcerm=True,
                                             pull=False, labels={"org.cellpipe.image": ref})
            except docker.errors.BuildError as exc:
                lines = [str(chunk.get("stream") or chunk.get("error") or "").rstrip()
                         for chunk in exc.build_log]
                tail = "\n".join(line for line in lines if line)[-1500:]
                raise CellpipeError(f"building {what} failed: {exc.msg}\n{tail}",
                                    hint="the build log above says which instruction failed"
                                    ) from exc
            except docker.errors.APIError as exc:
                raise CellpipeError(f"building {what} failed: {exc.explanation}") from exc
        for stage in _finished_stages(log):  # the install stage: wheels, pip caches
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(stage)
        return "built"

    def _push(self, ref: str) -> str:
        docker = docker_module()
        client = self._client()
        try:
            client.images.get_registry_data(ref)
            return "present"
        except docker.errors.APIError:
            pass  # not there (or the registry answers 404 as an error): push it
        repository, tag = ref.rsplit(":", 1)
        try:
            for line in client.images.push(repository, tag=tag, stream=True, decode=True):
                if "error" in line:
                    raise CellpipeError(f"pushing {ref} failed: {line['error']}",
                                        hint="check that the registry runs and accepts pushes")
        except docker.errors.APIError as exc:
            raise CellpipeError(f"pushing {ref} failed: {exc.explanation}",
                                hint="check --registry HOST:PORT/PREFIX") from exc
        return "pushed"


def _finished_stages(log: Any) -> list[str]:
    """Ids of the images ending every build stage but the last (from the build's log)."""
    stages: list[str] = []
    last: str | None = None
    seen_from = False
    for chunk in log:
        for line in str(chunk.get("stream") or "").splitlines():
            line = line.strip()
            if line.startswith("---> ") and " " not in line[5:]:
                last = line[5:]
            elif line.startswith("Step ") and ": FROM " in line:
                if seen_from and last:
                    stages.append(last)
                seen_from = True
    return stages


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
