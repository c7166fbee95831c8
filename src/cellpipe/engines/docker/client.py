"""Reaching the Docker daemon through the ``docker`` SDK, with errors that say what to do."""

from __future__ import annotations

import os
from typing import Any

from cellpipe.errors import CellpipeError, MissingDependencyError, ServiceUnavailableError

DEFAULT_BASE_IMAGE = "python:3.11-slim"


def docker_module() -> Any:
    """The ``docker`` SDK, or an error with the install command."""
    try:
        import docker
    except ImportError as exc:
        raise MissingDependencyError(
            "the docker engine needs the Docker SDK for Python, which is not installed",
            hint="pip install 'cellpipe[docker]'",
        ) from exc
    return docker


def connect(client: Any = None) -> Any:
    """A client that answered a ping, or a clear error when the daemon is not there."""
    if client is not None:
        return client
    docker = docker_module()
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:  # the SDK raises DockerException, requests errors, OSError
        reason = _root_reason(exc)
        raise ServiceUnavailableError(
            f"cannot reach the Docker daemon at {where}: {reason}",
            hint="start the daemon (e.g. 'sudo systemctl start docker'; in a cellpipe "
            "checkout 'bash scripts/docker_up.sh'), set DOCKER_HOST, or run with --engine local",
        ) from exc
    return client


def _root_reason(exc: BaseException) -> str:
    """The OS-level reason under the SDK's wrapped errors ("No such file or directory")."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        error = todo.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
        todo.extend(arg for arg in error.args if isinstance(arg, BaseException))
        todo.extend(e for e in (error.__cause__, error.__context__) if e is not None)
    return str(exc) or type(exc).__name__


def base_image(spec_base: str = "", option: str | None = None) -> str:
    """The pipeline's base image.

    ``--base-image``, else ``CELLPIPE_BASE_IMAGE``, else the notebook's ``docker_image``
    metadata, else ``python:3.11-slim``. A step's ``image:`` tag wins over all of them
    (see the builder).
    """
    return (option or os.environ.get("CELLPIPE_BASE_IMAGE") or spec_base
            or DEFAULT_BASE_IMAGE)


def ensure_image(client: Any, ref: str, what: str) -> Any:
    """The local image ``ref``, pulled when missing; a clear error when it cannot be had."""
    docker = docker_module()
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise CellpipeError(f"cannot inspect the {what} {ref}: {exc.explanation}") from exc
    try:
        return client.images.pull(ref)
    except Exception as exc:
        raise CellpipeError(
            f"the {what} {ref} is not on this machine and could not be pulled: "
            f"{getattr(exc, 'explanation', None) or exc}",
            hint="pull or build it first, or name a local image with --base-image or "
            "CELLPIPE_BASE_IMAGE (in a cellpipe checkout, scripts/docker_up.sh builds "
            "cellpipe-base:bookworm without network)",
        ) from exc
