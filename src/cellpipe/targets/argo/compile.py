"""Compile a PipelineSpec into an Argo Workflow manifest, through Hera's models of Argo's schema.

Compiling is pure: the same spec, image map and settings give the same dict, and
:func:`to_yaml` the same bytes, in any process. Submitting and watching is another module's
job. The manifest is a DAG template ``main`` with one task per step; every task runs the
step's image with ``python -m cellpipe.runtime``; parameters are the Workflow's arguments,
metrics the reporting step's output parameters; data lives on a workflow volume or in S3.
Where Argo can keep artifacts, each step also publishes its report, figures, classification
metrics and models (:mod:`cellpipe.targets.argo.artifacts`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from cellpipe.core.layout import CARRIED_SPEC, CARRIED_START, IMAGE_SPEC
from cellpipe.core.spec import PipelineSpec, StepSettings, StepSpec
from cellpipe.errors import CellpipeError, MissingDependencyError
from cellpipe.targets.argo.artifacts import (
    OUTPUTS_DIR,
    file_output,
    metric_outputs,
    repository_ref,
    ui_outputs,
)
from cellpipe.targets.carried import start_script
from cellpipe.targets.checks import check_no_secret_values, check_quantity, dns1123_name
from cellpipe.targets.cluster import ClusterSettings

try:
    from hera.workflows import (
        DAG,
        Artifact,
        Container,
        Env,
        Parameter,
        RawArtifact,
        RetryStrategy,
        SecretEnv,
        Task,
        Workflow,
    )
    from hera.workflows import models as m
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise MissingDependencyError.for_extra("hera", "argo", "Compiling an Argo Workflow") from exc

ENTRYPOINT = "main"
SPEC_PATH = IMAGE_SPEC
RUN_DIR = "/cellpipe/run"
WORKDIR = "/home/cellpipe/work"  # the step images' working directory: the notebook's folder
DATA_VOLUME = "cellpipe-data"
SCRATCH_VOLUME = "cellpipe-run"
PIPELINE_LABEL = "cellpipe.dev/pipeline"
USER_ID = 10001  # the step images' non-root user and group
_TOP_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
_STORE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class _Data:
    """Where the steps keep their artifacts, and what the pods need to reach it."""

    store: str
    mount: m.VolumeMount
    env: tuple[Env | SecretEnv, ...]


def compile_argo(
    spec: PipelineSpec, images: Mapping[str, str], settings: ClusterSettings, *,
    carry_code: bool = False,
) -> dict[str, Any]:
    """Compile a pipeline spec into an ``argoproj.io/v1alpha1`` Workflow.

    Args:
        spec: The pipeline spec (``cellpipe.api.compile_spec``).
        images: The container image of every step (step name to image reference), as
            ``cellpipe build`` makes them.
        settings: The cluster settings (:func:`cellpipe.targets.cluster.cluster_settings`).
        carry_code: The images are one shared image without the steps' code: each step's
            spec slice and start script travel as raw input artifacts
            (:mod:`cellpipe.targets.carried`).

    Returns:
        The Workflow as a dict with a stable key order, ready for :func:`to_yaml` or the
        Kubernetes API.

    Raises:
        CellpipeError: A step has no image, a step setting is not valid on Kubernetes, two
            steps map to one Kubernetes name, or a secret value would reach the manifest.
    """
    pipeline = dns1123_name(spec.pipeline.name, max_length=57)
    steps = list(spec.steps)
    labels = _step_labels(steps)
    data = _data(settings)
    tracking = _tracking_env(settings, spec.step_names)
    travel = file_artifacts(steps) if settings.storage is not None else {}
    produced = {step.name: sorted({(path, name) for links in travel.values()
                                      for path, name, producer in links
                                      if producer == step.name}) for step in steps}
    templates = {
        step.name: _step_template(step, labels[step.name], images, settings, data,
                                     takes=travel.get(step.name, []),
                                     gives=produced[step.name],
                                     carried=spec.slice(step.name) if carry_code else None,
                                     tracking=tracking)
        for step in steps
    }
    dag = DAG(
        name=ENTRYPOINT,
        tasks=[
            Task(
                name=labels[step.name],
                template=templates[step.name],
                dependencies=[labels[up] for up in step.upstream] or None,
                arguments=[
                    *(Parameter(name=name, value=f"{{{{workflow.parameters.{name}}}}}")
                      for name in step.parameters),
                    *(Artifact(name=name,
                               from_=f"{{{{tasks.{labels[producer]}.outputs.artifacts.{name}}}}}")
                      for _, name, producer in travel.get(step.name, [])),
                ] or None,
            )
            for step in steps
        ],
    )
    annotations = dict(settings.annotations)
    if spec.pipeline.description:
        annotations.setdefault("workflows.argoproj.io/description", spec.pipeline.description)
    workflow = Workflow(
        api_version="argoproj.io/v1alpha1",
        kind="Workflow",
        generate_name=f"{pipeline}-",
        namespace=settings.namespace,
        labels={**dict(settings.labels), PIPELINE_LABEL: pipeline},
        annotations=annotations or None,
        entrypoint=ENTRYPOINT,
        arguments=[
            Parameter(name=parameter.name, value=parameter_text(parameter.default_copy))
            for parameter in spec.parameters
        ] or None,
        service_account_name=settings.service_account,
        security_context=m.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=USER_ID,
            run_as_group=USER_ID,
            fs_group=USER_ID,
            seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
        ),
        volume_claim_templates=[_claim(settings)] if settings.storage is None else None,
        volumes=[m.Volume(name=SCRATCH_VOLUME, empty_dir=m.EmptyDirVolumeSource())]
        if settings.storage is not None else None,
        templates=[dag, *templates.values()],
        artifact_repository_ref=repository_ref(settings),
    )
    manifest: dict[str, Any] = ordered(workflow.to_dict())
    # Hera fills these from its process-wide global_config when unset; compiling stays pure.
    if settings.namespace is None:
        manifest["metadata"].pop("namespace", None)
    if settings.service_account is None:
        manifest["spec"].pop("serviceAccountName", None)
    check_no_secret_values(manifest, f"Argo Workflow {pipeline!r}")
    return manifest


def to_yaml(workflow: Mapping[str, Any]) -> str:
    """Render a manifest as YAML: stable key order, no anchors, byte-identical across runs."""
    # ordered copies every dict and list, so no object repeats and PyYAML writes no anchors.
    text: str = yaml.safe_dump(
        ordered(workflow),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    return text


def parameter_text(value: Any) -> str:
    """Render a parameter value as Argo parameter text: JSON, except strings and booleans.

    Strings are passed as they are, booleans as ``true``/``false``, everything else
    (numbers, lists, dicts, ``None``) as JSON, which the step runtime reads back as the
    declared type.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _step_labels(steps: Sequence[StepSpec]) -> dict[str, str]:
    labels: dict[str, str] = {}
    owners: dict[str, str] = {ENTRYPOINT: "the DAG template"}
    for step in steps:
        try:
            label = dns1123_name(step.name)
        except CellpipeError as exc:
            raise CellpipeError(exc.message, step=step.name, hint=exc.hint) from exc
        if label == ENTRYPOINT:
            label = f"{ENTRYPOINT}-step"  # "main" is the DAG's name
        if label in owners:
            raise CellpipeError(
                f"steps {owners[label]!r} and {step.name!r} both become {label!r} on "
                "Kubernetes",
                step=step.name,
                hint="rename one of them",
            )
        owners[label] = step.name
        labels[step.name] = label
    return labels


def _data(settings: ClusterSettings) -> _Data:
    if settings.storage is None:
        return _Data(
            store=f"{RUN_DIR}/artifacts",
            mount=m.VolumeMount(name=DATA_VOLUME, mount_path=RUN_DIR),
            env=(),
        )
    assert settings.storage_secret is not None, "cluster_settings requires it with storage"
    secret = settings.storage_secret
    env: list[Env | SecretEnv] = [
        SecretEnv(name="AWS_ACCESS_KEY_ID", secret_name=secret.secret,
                  secret_key=secret.access_key),
        SecretEnv(name="AWS_SECRET_ACCESS_KEY", secret_name=secret.secret,
                  secret_key=secret.secret_key),
    ]
    if settings.storage_endpoint:
        env.append(Env(name="AWS_ENDPOINT_URL", value=settings.storage_endpoint))
    return _Data(
        store=f"{settings.storage}/{{{{workflow.name}}}}",
        mount=m.VolumeMount(name=SCRATCH_VOLUME, mount_path=RUN_DIR),
        env=tuple(env),
    )


def file_artifacts(steps: Sequence[StepSpec]) -> dict[str, list[tuple[str, str, str]]]:
    """The files that link steps as Argo artifacts: consumer → [(path, name, producer)].

    A file a step reads from an earlier step travels as that step's output artifact when
    its writer names one fixed path (``core.files.workflow_artifact``); the runtime checks
    it against the sha256 its writer recorded. Patterns travel through the store.
    """
    from cellpipe.core.files import inside, matches, workflow_artifact

    by_name = {step.name: step for step in steps}
    names: dict[str, str] = {}
    travel: dict[str, list[tuple[str, str, str]]] = {}
    for step in steps:
        for pattern, producer in sorted(step.file_reads.items()):
            if producer not in by_name:
                continue
            for written in by_name[producer].file_writes:
                if not workflow_artifact(written) or not (
                        matches(written, pattern) or inside(written, pattern)):
                    continue
                if written not in names:
                    slug = re.sub(r"[^A-Za-z0-9]+", "-", written).strip("-").lower()[:48]
                    name = f"file-{slug or 'root'}"
                    while name in names.values():
                        name = f"{name[:58]}-{len(names)}"
                    names[written] = name
                link = (written, names[written], producer)
                if link not in travel.setdefault(step.name, []):
                    travel[step.name].append(link)
    return travel


def _artifact_path(path: str) -> str:
    return path if path.startswith("/") else f"{WORKDIR}/{path}"


def _claim(settings: ClusterSettings) -> m.PersistentVolumeClaim:
    return m.PersistentVolumeClaim(
        metadata=m.ObjectMeta(name=DATA_VOLUME),
        spec=m.PersistentVolumeClaimSpec(
            access_modes=[settings.volume_access_mode],
            storage_class_name=settings.volume_storage_class,
            resources=m.VolumeResourceRequirements(
                requests={"storage": m.Quantity(root=settings.volume_size)}
            ),
        ),
    )


def _step_template(
    step: StepSpec,
    label: str,
    images: Mapping[str, str],
    settings: ClusterSettings,
    data: _Data,
    *,
    takes: list[tuple[str, str, str]],
    gives: list[tuple[str, str]],
    carried: PipelineSpec | None = None,
    tracking: tuple[Env | SecretEnv, ...] = (),
) -> Container:
    name = step.name
    image = images.get(name)
    if not isinstance(image, str) or not image.strip():
        raise CellpipeError(
            f"no container image for step {name!r}",
            step=name,
            hint="build the step images with `cellpipe build NOTEBOOK --registry REGISTRY`, "
            "or pass an image map with an image for every step",
        )
    command = [
        *(["python", CARRIED_START, "--spec", CARRIED_SPEC] if carried is not None
          else ["python", "-m", "cellpipe.runtime", "--spec", SPEC_PATH]),
        "--step", name,
        "--store", data.store,
        "--step-dir", f"{RUN_DIR}/steps/{name}",
        "--outputs-dir", OUTPUTS_DIR,
        *(["--artifacts"] if settings.keeps_artifacts else []),
    ]
    if step.files:  # pods share no working directory: files travel
        # with an object store, fixed paths as Argo artifacts; else through the store
        command += ["--carry-files", "workflow" if settings.storage is not None else "store"]
    for parameter in step.parameters:
        command += ["--param", f"{parameter}={{{{inputs.parameters.{parameter}}}}}"]
    options = step.settings
    retries = _whole(options.retries, name, "retries", minimum=0)
    timeout = _whole(options.timeout, name, "timeout", minimum=1)
    return Container(
        name=label,
        image=image,
        command=command,
        working_dir=WORKDIR,
        inputs=[
            *(Parameter(name=parameter) for parameter in step.parameters),
            *(Artifact(name=artifact, path=_artifact_path(path), optional=True)
              for path, artifact, _ in takes),
            *(_carried_inputs(carried) if carried is not None else ()),
        ] or None,
        outputs=[
            *metric_outputs(step, settings),
            *ui_outputs(step, settings),
            *(file_output(path, _artifact_path(path), artifact, name, settings)
              for path, artifact in gives),
        ] or None,
        env=[*_env(name, settings, data), *tracking] or None,
        resources=_resources(name, options),
        retry_strategy=RetryStrategy(limit=retries, retry_policy="OnFailure")
        if retries else None,
        active_deadline_seconds=timeout,
        node_selector=settings.node_selector_for(name) or None,
        tolerations=[
            m.Toleration(key=t.key, operator=t.operator, value=t.value, effect=t.effect,
                         toleration_seconds=t.toleration_seconds)
            for t in settings.tolerations_for(name)
        ] or None,
        volume_mounts=[data.mount],
        security_context=m.SecurityContext(
            allow_privilege_escalation=False,
            capabilities=m.Capabilities(drop=["ALL"]),
        ),
    )


def _carried_inputs(carried: PipelineSpec) -> tuple[RawArtifact, RawArtifact]:
    """The step's spec slice and start script, as files the pod gets (no build needed)."""
    return (RawArtifact(name="cellpipe-spec", path=CARRIED_SPEC, data=carried.to_json()),
            RawArtifact(name="cellpipe-start", path=CARRIED_START, data=start_script()))


def _env(step: str, settings: ClusterSettings, data: _Data) -> list[Env | SecretEnv]:
    env: list[Env | SecretEnv] = []
    for ref in settings.secrets_for(step):
        if ref.env in _STORE_ENV and data.env:
            raise CellpipeError(
                f"secret env {ref.env} clashes with the object store's credentials",
                step=step,
                hint="storage_secret sets AWS_* variables; give the secret another env name",
            )
        env.append(SecretEnv(name=ref.env, secret_name=ref.secret, secret_key=ref.key))
    return env + list(data.env)


def _tracking_env(settings: ClusterSettings,
                  steps: tuple[str, ...]) -> tuple[Env | SecretEnv, ...]:
    """Where a tracked pipeline's steps log (:mod:`cellpipe.tracking.step`).

    The URI, the experiment, the workflow's name (what groups its steps), the step names,
    and the credentials by Secret reference.
    """
    if settings.tracking is None:
        return ()
    from cellpipe.tracking.config import ENV_RUN
    from cellpipe.tracking.step import ENV_STEPS

    env: list[Env | SecretEnv] = [Env(name=name, value=value)
                                  for name, value in settings.tracking_env()]
    env.append(Env(name=ENV_RUN, value="{{workflow.name}}"))
    env.append(Env(name=ENV_STEPS, value=",".join(steps)))
    secret = settings.tracking.secret
    if secret is not None:
        env += [SecretEnv(name=name, secret_name=secret.name, secret_key=key)
                for name, key in secret.keys]
    return tuple(env)


def _resources(step: str, options: StepSettings) -> m.ResourceRequirements | None:
    requests: dict[str, m.Quantity] = {}
    limits: dict[str, m.Quantity] = {}
    kinds: tuple[tuple[Literal["cpu", "memory"], str | None], ...] = (
        ("cpu", options.cpu), ("memory", options.memory))
    for kind, value in kinds:
        if value is not None:
            quantity = m.Quantity(
                root=check_quantity(value, kind=kind, step=step, annotation=kind)
            )
            requests[kind] = limits[kind] = quantity
    gpus = _whole(options.gpu, step, "gpu", minimum=0)
    if gpus:
        limits["nvidia.com/gpu"] = m.Quantity(root=str(gpus))
    if not limits:
        return None
    return m.ResourceRequirements(requests=requests or None, limits=limits)


def _whole(value: Any, step: str, annotation: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CellpipeError(
            f"{annotation}:{value} is not a whole number of at least {minimum}",
            step=step,
            hint=f"write e.g. {annotation}:{max(minimum, 1)}",
        )
    return value


def ordered(value: Any, *, top: bool = True) -> Any:
    """Return ``value`` with dict keys in a stable order: ``name`` first, then sorted."""
    if isinstance(value, Mapping):
        keys = sorted(value, key=lambda key: (key != "name", str(key)))
        if top:
            keys = sorted(keys, key=lambda key: _TOP_KEYS.index(key) if key in _TOP_KEYS else 9)
        return {key: ordered(value[key], top=False) for key in keys}
    if isinstance(value, list):
        return [ordered(item, top=False) for item in value]
    return value

