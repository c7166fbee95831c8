"""Docker tests run against a real daemon with a local base image (scripts/docker_up.sh).

Outside CI they are skipped, saying why, when there is no daemon or no base image; under
CI=true such a skip is turned into a failure (tests/conftest.py).
"""

from __future__ import annotations

import os

import pytest

BASE_IMAGE = os.environ.get("CELLPIPE_TEST_BASE_IMAGE", "cellpipe-base:bookworm")
REGISTRY = os.environ.get("CELLPIPE_REGISTRY", "127.0.0.1:5000")


@pytest.fixture(scope="session")
def docker_client():
    """A client of the real daemon whose base image exists (else skip, saying why)."""
    docker = pytest.importorskip("docker", reason="the docker SDK is installed by `.[test]`")
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker daemon ({exc}); run `bash scripts/docker_up.sh`")
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"no base image {BASE_IMAGE}; run `bash scripts/docker_up.sh`")
    return client


@pytest.fixture
def docker_env(docker_client, monkeypatch):
    """The base image every docker test builds on (no public registry is reachable here)."""
    monkeypatch.setenv("CELLPIPE_BASE_IMAGE", BASE_IMAGE)
    return docker_client
