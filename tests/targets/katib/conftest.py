"""kmock's in-memory Kubernetes API serving Katib's resources, for API-level tests.

No Kubernetes API server (nor Katib) can run here: kmock serves the core API, Argo's
Workflows and Katib's ``experiments`` and ``trials`` (``kubeflow.org/v1beta1``) over real
HTTP (see tests/targets/argo/conftest.py); the tests play Katib's controller themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.targets.argo.conftest import Kube, _serve, kubeconfig

KATIB_RESOURCES = (("kubeflow.org/v1beta1/experiments", "Experiment", "experiment"),
                   ("kubeflow.org/v1beta1/trials", "Trial", "trial"))


@pytest.fixture
def katib_kube() -> Iterator[Kube]:
    """kmock serving the core API, Argo's Workflows and Katib's experiments and trials."""
    yield from _serve(declare_workflows=True, extra=KATIB_RESOURCES)


@pytest.fixture
def katib_cluster(katib_kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kube:
    """Katib's kmock reached through KUBECONFIG (namespace ml), as `cellpipe` finds it."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, katib_kube.url)))
    return katib_kube
