"""JupyterLab started by the tests, driven by Playwright in Debian's headless Chromium.

Screenshots go to ``$CELLPIPE_TEST_ARTIFACTS`` (default ``build/test-artifacts``). Outside
CI the tests skip, saying why, when Chromium, JupyterLab or Playwright is missing; under
CI=true such a skip is a failure (tests/conftest.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = os.environ.get("CELLPIPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def artifacts_dir() -> Path:
    """Where screenshots are kept (CI keeps this directory)."""
    path = Path(os.environ.get("CELLPIPE_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Lab:
    """A running JupyterLab: its URL, token and root directory."""

    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        """The URL that opens ``name`` (relative to the root) in JupyterLab."""
        return f"{self.url}/lab/tree/{name}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def start_lab(tmp_path: Path, python_path: Sequence[Path] = ()) -> Iterator[Lab]:
    """JupyterLab on a free port, serving ``tmp_path/lab``; runs go under ``tmp_path``.

    ``python_path`` goes in front of the server's ``PYTHONPATH``: a folder holding a
    ``*.dist-info`` registers its entry points (plugins) with that server only.
    """
    pytest.importorskip("jupyterlab", reason="JupyterLab is installed by `.[test]`")
    root = tmp_path / "lab"
    root.mkdir()
    token = secrets.token_hex(16)
    port = _free_port()
    log = tmp_path / "jupyter-lab.log"
    env = {**os.environ, "CELLPIPE_HOME": str(tmp_path / "runs"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime")}
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(
            [*map(str, python_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"]
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield Lab(url, token, root, log)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab as it is installed (no plugins but what the environment has)."""
    with start_lab(tmp_path) as running:
        yield running


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A Playwright page in Debian's Chromium (no browser download works here)."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; apt-get install chromium (scripts/test.sh)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is installed by `.[test]`")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
