"""Cluster targets from Python: compile to Argo or KFP, submit, watch, status, logs.

Kept apart from :mod:`cellpipe.api` (cheap to import for lint and compile); ``cellpipe.api``
re-exports these names. Compiling is pure given the step images; where the images come
from is decided here: an image map (``cellpipe build --format json``) or a registry to
build and push to.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.errors import CellpipeError

if TYPE_CHECKING:
    from cellpipe.cluster_run import ClusterRun
    from cellpipe.core.notebook import NotebookLike
    from cellpipe.core.spec import PipelineSpec
    from cellpipe.engines.docker.builder import StepImage
    from cellpipe.events import StepEvent
    from cellpipe.targets.base import Document, RunStatus, Target
    from cellpipe.targets.connection import ConnectionField
    from cellpipe.tracking.config import Tracking

SPEC = "spec"  # cellpipe's own PipelineSpec JSON: no cluster target needed


def target_names() -> list[str]:
    """``spec`` and every cluster target: built in (argo, kfp, katib) or plugins."""
    from cellpipe.plugins import TARGETS

    return [SPEC, *TARGETS.names()]


def cluster_target_names() -> list[str]:
    """The targets a pipeline can be submitted to (every target but ``spec``)."""
    from cellpipe.plugins import TARGETS

    return TARGETS.names()


def engine_names() -> list[str]:
    """Every engine: built in (local, docker) or plugins."""
    from cellpipe.plugins import ENGINES

    return ENGINES.names()


def load_target(name: str) -> Target:
    """The target registered as ``name`` (a :class:`cellpipe.targets.base.Target`)."""
    from cellpipe.plugins import TARGETS

    target: Target = TARGETS.load(name)()
    return target


def target_connection(name: str) -> tuple[ConnectionField, ...]:
    """The ``connection`` keys target ``name`` reads (host, namespace, …), as it declares them.

    Raises:
        CellpipeError: ``name`` is no target, or its plugin cannot be loaded.
    """
    from cellpipe.plugins import TARGETS
    from cellpipe.targets.connection import connection_fields

    return connection_fields(TARGETS.load(name))


def target_searches(name: str) -> bool:
    """Whether target ``name`` compiles a parameter search (Katib), not one run.

    Such a target takes its search as ``target_options`` (``-p NAME=SPACE`` on the command
    line), and its status has an ``optimal`` trial.
    """
    from cellpipe.plugins import TARGETS

    return bool(getattr(TARGETS.load(name), "searches", False))


def target_connections() -> dict[str, tuple[ConnectionField, ...]]:
    """Every cluster target's ``connection`` keys; a plugin that cannot load is left out.

    Such a plugin is still listed by :func:`cluster_target_names` (submitting to it says
    what is wrong with it); here it only warns.
    """
    found: dict[str, tuple[ConnectionField, ...]] = {}
    for name in cluster_target_names():
        try:
            found[name] = target_connection(name)
        except CellpipeError as exc:
            warnings.warn(f"cellpipe: target {name!r} left out: {exc}", RuntimeWarning,
                          stacklevel=2)
    return found


def read_image_map(path: str | Path) -> dict[str, str]:
    """A step → image map from JSON or YAML (``cellpipe build --format json`` writes one)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CellpipeError(f"cannot read the image map {path}: {exc.strerror}",
                            hint="write it with `cellpipe build NB --format json > images.json`"
                            ) from exc
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        data = yaml.safe_load(text)
    if isinstance(data, dict) and isinstance(data.get("images"), dict):
        data = data["images"]
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise CellpipeError(f"the image map {path} is not a mapping of step names to images",
                            hint='write {"step": "registry/prefix/image:tag", …}')
    return {str(k): v for k, v in data.items()}


def cluster_tracking(notebook: NotebookLike, spec: PipelineSpec,
                     track: str | bool | None = None, no_track: bool = False) -> Tracking | None:
    """Where a cluster run's steps log to MLflow (None: not tracked, or ``no_track``).

    ``--track URI`` or the notebook's ``cellpipe.tracking`` metadata; never the compiling
    shell's ``$MLFLOW_TRACKING_URI``: a manifest does not depend on it.
    """
    from cellpipe.api import load_notebook
    from cellpipe.tracking.config import resolve_cluster_tracking

    if no_track:
        return None
    return resolve_cluster_tracking(load_notebook(notebook).metadata, spec.pipeline.name,
                                    track)


def step_images(
    notebook: NotebookLike,
    spec: PipelineSpec,
    *,
    images: Mapping[str, str] | str | Path | None = None,
    registry: str | None = None,
    image: str | None = None,
    base_image: str | None = None,
    requirements: str | Path | None = None,
    on_image: Callable[[StepImage], None] | None = None,
    tracked: bool = False,
) -> dict[str, str]:
    """Each step's image: from a map, built and pushed, or one shared image.

    ``tracked``: the steps log to MLflow; built images get MLflow's client.

    From ``images`` (a map or its file); built and pushed to
    ``registry``, or else one shared image (:func:`shared_image`) with a step's own
    ``image:`` setting winning.
    """
    if images is not None:
        found = dict(images) if isinstance(images, Mapping) else read_image_map(images)
        missing = [s.name for s in spec.steps if s.name not in found]
        if missing:
            raise CellpipeError(f"the image map has no image for step(s) {', '.join(missing)}",
                                step=missing[0],
                                hint="rebuild it with `cellpipe build NB --registry … "
                                "--format json`")
        return {s.name: found[s.name] for s in spec.steps}
    if registry is None:
        shared = shared_image(spec, image=image or base_image)
        return {s.name: s.settings.image or shared for s in spec.steps}
    from cellpipe.runs_api import build_images

    built = build_images(notebook, base_image=base_image, registry=registry,
                         requirements=requirements, on_image=on_image, tracked=tracked)
    return {name: image.ref for name, image in built.items()}


def shared_image(spec: PipelineSpec, *, image: str | None = None) -> str:
    """The image every step runs when none is built.

    ``image`` (``--image``), else
    ``$CELLPIPE_BASE_IMAGE``, the notebook's ``docker_image`` metadata (Kale's), or
    ``python:3.11-slim``. It must hold cellpipe and what the steps import
    (:func:`image_requirements`).
    """
    from cellpipe.engines.docker.client import base_image

    return base_image(spec.pipeline.base_image, image)


def shared_image_note(notebook: str | Path, spec: PipelineSpec,
                      options: Mapping[str, Any]) -> str | None:
    """The line saying which image every step runs when none is built, and what it needs.

    None when ``options`` build or name per-step images (``registry``, ``images``).
    """
    if options.get("registry") or options.get("images"):
        return None
    image = shared_image(spec, image=options.get("image") or options.get("base_image"))
    track = False if options.get("no_track") else options.get("track")
    needs = image_requirements(notebook, spec=spec, direct=True, track=track)
    return (f"cellpipe: no --registry/--images: every step runs {image}, with its code in "
            f"the pipeline; the image must hold {', '.join(needs)} (`cellpipe requirements "
            f"{Path(notebook).name}` writes them as a requirements file)")


def image_requirements(notebook: NotebookLike, *, split: str | None = None,
                       spec: PipelineSpec | None = None, direct: bool = False,
                       track: str | bool | None = None) -> list[str]:
    """What one image for every step must hold.

    cellpipe, then each distribution the steps
    import (with its version here), then the ``!pip install`` lines' requirements; and
    MLflow's client (``mlflow-skinny``) when the steps are tracked (``track``, as
    :func:`cluster_tracking`).

    ``spec`` is the notebook's, when the caller compiled it already. ``direct`` keeps only
    what the steps import or read themselves (not what those, or cellpipe, require).
    """
    from cellpipe.api import compile_spec, load_notebook
    from cellpipe.engines.docker.requirements import step_requirements
    from cellpipe.targets.carried import runtime_requirement

    nb = load_notebook(notebook)
    path = None if nb.path == "<memory>" else nb.path
    found = step_requirements(spec or compile_spec(nb, split=split),
                              Path(path).resolve().parent if path else Path.cwd())
    pins: dict[str, str] = {}
    loose: list[str] = []
    for needs in found.values():
        pins.update((name, version) for name, version in needs.pins.items()
                    if not direct or needs.reasons.get(name, "").startswith(("import ", "reads ")))
        loose += [line for line in needs.loose if line not in loose]
    pins.pop("cellpipe", None)
    spec = spec or compile_spec(nb, split=split)
    if cluster_tracking(nb, spec, track) is not None:
        from cellpipe.tracking.config import client_requirement

        name, _, version = client_requirement().partition("==")
        pins.setdefault(name, version) if version else loose.append(name)
    return [runtime_requirement(), *(f"{name}=={version}" for name, version
                                     in sorted(pins.items())), *loose]


def compile_target(notebook: NotebookLike, target: str, *, split: str | None = None,
                   **options: Any) -> str:
    """Compile a notebook for ``target`` (``spec``, ``argo``, ``kfp``, a plugin's): the text.

    ``options`` are :func:`compile_document`'s: ``images`` or ``registry`` (with
    ``base_image``, ``requirements``, ``on_image``) for per-step images, or ``image`` for
    one shared image (also what neither ``images`` nor ``registry`` means: the pipeline's
    base image, the code carried in the document), and the notebook's
    ``cellpipe.cluster`` settings to override (namespace, storage, volume_size,
    storage_class, access_mode, service_account, caching); ``on_note`` hears the
    document's notes.
    """
    if target == SPEC:
        from cellpipe.api import compile_spec
        from cellpipe.core.spec import spec_to_json

        return spec_to_json(compile_spec(notebook, split=split))
    return compile_document(notebook, target, split=split, **options).text


def compile_document(
    notebook: NotebookLike,
    target: str,
    *,
    split: str | None = None,
    images: Mapping[str, str] | str | Path | None = None,
    registry: str | None = None,
    image: str | None = None,
    base_image: str | None = None,
    requirements: str | Path | None = None,
    on_image: Callable[[StepImage], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    target_options: Mapping[str, Any] | None = None,
    **cluster: Any,
) -> Document:
    """The cluster target's :class:`~cellpipe.targets.base.Document` of a notebook.

    ``on_note`` is called with each of the document's notes (what it leaves out and why).
    ``target_options`` go to the target's compile as they are (Katib's search:
    ``objective``, ``direction``, ``space``, ``trials``, ``parallel``, ``max_failed``,
    ``sampler``); the target also gets the notebook's metadata as ``notebook_metadata``.
    """
    from cellpipe.api import compile_spec, load_notebook

    chosen = load_target(target)  # an unknown target is refused before anything is built
    nb = load_notebook(notebook)
    spec = compile_spec(nb, split=split)
    tracking = cluster_tracking(nb, spec, cluster.pop("track", None),
                                cluster.pop("no_track", False))
    refs = step_images(nb, spec, images=images, registry=registry, image=image,
                       base_image=base_image, requirements=requirements, on_image=on_image,
                       tracked=tracking is not None)
    # one image without the steps' code: the code travels in the document
    options = {**dict(target_options or {}), "caching": cluster.pop("caching", None),
               "carry_code": images is None and registry is None,
               "notebook_metadata": nb.metadata}
    from cellpipe.targets.cluster import cluster_settings

    settings = cluster_settings(spec, **{k: v for k, v in cluster.items() if v is not None})
    if tracking is not None:
        settings = dataclasses.replace(settings, tracking=tracking)
    document = chosen.compile(spec, refs, settings, options)
    if on_note is not None:
        for note in getattr(document, "notes", ()):  # a plugin's own document may have none
            on_note(note)
    return dataclasses.replace(document, spec=spec)


def submit(
    notebook: NotebookLike,
    target: str,
    *,
    connection: Mapping[str, Any] | None = None,
    watch: bool = False,
    timeout: float | None = None,
    on_event: Callable[[StepEvent], None] | None = None,
    parameters: Mapping[str, Any] | None = None,
    **options: Any,
) -> ClusterRun:
    """Compile for ``target`` and submit: the run, to follow and read back from here.

    ``connection`` says how to reach the cluster (``namespace``; ``host``, ``experiment``
    for KFP); ``options`` are :func:`compile_target`'s.
    """
    reach = dict(connection or {})
    if reach.get("namespace") and "namespace" not in options:
        options["namespace"] = reach["namespace"]
    document = compile_document(notebook, target, **options)
    done = load_target(target).submit(document, parameters=dict(parameters or {}), watch=watch,
                                      timeout=timeout, on_event=on_event, connection=reach)
    from cellpipe.cluster_run import ClusterRun

    found = ClusterRun(target, done.name, done.status, done.title, reach, document.spec,
                       document.store.format(name=done.name) if document.store else None)
    from cellpipe.core.layout import default_root

    # recorded beside the notebook, for ClusterRun.attach and `cellpipe status` elsewhere
    where = notebook if isinstance(notebook, (str, Path)) else None
    try:
        found.save(default_root(where))
    except OSError as exc:
        warnings.warn(f"cellpipe: {found.title or done.name} is not recorded here ({exc}); "
                      "ClusterRun.attach will not find it", RuntimeWarning, stacklevel=2)
    return found


def target_status(target: str, name: str, **connection: Any) -> RunStatus:
    """The state of run ``name`` on ``target`` (and of its steps, where the target knows).

    A plugin target written before :class:`RunStatus` may answer its phase as text; that
    is taken as the phase, final unless it reads as pending or running.
    """
    from cellpipe.targets.base import RunStatus

    found = load_target(target).status(name, connection)
    if isinstance(found, RunStatus):
        return found
    phase = str(found)
    return RunStatus(name, phase, phase.lower() not in _NOT_FINAL)


_NOT_FINAL = frozenset({"", "pending", "running", "submitted", "unknown"})


def target_logs(target: str, name: str, step: str, **connection: Any) -> str:
    """What ``step`` of run ``name`` on ``target`` printed."""
    return str(load_target(target).logs(name, step, connection))


def target_exit_code(target: str, status: str) -> int:
    """The process exit code for a run on ``target`` that ended with ``status``."""
    return int(load_target(target).exit_code(status))
