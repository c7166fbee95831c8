"""A real MLflow tracking server for the tracking tests: one per session, on 127.0.0.1.

``mlflow server`` (the full package, from the test extras) with a SQLite backend and proxied
artifacts in a temporary directory; it takes ~14 s to answer ``/health``. Its output goes to
a log file that a failing test's report shows. Stopped (SIGTERM to the CLI, which stops its
workers) at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_SECONDS = 90


@dataclass(frozen=True)
class MlflowServer:
    """The server's URI, and its log."""

    uri: str
    log: Path

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server():
    executable = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which(
        "mlflow")
    assert executable, "the mlflow CLI comes with the test extras (pip install -e '.[test]')"
    directory = Path(tempfile.mkdtemp(prefix="cellpipe-mlflow-server-"))
    port = free_port()
    log = directory / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [executable, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
             "--artifacts-destination", str(directory / "mlartifacts")],
            stdout=out, stderr=subprocess.STDOUT, cwd=directory,
            env={**os.environ, "MLFLOW_TRACKING_URI": ""}, start_new_session=True)
    server = MlflowServer(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited ({process.returncode}):\n{server.log_text()}")
            try:
                with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as answer:
                    if answer.read().strip() == b"OK":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer in {STARTUP_SECONDS}s:\n"
                            f"{server.log_text()}")
            time.sleep(0.5)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the CLI and its workers
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing tracking test shows the end of the server's log."""
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("mlflow_server") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(server, MlflowServer):
        report.sections.append(("mlflow server log", server.log_text()))


@pytest.fixture(autouse=True)
def _no_ambient_tracking(monkeypatch):
    """Runs are tracked only where a test says so (not by the shell's environment)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("CELLPIPE_TRACKING_RUN", raising=False)
