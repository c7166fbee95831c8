"""Fixtures for the server extension's routes: pytest-jupyter's server, with cellpipe on.

pytest only honours ``pytest_plugins`` in the top-level conftest, and there it would put
pytest-jupyter's autouse fixtures (a fresh event loop, a temporary HOME) on every test of
the suite; imported here, its fixtures and hooks apply to ``tests/server`` only.
"""

from __future__ import annotations

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403

SERVER_EXTENSIONS = {"ServerApp": {"jpserver_extensions": {"cellpipe.server.app": True}}}


@pytest.fixture
def jp_server_config():
    return SERVER_EXTENSIONS


@pytest.fixture(autouse=True)
def _runs_beside_the_notebook(monkeypatch):
    # runs go to .cellpipe beside the notebook (under jp_root_dir), whatever the shell says
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)


# kmock's in-memory Kubernetes API (with Argo's Workflow resource), for POST /cellpipe/submit
from tests.targets.argo.conftest import kube  # noqa: E402, F401


@pytest.fixture
def kube_context(kube, tmp_path, monkeypatch):  # noqa: F811 - kube is the fixture above
    """A kubeconfig whose current context is kmock's API, namespace ``ml``, token auth."""
    import yaml

    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": kube.url}}],
        "users": [{"name": "ci", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "ml", "context": {"cluster": "kmock", "user": "ci",
                                                "namespace": "ml"}}],
        "current-context": "ml",
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    return kube
