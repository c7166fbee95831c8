"""Cluster settings: the notebook's ``cellpipe.cluster`` metadata, checked, plus CLI overrides.

The metadata reaches the spec unchecked (``spec.pipeline.cluster``); every target reads
it through :func:`cluster_settings`, so a bad value is reported the same way everywhere,
naming the metadata key (``notebook metadata cellpipe.cluster.tolerations[0]: ...``) before
anything is compiled or submitted. Secrets are references to Kubernetes Secrets, never values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cellpipe.core.diagnostics import did_you_mean
from cellpipe.core.spec import PipelineSpec, thaw
from cellpipe.errors import CellpipeError
from cellpipe.targets.checks import check_quantity
from cellpipe.tracking.config import Tracking

Pairs = tuple[tuple[str, str], ...]

_KEYS = ("namespace", "service_account", "labels", "annotations", "node_selector",
         "tolerations", "secrets", "volume", "storage", "storage_secret", "storage_endpoint",
         "steps", "kfp", "require_limits", "artifact_repository")
_ARTIFACT_REPOSITORY_KEYS = ("configmap", "key")
_STEP_KEYS = ("node_selector", "tolerations", "secrets")
_VOLUME_KEYS = ("size", "storage_class", "access_mode")
_ACCESS_MODES = ("ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod")
_TOLERATION_KEYS = ("key", "operator", "value", "effect", "toleration_seconds")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_SECRET_KEYS = ("env", "secret", "key")
_STORAGE_SECRET_KEYS = ("secret", "access_key", "secret_key")
_KFP_KEYS = ("caching",)

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_S3_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?P<prefix>(/[^/\s]+)*)/?")
_NO_VALUES = "secret values never go into manifests; create a Secret and reference it"


@dataclass(frozen=True)
class SecretRef:
    """An environment variable taken from a key of a Kubernetes Secret."""

    env: str
    secret: str
    key: str


@dataclass(frozen=True)
class Toleration:
    """A Kubernetes toleration (``operator`` is ``Equal`` or ``Exists``)."""

    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


@dataclass(frozen=True)
class StorageSecret:
    """The Secret holding the object store's credentials, and the keys inside it."""

    secret: str
    access_key: str = "accesskey"
    secret_key: str = "secretkey"


@dataclass(frozen=True)
class ArtifactRepository:
    """Where Argo keeps the steps' artifacts.

    The workflow controller's default repository (both None), or the repository a
    ConfigMap names (``artifactRepositoryRef``; without ``key``, the ConfigMap's default).
    """

    configmap: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class StepCluster:
    """Per-step additions to the pipeline's scheduling and secrets."""

    node_selector: Pairs = ()
    tolerations: tuple[Toleration, ...] = ()
    secrets: tuple[SecretRef, ...] = ()


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how a pipeline runs on a cluster. Mappings are sorted ``(key, value)`` pairs.

    ``storage`` is ``None`` for a workflow volume (``volume_*`` apply) or an ``s3://bucket/prefix``
    URL, which then needs ``storage_secret``. ``artifact_repository`` says the cluster keeps
    Argo's output artifacts (its default repository, or a ConfigMap's); with it or
    ``storage`` the steps publish their reports, figures and models as artifacts.
    """

    namespace: str | None = None
    service_account: str | None = None
    labels: Pairs = ()
    annotations: Pairs = ()
    node_selector: Pairs = ()
    tolerations: tuple[Toleration, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    require_limits: bool = False  # every step needs memory:SIZE (checked by lint --target)
    volume_size: str = "1Gi"
    volume_storage_class: str | None = None
    volume_access_mode: str = "ReadWriteOnce"
    storage: str | None = None
    storage_secret: StorageSecret | None = None
    storage_endpoint: str | None = None
    steps: tuple[tuple[str, StepCluster], ...] = ()
    kfp_caching: bool | None = None
    artifact_repository: ArtifactRepository | None = None
    # MLflow tracking from the steps (cellpipe.tracking.step): set by ``--track`` or the
    # notebook's ``cellpipe.tracking`` metadata, not by the cluster metadata
    tracking: Tracking | None = None

    def tracking_env(self) -> tuple[tuple[str, str], ...]:
        """The plain environment variables every step gets for tracking (none when off)."""
        if self.tracking is None:
            return ()
        from cellpipe.tracking.config import ENV_EXPERIMENT, ENV_URI

        return ((ENV_URI, self.tracking.uri), (ENV_EXPERIMENT, self.tracking.experiment))

    @property
    def keeps_artifacts(self) -> bool:
        """Whether Argo has somewhere to keep output artifacts (an object store or a repository)."""
        return self.storage is not None or self.artifact_repository is not None

    def step(self, name: str) -> StepCluster:
        """Return the additions for step ``name`` (empty when it has none)."""
        return dict(self.steps).get(name, StepCluster())

    def node_selector_for(self, step: str) -> dict[str, str]:
        """Return the pipeline's node selector updated with the step's."""
        return {**dict(self.node_selector), **dict(self.step(step).node_selector)}

    def tolerations_for(self, step: str) -> list[Toleration]:
        """Return the pipeline's tolerations followed by the step's new ones."""
        merged = list(self.tolerations)
        merged.extend(t for t in self.step(step).tolerations if t not in merged)
        return merged

    def secrets_for(self, step: str) -> list[SecretRef]:
        """Return the pipeline's secrets; a step's secret replaces one with the same ``env``."""
        by_env = {ref.env: ref for ref in self.secrets}
        by_env.update({ref.env: ref for ref in self.step(step).secrets})
        return sorted(by_env.values(), key=lambda ref: ref.env)


@dataclass(frozen=True)
class ClusterMetadata:
    """The cluster metadata before a spec is built (lint reads it from the notebook).

    Attributes:
        cluster: The notebook's ``cellpipe.cluster`` metadata (None: none).
        step_names: The pipeline's steps (``steps.NAME`` must name one).
        path: The notebook, for error messages.
    """

    cluster: Any
    step_names: tuple[str, ...]
    path: str | None = None

    @classmethod
    def of(cls, spec: PipelineSpec) -> ClusterMetadata:
        """The spec's cluster metadata, steps and notebook."""
        return cls(spec.pipeline.cluster, tuple(spec.step_names), spec.notebook.path or None)


def cluster_settings(
    spec: PipelineSpec | ClusterMetadata,
    *,
    namespace: str | None = None,
    storage: str | None = None,
    volume_size: str | None = None,
    storage_class: str | None = None,
    access_mode: str | None = None,
    service_account: str | None = None,
    artifact_repository: str | None = None,
) -> ClusterSettings:
    """Read and check the spec's cluster metadata, with command-line overrides on top.

    Args:
        spec: The pipeline spec (its ``pipeline.cluster`` holds the metadata), or the
            metadata read before there is one.
        namespace: Overrides ``namespace`` (``--namespace``).
        storage: Overrides ``storage``: ``s3://bucket/prefix``, or ``volume`` for a workflow
            volume even when the metadata names an object store (``--storage``).
        volume_size: Overrides ``volume.size`` (``--volume-size``).
        storage_class: Overrides ``volume.storage_class`` (``--storage-class``).
        access_mode: Overrides ``volume.access_mode`` (``--access-mode``).
        service_account: Overrides ``service_account`` (``--service-account``).
        artifact_repository: Overrides ``artifact_repository`` (``--artifact-repository``):
            ``default`` (the workflow controller's), ``CONFIGMAP`` or ``CONFIGMAP:KEY``.

    Returns:
        The checked settings.

    Raises:
        CellpipeError: A value is malformed or unknown; the message names its key.
    """
    source = spec if isinstance(spec, ClusterMetadata) else ClusterMetadata.of(spec)
    path = source.path
    raw = thaw(source.cluster) if source.cluster is not None else {}
    reader = _Reader(path)
    meta = reader.mapping(raw, "")
    reader.known(meta, "", _KEYS)
    volume = reader.mapping(meta.get("volume", {}), "volume")
    reader.known(volume, "volume", _VOLUME_KEYS)

    def pick(override: str | None, value: Any, key: str, option: str) -> tuple[Any, str]:
        return (override, option) if override is not None else (value, key)

    store = reader.storage(*pick(storage, meta.get("storage"), "storage", "--storage"))
    secret = reader.storage_secret(meta.get("storage_secret"), "storage_secret")
    if store is not None and secret is None:
        raise reader.error("storage_secret", f"{store} needs the Secret with its credentials",
                           hint='add "storage_secret": {"secret": NAME, "access_key": KEY, '
                                '"secret_key": KEY} to cellpipe.cluster')
    endpoint = meta.get("storage_endpoint")
    if endpoint is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", str(endpoint)):
        raise reader.error("storage_endpoint", f"{endpoint!r} is not an http(s) URL",
                           hint="e.g. http://minio.ml:9000")
    known_steps = list(source.step_names)
    steps_meta = reader.mapping(meta.get("steps", {}), "steps")
    reader.known(steps_meta, "steps", known_steps, what="step")
    kfp = reader.mapping(meta.get("kfp", {}), "kfp")
    reader.known(kfp, "kfp", _KFP_KEYS)
    caching = kfp.get("caching")
    if caching is not None and not isinstance(caching, bool):
        raise reader.error("kfp.caching", f"{caching!r} is not true or false")
    require_limits = meta.get("require_limits", False)
    if not isinstance(require_limits, bool):
        raise reader.error("require_limits", f"{require_limits!r} is not true or false",
                           hint="true: every step needs a memory:SIZE limit")
    size_value, size_key = pick(volume_size, volume.get("size", "1Gi"), "volume.size",
                                "--volume-size")
    return ClusterSettings(
        namespace=reader.name(*pick(namespace, meta.get("namespace"), "namespace",
                                    "--namespace"), _DNS_LABEL),
        service_account=reader.name(*pick(service_account, meta.get("service_account"),
                                          "service_account", "--service-account"),
                                    _DNS_SUBDOMAIN),
        labels=reader.labels(meta.get("labels", {}), "labels", values=True),
        annotations=reader.labels(meta.get("annotations", {}), "annotations", values=False),
        node_selector=reader.labels(meta.get("node_selector", {}), "node_selector", values=True),
        tolerations=reader.tolerations(meta.get("tolerations", []), "tolerations"),
        secrets=reader.secrets(meta.get("secrets", []), "secrets"),
        require_limits=require_limits,
        volume_size=reader.size(size_value, size_key),
        volume_storage_class=reader.name(*pick(storage_class, volume.get("storage_class"),
                                               "volume.storage_class", "--storage-class"),
                                         _DNS_SUBDOMAIN),
        volume_access_mode=reader.access_mode(*pick(access_mode, volume.get("access_mode"),
                                                    "volume.access_mode", "--access-mode")),
        storage=store,
        storage_secret=secret if store is not None else None,
        storage_endpoint=str(endpoint) if endpoint is not None and store is not None else None,
        steps=tuple(
            (name, reader.step(steps_meta[name], f"steps.{name}")) for name in sorted(steps_meta)
        ),
        kfp_caching=caching,
        artifact_repository=reader.artifact_repository(*pick(
            _repository_option(artifact_repository), meta.get("artifact_repository"),
            "artifact_repository", "--artifact-repository")),
    )


def _repository_option(value: str | None) -> Any:
    """``--artifact-repository default|CONFIGMAP[:KEY]`` as the metadata would write it."""
    if value is None or value == "default":
        return value
    configmap, _, key = value.partition(":")
    return {"configmap": configmap, **({"key": key} if key else {})}


class _Reader:
    """Checks one metadata value at a time; errors name the key it sits under."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def where(self, key: str) -> str:
        if key.startswith("--"):
            return f"option {key}"
        return f"notebook metadata cellpipe.cluster{'.' + key if key else ''}"

    def error(self, key: str, problem: str, *, hint: str | None = None) -> CellpipeError:
        return CellpipeError(f"{self.where(key)}: {problem}", path=self.path, hint=hint)

    def mapping(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a mapping (JSON object), got {value!r}")
        return value

    def sequence(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {value!r}")
        return value

    def known(self, value: Mapping[str, Any], key: str, names: tuple[str, ...] | list[str],
              *, what: str = "key") -> None:
        for name in value:
            if name not in names:
                hint = did_you_mean(str(name), set(names)) or f"known: {', '.join(names)}"
                raise self.error(f"{key}.{name}" if key else str(name),
                                 f"unknown {what} {name!r}", hint=hint)

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}",
                             hint="quote numbers and booleans")
        return value

    def name(self, value: Any, key: str, pattern: re.Pattern[str]) -> str | None:
        if value is None:
            return None
        text = self.text(value, key)
        if len(text) > (63 if pattern is _DNS_LABEL else 253) or not pattern.fullmatch(text):
            raise self.error(key, f"{text!r} is not a valid Kubernetes name",
                             hint="use lowercase letters, digits and '-'")
        return text

    def labels(self, value: Any, key: str, *, values: bool) -> Pairs:
        pairs = []
        for name, item in self.mapping(value, key).items():
            prefix, _, short = str(name).rpartition("/")
            if (prefix and not _DNS_SUBDOMAIN.fullmatch(prefix)) or len(short) > 63 or (
                    not _LABEL_NAME.fullmatch(short)):
                raise self.error(f"{key}.{name}", f"{name!r} is not a valid label or annotation "
                                 "key", hint="use [prefix/]name with letters, digits, '-_.'")
            text = item if isinstance(item, str) else None
            if text is None or (values and (len(text) > 63 or not _LABEL_VALUE.fullmatch(text))):
                raise self.error(f"{key}.{name}", f"{item!r} is not a valid label value",
                                 hint="use a string of at most 63 letters, digits, '-', '_', '.'")
            pairs.append((str(name), text))
        return tuple(sorted(pairs))

    def tolerations(self, value: Any, key: str) -> tuple[Toleration, ...]:
        found = []
        for index, item in enumerate(self.sequence(value, key)):
            at = f"{key}[{index}]"
            raw = self.mapping(item, at)
            self.known(raw, at, _TOLERATION_KEYS)
            operator = raw.get("operator", "Equal")
            if operator not in ("Equal", "Exists"):
                raise self.error(f"{at}.operator", f"{operator!r} is not Equal or Exists")
            effect = raw.get("effect")
            if effect is not None and effect not in _EFFECTS:
                raise self.error(f"{at}.effect", f"{effect!r} is not one of "
                                 f"{', '.join(_EFFECTS)}", hint=did_you_mean(str(effect),
                                                                            set(_EFFECTS)))
            tol_key = None if raw.get("key") is None else self.text(raw["key"], f"{at}.key")
            tol_value = None if raw.get("value") is None else self.text(raw["value"],
                                                                         f"{at}.value")
            if operator == "Exists" and tol_value is not None:
                raise self.error(f"{at}.value", "a toleration with operator Exists has no value")
            if operator == "Equal" and tol_key is None:
                raise self.error(f"{at}.key", "a toleration with operator Equal needs a key",
                                 hint='use "operator": "Exists" to tolerate every taint')
            seconds = raw.get("toleration_seconds")
            if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)
                                        or effect != "NoExecute"):
                raise self.error(f"{at}.toleration_seconds", f"{seconds!r} needs to be whole "
                                 "seconds, with effect NoExecute")
            found.append(Toleration(tol_key, operator, tol_value, effect, seconds))
        return tuple(found)

    def secrets(self, value: Any, key: str) -> tuple[SecretRef, ...]:
        found: dict[str, SecretRef] = {}
        for index, item in enumerate(self.sequence(value, key)):
            at = f"{key}[{index}]"
            raw = self.refuse_values(self.mapping(item, at), at)
            self.known(raw, at, _SECRET_KEYS)
            for field in _SECRET_KEYS:
                if field not in raw:
                    raise self.error(at, f"missing {field!r}",
                                     hint='write {"env": VAR, "secret": NAME, "key": KEY}')
            env = self.text(raw["env"], f"{at}.env")
            if not _ENV_NAME.fullmatch(env):
                raise self.error(f"{at}.env", f"{env!r} is not an environment variable name")
            if env in found:
                raise self.error(f"{at}.env", f"{env!r} is given twice")
            secret = self.name(raw["secret"], f"{at}.secret", _DNS_SUBDOMAIN)
            found[env] = SecretRef(env, str(secret), self.secret_key(raw["key"], f"{at}.key"))
        return tuple(found.values())

    def refuse_values(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        """Reject a secret reference that carries a value (``value``, ``access_key_value``...)."""
        for name, item in raw.items():
            if "value" in str(name).lower():
                raise self.error(f"{key}.{name}", _NO_VALUES)
            if isinstance(item, Mapping) and any("value" in str(k).lower() for k in item):
                raise self.error(f"{key}.{name}", _NO_VALUES)
        return raw

    def secret_key(self, value: Any, key: str) -> str:
        text = self.text(value, key)
        if not _SECRET_DATA_KEY.fullmatch(text):
            raise self.error(key, f"{text!r} is not a valid key of a Secret")
        return text

    def storage(self, value: Any, key: str) -> str | None:
        if value is None or value == "volume":
            return None
        text = self.text(value, key)
        if not _S3_URL.fullmatch(text):
            raise self.error(key, f"{text!r} is not an s3://bucket/prefix URL",
                             hint='write s3://BUCKET/PREFIX, or "volume" for a workflow volume')
        return text.rstrip("/")

    def storage_secret(self, value: Any, key: str) -> StorageSecret | None:
        if value is None:
            return None
        raw = self.refuse_values(self.mapping(value, key), key)
        self.known(raw, key, _STORAGE_SECRET_KEYS)
        if "secret" not in raw:
            raise self.error(key, "missing 'secret' (the name of the Secret)")
        return StorageSecret(
            secret=str(self.name(raw["secret"], f"{key}.secret", _DNS_SUBDOMAIN)),
            access_key=self.secret_key(raw.get("access_key", "accesskey"), f"{key}.access_key"),
            secret_key=self.secret_key(raw.get("secret_key", "secretkey"), f"{key}.secret_key"),
        )

    def artifact_repository(self, value: Any, key: str) -> ArtifactRepository | None:
        if value is None:
            return None
        if value == "default":
            return ArtifactRepository()
        if not isinstance(value, Mapping):
            raise self.error(key, f"{value!r} is neither \"default\" nor a ConfigMap's key",
                             hint='write "default" (the workflow controller\'s repository) '
                                  'or {"configmap": NAME, "key": KEY}')
        self.known(value, key, _ARTIFACT_REPOSITORY_KEYS)
        configmap = self.name(value.get("configmap"), f"{key}.configmap", _DNS_SUBDOMAIN)
        if configmap is None:
            raise self.error(key, "missing 'configmap' (the ConfigMap naming the repository)")
        entry = value.get("key")
        return ArtifactRepository(configmap, None if entry is None else
                                  self.secret_key(entry, f"{key}.key"))

    def size(self, value: Any, key: str) -> str:
        try:
            return check_quantity(value, kind="memory", step=None, annotation=self.where(key))
        except CellpipeError as exc:
            raise CellpipeError(exc.message, path=self.path, hint=exc.hint) from None

    def access_mode(self, value: Any, key: str) -> str:
        if value is None:
            return "ReadWriteOnce"
        if value not in _ACCESS_MODES:
            problem = ("steps write to the volume; ReadOnlyMany cannot be written"
                       if value == "ReadOnlyMany" else f"{value!r} is not an access mode")
            hint = did_you_mean(str(value), set(_ACCESS_MODES)) or f"use {', '.join(_ACCESS_MODES)}"
            raise self.error(key, problem, hint=hint)
        return str(value)

    def step(self, value: Any, key: str) -> StepCluster:
        raw = self.mapping(value, key)
        self.known(raw, key, _STEP_KEYS)
        return StepCluster(
            node_selector=self.labels(raw.get("node_selector", {}), f"{key}.node_selector",
                                      values=True),
            tolerations=self.tolerations(raw.get("tolerations", []), f"{key}.tolerations"),
            secrets=self.secrets(raw.get("secrets", []), f"{key}.secrets"),
        )
