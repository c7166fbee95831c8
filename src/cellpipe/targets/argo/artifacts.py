"""A step's Argo output artifacts: the files that link steps, its metrics, what the UI shows.

Argo keeps output artifacts only where it has somewhere to put them: the pipeline's object
store (``cellpipe.cluster.storage`` or ``--storage``; each artifact's S3 location is written
in the manifest, beside the run's values) or an artifact repository the cluster configures
(``cellpipe.cluster.artifact_repository``: ``"default"`` or a ConfigMap's key; the artifacts
carry no location and the repository decides). Without either the steps publish none —
their metrics stay output parameters — and compiling says so (:func:`artifacts_note`).

Besides ``metrics`` (``metrics.json``), every step publishes for the Argo UI: ``report``
(its executed report as HTML), ``figures`` (a folder of the PNG images its cells displayed),
``classification`` (its charts, as JSON) when its metrics cells have any, and one
``model-NAME`` per ``model:NAME`` (a store of its own, archived: ``<step>/NAME.<ext>`` and
its sidecar). The files are the runtime's (``--artifacts``; names from
:class:`cellpipe.core.layout.StepOutputs`); all but ``metrics`` are optional, so a missing
one never fails the step.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from hera.workflows import Artifact, NoneArchiveStrategy, Parameter, S3Artifact
from hera.workflows import models as m

from cellpipe.core.layout import (
    OUTPUT_CLASSIFICATION,
    OUTPUT_FIGURES,
    OUTPUT_METRICS,
    OUTPUT_MODELS,
    OUTPUT_REPORT,
)
from cellpipe.core.spec import StepSpec
from cellpipe.targets.cluster import ClusterSettings

__all__ = ["OUTPUTS_DIR", "artifacts_note", "file_output", "metric_outputs",
           "repository_ref", "ui_outputs"]

OUTPUTS_DIR = "/tmp/cellpipe/outputs"  # the runtime's --outputs-dir in the pod
_UI_FOLDER = ".artifacts"  # beside the run's values in the object store: {workflow}/.artifacts/


def artifacts_note(settings: ClusterSettings) -> str | None:
    """What compiling tells the user when the steps can publish no artifacts (else None)."""
    if settings.keeps_artifacts:
        return None
    return ("no artifact repository or object store: the steps' reports, figures, "
            "classification metrics and models are not kept as Argo artifacts (their metrics "
            "stay output parameters); set cellpipe.cluster.artifact_repository to \"default\" "
            "(or a ConfigMap's key) or pass --storage s3://BUCKET/PREFIX to keep them")


def repository_ref(settings: ClusterSettings) -> m.ArtifactRepositoryRef | None:
    """The Workflow's ``artifactRepositoryRef`` when the notebook names a ConfigMap's."""
    repository = settings.artifact_repository
    if repository is None or repository.configmap is None:
        return None
    return m.ArtifactRepositoryRef(config_map=repository.configmap, key=repository.key)


def metric_outputs(step: StepSpec, settings: ClusterSettings) -> list[Parameter | Artifact]:
    """Each metric as an output parameter; all of them as ``metrics.json`` where kept.

    The parameters are lifted into the Workflow's outputs (``globalName``) for the watcher.
    """
    if not step.metrics:
        return []
    outputs: list[Parameter | Artifact] = [
        Parameter(name=metric, value_from=m.ValueFrom(path=_output(metric)),
                  global_name=metric)
        for metric in step.metrics
    ]
    if settings.keeps_artifacts:
        outputs.append(_located("metrics", _output(OUTPUT_METRICS), step.name, settings,
                                archive=NoneArchiveStrategy()))
    return outputs


def ui_outputs(step: StepSpec, settings: ClusterSettings) -> list[Artifact]:
    """The step's report, figures, charts and models, where artifacts are kept."""
    if not settings.keeps_artifacts:
        return []
    plain: dict[str, Any] = {"archive": NoneArchiveStrategy(), "optional": True}  # as they are
    found = [_located("report", _output(OUTPUT_REPORT), step.name, settings, **plain),
             _located("figures", _output(OUTPUT_FIGURES), step.name, settings, **plain)]
    if step.charts:
        found.append(_located("classification", _output(OUTPUT_CLASSIFICATION), step.name,
                              settings, **plain))
    found += [_located(f"model-{name}", _output(OUTPUT_MODELS, name), step.name, settings,
                       optional=True, archived=True)
              for name in step.settings.models]
    return found


def _output(*names: str) -> str:
    """A path in the pod's outputs directory (as ``core.layout.StepOutputs`` joins them)."""
    return "/".join((OUTPUTS_DIR, *names))


def file_output(path: str, where: str, artifact: str, step: str,
                settings: ClusterSettings) -> S3Artifact:
    """A file the step writes for later steps, kept beside the run's values in the store.

    ``path`` is as the notebook names it, ``where`` the file in the pod; Argo keeps it as a
    tar.gz archive.
    """
    key = _key(settings, ".files", step, f"{path.lstrip('/')}.tgz")
    # optional: the writer's code may not write it in every run; readers check
    return _s3(artifact, where, key, settings, optional=True)


def _located(name: str, path: str, step: str, settings: ClusterSettings, *,
             archived: bool = False, **options: Any) -> Artifact:
    """An output artifact at its S3 location in the object store, else the repository's."""
    if settings.storage is None:
        return Artifact(name=name, path=path, **options)
    file = PurePosixPath(path).relative_to(OUTPUTS_DIR).as_posix()
    return _s3(name, path, _key(settings, _UI_FOLDER, step, f"{file}.tgz" if archived
                                else file), settings, **options)


def _key(settings: ClusterSettings, folder: str, step: str, file: str) -> str:
    assert settings.storage is not None
    _, _, prefix = settings.storage.removeprefix("s3://").partition("/")
    return "/".join(p for p in (prefix.strip("/"), "{{workflow.name}}", folder, step, file) if p)


def _s3(name: str, path: str, key: str, settings: ClusterSettings, **options: Any) -> S3Artifact:
    assert settings.storage is not None and settings.storage_secret is not None
    bucket = settings.storage.removeprefix("s3://").partition("/")[0]
    endpoint = settings.storage_endpoint
    secret = settings.storage_secret
    return S3Artifact(
        name=name,
        path=path,
        bucket=bucket,
        key=key,
        endpoint=endpoint.split("://", 1)[1].rstrip("/") if endpoint else None,
        insecure=True if endpoint and endpoint.startswith("http://") else None,
        access_key_secret=m.SecretKeySelector(name=secret.secret, key=secret.access_key),
        secret_key_secret=m.SecretKeySelector(name=secret.secret, key=secret.secret_key),
        **options,
    )
