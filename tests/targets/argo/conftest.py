"""kmock's in-memory Kubernetes API over real HTTP, for API-level tests of the Argo target.

No Kubernetes API server can run here; these fixtures serve kmock's in-memory Kubernetes
API on a local port from an event loop in a background thread. Tests talk to it with the
real ``kubernetes`` client and play Argo's controller themselves (patching ``status``).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

try:  # the compile tests next door need neither; the API-level tests skip without them
    import kmock
    import kubernetes
except ImportError:  # pragma: no cover
    kmock = kubernetes = None

WORKFLOWS = ("argoproj.io", "v1alpha1", "workflows")
CRON_WORKFLOWS = ("argoproj.io", "v1alpha1", "cronworkflows")
VERBS = {"create", "get", "list", "watch", "patch", "update", "delete"}


def _naming_emulator() -> Any:
    """kmock 0.8 stores an object created with only ``generateName`` under the name None;
    this emulator names it as the API server does (generateName + 5 random characters)."""

    class NamingEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
        async def _handle(self, request: Any) -> Any:
            data = request.data
            if request.action == kmock.action.CREATE and isinstance(data, dict):
                meta = data.setdefault("metadata", {})
                if not meta.get("name") and meta.get("generateName"):
                    alphabet = "bcdfghjklmnpqrstvwxz2456789"
                    suffix = "".join(secrets.choice(alphabet) for _ in range(5))
                    meta["name"] = meta["generateName"] + suffix
            return await super()._handle(request)

    return NamingEmulator()


@dataclass
class Kube:
    """A running emulator, its URL and its event loop."""

    emu: Any
    url: str
    loop: asyncio.AbstractEventLoop

    def api(self) -> Any:
        """A fresh ``kubernetes.client.ApiClient`` pointed at the emulator."""
        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        return kubernetes.client.ApiClient(configuration)

    def in_loop(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (e.g. adding a kmock reaction) in the emulator's event loop."""

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=5)

    def fetches(self) -> int:
        """How many GETs of a workflow the emulator has served so far (its request log)."""
        view = self.emu[kmock.action.FETCH, kmock.resource(*WORKFLOWS)]
        count: int = self.in_loop(lambda: len(view))
        return count

    def workflow(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """The stored Workflow object, read straight from the emulator's memory."""

        def read() -> dict[str, Any]:
            key = (kmock.resource(*WORKFLOWS), namespace, name)
            return dict(self.emu.objects[key].raw)

        result: dict[str, Any] = self.in_loop(read)
        return result

    def stored(self, plural: str, namespace: str) -> dict[str, dict[str, Any]]:
        """Name → object of every ``argoproj.io`` ``plural`` in ``namespace``, from memory
        (deleted ones left out)."""

        def read() -> dict[str, dict[str, Any]]:
            wanted = kmock.resource("argoproj.io", "v1alpha1", plural)
            return {key[2]: dict(obj.raw) for key, obj in list(self.emu.objects.items())
                    if key[0] == wanted and key[1] == namespace and not obj.deleted}

        result: dict[str, dict[str, Any]] = self.in_loop(read)
        return result


def _serve(declare_workflows: bool,
           extra: tuple[tuple[str, str, str], ...] = ()) -> Iterator[Kube]:
    """Serve kmock; ``extra`` declares more custom resources: (group/version/plural, kind,
    singular), e.g. Katib's experiments."""
    if kmock is None or kubernetes is None:
        pytest.skip("needs kmock and kubernetes (pip install kmock kubernetes)")
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        emu = _naming_emulator()
        with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
            warnings.simplefilter("ignore", DeprecationWarning)
            emu.resources.load_bundled()  # the core API (pods) for discovery and listing
        if declare_workflows:
            emu.resources["argoproj.io/v1alpha1/workflows"] = kmock.ResourceInfo(
                namespaced=True, kind="Workflow", singular="workflow", verbs=VERBS
            )
            emu.resources["argoproj.io/v1alpha1/cronworkflows"] = kmock.ResourceInfo(
                namespaced=True, kind="CronWorkflow", singular="cronworkflow", verbs=VERBS
            )
        for resource, kind, singular in extra:
            emu.resources[resource] = kmock.ResourceInfo(
                namespaced=True, kind=kind, singular=singular, verbs=VERBS)
        stop = asyncio.Event()
        async with emu, kmock.Server(emu, port=0) as server:
            box.update(kube=Kube(emu, str(server.url).rstrip("/"), loop), stop=stop)
            started.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10), "kmock did not start"
    try:
        yield box["kube"]
    finally:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(10)
        loop.close()


@pytest.fixture
def kube() -> Iterator[Kube]:
    """kmock serving the core API and Argo's Workflow and CronWorkflow resources."""
    yield from _serve(declare_workflows=True)


@pytest.fixture
def kube_without_argo() -> Iterator[Kube]:
    """kmock serving the core API only: no Workflow CRD, as on a cluster without Argo."""
    yield from _serve(declare_workflows=False)


def kubeconfig(tmp_path: Path, url: str, namespace: str = "ml") -> Path:
    """A kubeconfig whose current context is kmock's API at ``url`` in ``namespace``."""
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": url}}],
        "users": [{"name": "ci", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "ml", "context": {"cluster": "kmock", "user": "ci",
                                                "namespace": namespace}}],
        "current-context": "ml",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def cluster(kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kube:
    """kmock reached through KUBECONFIG, as `cellpipe` finds a user's cluster."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, kube.url)))
    return kube
