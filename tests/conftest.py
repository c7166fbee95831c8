"""Shared test helpers: notebooks are built in memory with nbformat.v4.new_*."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_notebooks"
# Docker tests build on a local base image (no public registry is reachable here).
BASE_IMAGE = os.environ.get("CELLPIPE_TEST_BASE_IMAGE", "cellpipe-base:bookworm")
REGISTRY = os.environ.get("CELLPIPE_REGISTRY", "127.0.0.1:5000")


def make_nb(*cells: Any, metadata: dict[str, Any] | None = None) -> nbformat.NotebookNode:
    """Build a notebook from cells given as source strings, ``(tags, source)`` pairs
    (tags: one tag, a list, or ``""`` for none), or ``("md", text)`` for markdown."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(
        {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    if metadata:
        nb.metadata.update(metadata)
    for index, cell in enumerate(cells):
        if isinstance(cell, str):
            new = nbformat.v4.new_code_cell(cell)
        elif cell[0] == "md":
            new = nbformat.v4.new_markdown_cell(cell[1])
        else:
            tags, source = cell
            tags = ([tags] if tags else []) if isinstance(tags, str) else list(tags)
            new = nbformat.v4.new_code_cell(source, metadata={"tags": tags} if tags else {})
        new["id"] = f"c{index:02d}"
        nb.cells.append(new)
    return nb


def write_nb(directory: Path, *cells: Any, name: str = "nb.ipynb") -> Path:
    """Write a notebook built by :func:`make_nb` to ``directory / name``."""
    path = directory / name
    nbformat.write(make_nb(*cells), path)
    return path


@pytest.fixture
def nb_builder():
    return make_nb


def sample_paths() -> list[Path]:
    return sorted(SAMPLES.glob("*.ipynb"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped ``docker`` or ``browser`` test is a failure: CI installs them."""
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("CI", "").lower() == "true"
            and any(item.get_closest_marker(m) is not None for m in ("docker", "browser"))):
        report.outcome = "failed"
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"docker/browser test skipped under CI=true (CI must run it): {reason}"


@pytest.fixture(scope="session")
def docker_client():
    """A client of the real daemon whose base image exists (else skip, saying why).

    The daemon, registry and base image come from scripts/docker_up.sh; under CI=true a
    skip here becomes a failure (pytest_runtest_makereport above).
    """
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


@dataclass(frozen=True)
class S3Server:
    """A real S3 API server on 127.0.0.1 (moto's server mode) and a bucket in it."""

    endpoint: str
    bucket: str
    access_key: str = "cellpipe-test"
    secret_key: str = "cellpipe-test-secret"

    @property
    def env(self) -> dict[str, str]:
        """What a process (a step, s3fs, boto) needs to reach it."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free port for the whole session, with bucket ``cellpipe``.

    Not a mock object: an HTTP server speaking the S3 API, reached through s3fs and boto
    as a MinIO or AWS endpoint would be. The credentials are set in this process's
    environment while it runs (s3fs and botocore read them there).
    """
    import socket

    pytest.importorskip("s3fs", reason="s3fs is installed by `.[test]`")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is in `.[test]`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    found = S3Server(endpoint=f"http://127.0.0.1:{port}", bucket="cellpipe")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in found.env.items():
            patch.setenv(key, value)
        import boto3

        boto3.client("s3", endpoint_url=found.endpoint).create_bucket(Bucket=found.bucket)
        try:
            yield found
        finally:
            server.stop()
