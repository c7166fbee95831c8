"""Stores for the marshal tests: a local directory and an in-memory fsspec store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from cellpipe.marshal import ArtifactStore, open_store


@pytest.fixture
def local_store(tmp_path: Path) -> ArtifactStore:
    return open_store(tmp_path / "store")


@pytest.fixture
def memory_store() -> Any:
    import fsspec

    url = f"memory://cellpipe-test-{uuid.uuid4().hex}"
    yield open_store(url)
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://")
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest) -> ArtifactStore:
    """Each test using this runs against both kinds of store."""
    return request.getfixturevalue(f"{request.param}_store")


def sidecar(store: ArtifactStore, step: str, name: str) -> dict[str, Any]:
    """The sidecar as stored (read raw, not through ArtifactMeta)."""
    raw = store._read_sidecar(step, name)
    assert raw is not None
    return json.loads(raw)


def roundtrip(store: ArtifactStore, value: object, name: str = "x") -> tuple[object, str]:
    """Save and load ``value``; return the loaded value and the format the sidecar names."""
    meta = store.save("s", name, value)
    assert sidecar(store, "s", name)["format"] == meta.format
    return store.load("s", name), meta.format
