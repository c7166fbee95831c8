"""Where a run is tracked: the URI, the experiment, the credentials' Secret (no MLflow here).

Resolution order for a local run (:func:`resolve_tracking`): the ``track`` argument
(``cellpipe run --track URI``, ``cellpipe.run(..., track=URI)``; ``False`` / ``--no-track``
turns tracking off), the notebook's ``metadata.cellpipe.tracking`` (a URI, or
``{"uri": ..., "experiment": ..., "secret": ...}``), then ``$MLFLOW_TRACKING_URI``. The
experiment is the metadata's ``experiment``, else ``$MLFLOW_EXPERIMENT_NAME``, else the
pipeline's name.

Compiling for a cluster reads only the first two (:func:`resolve_cluster_tracking`): a
manifest does not depend on the compiling shell's environment.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cellpipe.errors import CellpipeError, MissingDependencyError

__all__ = ["CREDENTIAL_ENV", "ENV_EXPERIMENT", "ENV_RUN", "ENV_URI", "Tracking",
           "TrackingSecret", "TrackingWarning", "client_requirement", "require_client",
           "resolve_cluster_tracking", "resolve_tracking", "tracking_metadata"]

ENV_URI = "MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "MLFLOW_EXPERIMENT_NAME"
# What groups a cluster run's steps under one parent MLflow run: the workflow's name.
ENV_RUN = "CELLPIPE_TRACKING_RUN"
# The credentials MLflow's client reads, by the key of ``tracking.secret`` that names them.
CREDENTIAL_ENV = {"token": "MLFLOW_TRACKING_TOKEN", "username": "MLFLOW_TRACKING_USERNAME",
                  "password": "MLFLOW_TRACKING_PASSWORD"}
_METADATA_KEYS = ("uri", "experiment", "secret")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_WHERE = "notebook metadata cellpipe.tracking"


class TrackingWarning(UserWarning):
    """A run could not be tracked; the run itself is intact."""


@dataclass(frozen=True)
class TrackingSecret:
    """A Kubernetes Secret with the tracking server's credentials: env name → key in it."""

    name: str
    keys: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Tracking:
    """An MLflow tracking server, the experiment runs go to, and where that was said.

    ``source`` is ``option`` (``--track``/``track=``), ``metadata`` or ``environment``.
    """

    uri: str
    experiment: str
    source: str = "option"
    secret: TrackingSecret | None = None

    def describe(self) -> str:
        """One line for the user: where runs go and who said so."""
        said = {"option": "--track", "metadata": "the notebook's metadata",
                "environment": f"${ENV_URI}"}.get(self.source, self.source)
        return f"MLflow at {self.uri}, experiment {self.experiment!r} (from {said})"


def tracking_metadata(metadata: Any) -> dict[str, Any]:
    """``metadata.cellpipe.tracking`` as a dict (``{}`` when absent; a string is its URI).

    Raises:
        CellpipeError: it is neither a string nor a mapping, or names unknown keys.
    """
    section = metadata.get("cellpipe") if isinstance(metadata, Mapping) else None
    value = section.get("tracking") if isinstance(section, Mapping) else None
    if value is None:
        return {}
    if isinstance(value, str):
        return {"uri": value}
    if not isinstance(value, Mapping):
        raise CellpipeError(f"{_WHERE} is a URI or a mapping, not {type(value).__name__}",
                            hint='write "tracking": "http://mlflow:5000" or '
                            '{"uri": ..., "experiment": ...}')
    unknown = sorted(set(value) - set(_METADATA_KEYS))
    if unknown:
        raise CellpipeError(f"{_WHERE} has unknown key(s) {', '.join(unknown)}",
                            hint=f"the keys are {', '.join(_METADATA_KEYS)}")
    return dict(value)


def resolve_tracking(
    metadata: Any, pipeline: str, track: str | bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> Tracking | None:
    """Where a local run is tracked (None: it is not); see the module's order.

    Raises:
        CellpipeError: the metadata is malformed.
    """
    environ = os.environ if environ is None else environ
    if track is False:
        return None
    meta = tracking_metadata(metadata)
    experiment = _experiment(meta, pipeline, environ)
    if isinstance(track, str) and track.strip():
        return Tracking(_uri(track, "--track"), experiment, "option", _secret(meta))
    if meta.get("uri"):
        return Tracking(_uri(meta["uri"], f"{_WHERE}.uri"), experiment, "metadata",
                        _secret(meta))
    if track is True and not environ.get(ENV_URI):
        raise CellpipeError("tracking was asked for but no tracking URI is known",
                            hint=f"pass --track URI, set {ENV_URI}, or add "
                            '"tracking": URI to the notebook\'s cellpipe metadata')
    if environ.get(ENV_URI):
        return Tracking(_uri(environ[ENV_URI], ENV_URI), experiment, "environment")
    return None


def resolve_cluster_tracking(
    metadata: Any, pipeline: str, track: str | bool | None = None,
) -> Tracking | None:
    """Where a cluster run's steps log: ``--track URI`` or the metadata, never the shell's env.

    Raises:
        CellpipeError: the URI holds a password (credentials go by Secret reference).
    """
    tracking = resolve_tracking(metadata, pipeline, track, environ={})
    if tracking is not None and re.match(r"[a-z+]+://[^/@]*:[^/@]*@", tracking.uri):
        raise CellpipeError(
            "the tracking URI holds a password, which would reach the manifest",
            hint='put the credentials in a Kubernetes Secret and name it in the metadata: '
            '"tracking": {"uri": ..., "secret": {"name": SECRET, "username": KEY, '
            '"password": KEY}}')
    return tracking


def require_client(tracking: Tracking) -> None:
    """Refuse, before anything runs, when MLflow's client is not installed.

    Raises:
        MissingDependencyError: ``mlflow`` cannot be imported (``cellpipe[mlflow]``).
    """
    try:
        found = importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):  # a broken install, or one blocked in sys.modules
        found = False
    if not found:
        raise MissingDependencyError.for_extra("mlflow", "mlflow",
                                               f"tracking runs in {tracking.uri}")


def client_requirement() -> str:
    """What a step image needs to log to MLflow: ``mlflow-skinny``.

    Pinned to the version here when it is installed (it is with the full ``mlflow`` too).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mlflow-skinny=={version('mlflow-skinny')}"
    except PackageNotFoundError:
        return "mlflow-skinny>=3.0"


def _experiment(meta: Mapping[str, Any], pipeline: str, environ: Mapping[str, str]) -> str:
    value = meta.get("experiment") or environ.get(ENV_EXPERIMENT) or pipeline
    if not isinstance(value, str) or not value.strip():
        raise CellpipeError(f"{_WHERE}.experiment is a name, not {value!r}")
    return value.strip()


def _uri(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CellpipeError(f"{where}: {value!r} is no tracking URI",
                            hint="give the server's URL, e.g. http://127.0.0.1:5000")
    return value.strip().rstrip("/") if "://" in value else value.strip()


def _secret(meta: Mapping[str, Any]) -> TrackingSecret | None:
    """``secret``: a Secret's name (its key ``token``), or a mapping.

    The mapping: ``{"name": SECRET, "token": KEY}`` or ``"username"`` and ``"password"``.
    """
    value = meta.get("secret")
    if value is None:
        return None
    if isinstance(value, str):
        value = {"name": value, "token": "token"}
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise CellpipeError(f"{_WHERE}.secret names a Kubernetes Secret",
                            hint='write "secret": NAME or {"name": NAME, "token": KEY}')
    unknown = sorted(set(value) - {"name", *CREDENTIAL_ENV})
    if unknown:
        raise CellpipeError(f"{_WHERE}.secret has unknown key(s) {', '.join(unknown)}",
                            hint="secret values never go into notebooks or manifests: name "
                            f"the Secret and its keys ({', '.join(CREDENTIAL_ENV)})")
    keys = []
    for field, env in CREDENTIAL_ENV.items():
        key = value.get(field)
        if key is None:
            continue
        if not isinstance(key, str) or not _SECRET_KEY.fullmatch(key):
            raise CellpipeError(f"{_WHERE}.secret.{field}: {key!r} is no key of a Secret")
        keys.append((env, key))
    if not keys:
        raise CellpipeError(f"{_WHERE}.secret names no key",
                            hint='add "token": KEY, or "username" and "password"')
    return TrackingSecret(value["name"], tuple(keys))
