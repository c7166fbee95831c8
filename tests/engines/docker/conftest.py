"""Docker tests run against a real daemon with a local base image (scripts/docker_up.sh).

Outside CI they are skipped, saying why, when there is no daemon or no base image; under
CI=true such a skip is turned into a failure (tests/conftest.py, which has the client).
"""

from __future__ import annotations

import pytest

from tests.conftest import BASE_IMAGE, REGISTRY

__all__ = ["BASE_IMAGE", "REGISTRY"]


@pytest.fixture
def docker_env(docker_client, monkeypatch):
    """The base image every docker test builds on (no public registry is reachable here)."""
    monkeypatch.setenv("CELLPIPE_BASE_IMAGE", BASE_IMAGE)
    return docker_client
