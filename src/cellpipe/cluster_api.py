"""Cluster targets from Python: compile to Argo or KFP, submit, watch, status, logs.

Kept apart from :mod:`cellpipe.api` (cheap to import for lint and compile); ``cellpipe.api``
re-exports these names. Compiling is pure given the step images; where the images come
from is decided here: an image map (``cellpipe build --format json``) or a registry to
build and push to.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cellpipe.errors import CellpipeError

TARGETS = ("spec", "argo", "kfp")


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


def step_images(
    notebook: Any,
    spec: Mapping[str, Any],
    *,
    images: Mapping[str, str] | str | Path | None = None,
    registry: str | None = None,
    base_image: str | None = None,
    requirements: str | Path | None = None,
    on_image: Callable[[Any], None] | None = None,
) -> dict[str, str]:
    """Each step's image: from ``images`` (a map or its file), or built and pushed."""
    if images is not None:
        found = dict(images) if isinstance(images, Mapping) else read_image_map(images)
        missing = [s["name"] for s in spec["steps"] if s["name"] not in found]
        if missing:
            raise CellpipeError(f"the image map has no image for step(s) {', '.join(missing)}",
                                step=missing[0],
                                hint="rebuild it with `cellpipe build NB --registry … "
                                "--format json`")
        return {s["name"]: found[s["name"]] for s in spec["steps"]}
    if registry is None:
        raise CellpipeError(
            "cluster targets need each step's image in a registry the cluster can pull from",
            hint="pass --registry HOST:PORT/PREFIX (builds and pushes the images), or "
            "--images MAP.json from `cellpipe build NB --registry … --format json`",
        )
    from cellpipe.runs_api import build_images

    built = build_images(notebook, base_image=base_image, registry=registry,
                         requirements=requirements, on_image=on_image)
    return {name: image.ref for name, image in built.items()}


def compile_target(
    notebook: Any,
    target: str,
    *,
    split: str | None = None,
    images: Mapping[str, str] | str | Path | None = None,
    registry: str | None = None,
    base_image: str | None = None,
    requirements: str | Path | None = None,
    on_image: Callable[[Any], None] | None = None,
    **cluster: Any,
) -> str:
    """Compile a notebook for ``target`` (``spec``, ``argo`` or ``kfp``); returns the text.

    ``cluster`` overrides the notebook's ``cellpipe.cluster`` settings (namespace, storage,
    volume_size, storage_class, access_mode, service_account, caching).
    """
    text: str = _compile(notebook, target, split=split, images=images, registry=registry,
                         base_image=base_image, requirements=requirements, on_image=on_image,
                         **cluster)
    return text


def _compile(
    notebook: Any,
    target: str,
    *,
    split: str | None = None,
    images: Mapping[str, str] | str | Path | None = None,
    registry: str | None = None,
    base_image: str | None = None,
    requirements: str | Path | None = None,
    on_image: Callable[[Any], None] | None = None,
    as_dict: bool = False,
    **cluster: Any,
) -> Any:
    """:func:`compile_target`; with ``as_dict`` an Argo Workflow stays a dict (to submit)."""
    from cellpipe.api import compile_spec, load_notebook

    if target not in TARGETS:
        from cellpipe.core.diagnostics import did_you_mean

        raise CellpipeError(f"unknown target {target!r}",
                            hint=did_you_mean(target, set(TARGETS)) or "use spec, argo or kfp")
    nb = load_notebook(notebook)
    spec = compile_spec(nb, split=split)
    if target == "spec":
        from cellpipe.core.spec import spec_to_json

        return spec_to_json(spec)
    refs = step_images(nb, spec, images=images, registry=registry, base_image=base_image,
                       requirements=requirements, on_image=on_image)
    caching = cluster.pop("caching", None)
    from cellpipe.targets.cluster import cluster_settings

    settings = cluster_settings(spec, **{k: v for k, v in cluster.items() if v is not None})
    if target == "argo":
        from cellpipe.targets.argo.compile import compile_argo, to_yaml

        workflow = compile_argo(spec, refs, settings)
        return workflow if as_dict else to_yaml(workflow)
    from cellpipe.targets.kfp.compile import compile_kfp

    return compile_kfp(spec, refs, caching=caching, settings=settings)


def submit_argo(
    notebook: Any,
    *,
    namespace: str | None = None,
    watch: bool = False,
    timeout: float | None = None,
    on_event: Callable[[Any], None] | None = None,
    parameters: Mapping[str, Any] | None = None,
    **options: Any,
) -> tuple[str, str]:
    """Compile for Argo, create the Workflow, optionally watch it; returns (name, phase)."""
    from cellpipe.targets.argo.compile import parameter_text
    from cellpipe.targets.argo.submit import ArgoClient

    manifest = _compile(notebook, "argo", namespace=namespace, as_dict=True, **options)
    if parameters:
        values = {k: parameter_text(v) for k, v in parameters.items()}
        for parameter in manifest["spec"].get("arguments", {}).get("parameters", []):
            if parameter["name"] in values:
                parameter["value"] = values[parameter["name"]]
    client = ArgoClient(namespace=namespace)
    name = client.submit(manifest)
    if not watch:
        return name, "Submitted"
    return name, client.watch(name, on_event=on_event, timeout=timeout)


def argo_status(name: str, namespace: str | None = None) -> Any:
    """The Workflow's phase and each step's node phase."""
    from cellpipe.targets.argo.submit import ArgoClient

    return ArgoClient(namespace=namespace).status(name)


def argo_logs(name: str, step: str, namespace: str | None = None) -> str:
    """What a step's pod printed."""
    from cellpipe.targets.argo.submit import ArgoClient

    return ArgoClient(namespace=namespace).logs(name, step)


def submit_kfp(
    notebook: Any,
    *,
    host: str,
    experiment: str | None = None,
    watch: bool = False,
    timeout: float | None = None,
    parameters: Mapping[str, Any] | None = None,
    **options: Any,
) -> tuple[str, str]:
    """Compile for KFP and start a run through ``kfp.Client``; returns (run id, state)."""
    import tempfile

    from cellpipe.targets.kfp.submit import submit_kfp as submit

    text = compile_target(notebook, "kfp", **options)
    with tempfile.TemporaryDirectory(prefix="cellpipe-kfp-") as directory:
        path = Path(directory) / "pipeline.yaml"
        path.write_text(text, encoding="utf-8")
        run_id, state = submit(path, host, experiment=experiment,
                               arguments=dict(parameters or {}), watch=watch, timeout=timeout)
    return str(run_id), str(state)


def argo_exit_code(phase: str) -> int:
    """The process exit code for a workflow's final phase (``Timeout`` is 124, like timeout(1))."""
    from cellpipe.targets.argo.submit import exit_code

    return exit_code(phase)
