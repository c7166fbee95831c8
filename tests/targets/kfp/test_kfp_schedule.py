"""Kubeflow Pipelines schedules: recurring runs through ``kfp.Client``.

No KFP API server can run here. What cellpipe passes to ``kfp.Client`` is tested with a fake
client (it answers with kfp_server_api's own models) put in place of
:func:`cellpipe.targets.kfp.schedule.connect`, the one seam where schedules get their
client; the error for a host that cannot be reached is tested with the real client against
a closed port, as the submit test does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any

import pytest
import yaml

from cellpipe import api
from cellpipe.errors import CellpipeError
from tests.conftest import ROOT, write_nb

pytest.importorskip("kfp", reason="kfp is installed by `.[kfp]`")
import kfp_server_api as models

CELLS = [
    ("parameters", "n = 5\nrate = 0.5"),
    ("step:make", "values = [rate * i for i in range(n)]"),
    ("step:total", "total = sum(values)"),
    ("metrics", "total"),
]
IMAGES = {"make": "registry.local/nb-make:1", "total": "registry.local/nb-total:1"}
HOST = "http://kfp.test:8888"


def recurring(run_id: str, name: str, cron: str = "0 0 3 * * *", *, mode: str = "ENABLE",
              max_concurrency: str = "1", parameters: dict[str, Any] | None = None) -> Any:
    return models.V2beta1RecurringRun(
        recurring_run_id=run_id, display_name=name, mode=mode, max_concurrency=max_concurrency,
        trigger=models.V2beta1Trigger(cron_schedule=models.V2beta1CronSchedule(cron=cron)),
        runtime_config=models.V2beta1RuntimeConfig(parameters=parameters or {}))


class FakeClient:
    """Records what cellpipe asks of ``kfp.Client`` and answers as the server would."""

    def __init__(self, host: str, namespace: str | None, runs: list[Any] | None = None):
        self.host, self.namespace = host, namespace
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.runs = runs if runs is not None else []  # the "server's": shared by clients
        self.package: dict[str, Any] | None = None

    def create_experiment(self, name: str, description: str | None = None,
                          namespace: str | None = None) -> Any:
        self.calls.append(("create_experiment", {"name": name, "namespace": namespace}))
        print(f"Experiment details: {self.host}/#/experiments/details/e-1")  # as kfp does
        return models.V2beta1Experiment(experiment_id="e-1", display_name=name)

    def create_recurring_run(self, **kwargs: Any) -> Any:
        self.calls.append(("create_recurring_run", kwargs))
        with open(kwargs["pipeline_package_path"], encoding="utf-8") as package:
            self.package = next(yaml.safe_load_all(package))  # the file exists while asked
        created = recurring(f"r-{len(self.runs) + 1}", kwargs["job_name"],
                            kwargs["cron_expression"],
                            mode="ENABLE" if kwargs["enabled"] else "DISABLE",
                            max_concurrency=str(kwargs["max_concurrency"]),
                            parameters=kwargs["params"])
        self.runs.append(created)
        return created

    def list_recurring_runs(self, page_token: str = "", page_size: int = 10,
                            namespace: str | None = None, **_: Any) -> Any:
        self.calls.append(("list_recurring_runs", {"page_token": page_token,
                                                   "namespace": namespace}))
        start = int(page_token or 0)
        end = start + 2  # small pages: cellpipe must follow next_page_token
        return models.V2beta1ListRecurringRunsResponse(
            recurring_runs=self.runs[start:end], total_size=len(self.runs),
            next_page_token=str(end) if end < len(self.runs) else "")

    def delete_recurring_run(self, recurring_run_id: str) -> dict[str, Any]:
        self.calls.append(("delete_recurring_run", {"recurring_run_id": recurring_run_id}))
        self.runs[:] = [r for r in self.runs if r.recurring_run_id != recurring_run_id]
        return {}


@pytest.fixture
def fake(monkeypatch):
    """The fake client every schedule call gets (mocked: no KFP API server can run here)."""
    clients: list[FakeClient] = []
    runs: list[Any] = []

    def connect(host: str, namespace: str | None) -> FakeClient:
        client = FakeClient(host, namespace, runs)
        clients.append(client)
        return client

    monkeypatch.setattr("cellpipe.targets.kfp.schedule.connect", connect)
    return clients


@pytest.fixture
def notebook(tmp_path):
    return write_nb(tmp_path, *CELLS, name="nightly.ipynb")


def test_a_schedule_is_a_recurring_run_with_a_seconds_first_cron(fake, notebook, capsys):
    """Mocked client: no KFP API server can run here."""
    made = api.schedule(notebook, "kfp", cron="0 3 * * 1-5", parameters={"n": 7, "rate": 2.0},
                        connection={"host": HOST, "experiment": "churn",
                                    "namespace": "team"}, images=IMAGES)
    (client,) = fake
    assert (client.host, client.namespace) == (HOST, "team")
    (experiment, created) = client.calls
    assert experiment == ("create_experiment", {"name": "churn", "namespace": "team"})
    name, arguments = created
    assert name == "create_recurring_run"
    assert {k: v for k, v in arguments.items() if k != "pipeline_package_path"} == {
        "experiment_id": "e-1", "job_name": "nightly", "cron_expression": "0 0 3 * * 1-5",
        "max_concurrency": 1, "no_catchup": True, "params": {"n": 7, "rate": 2.0},
        "enabled": True}
    assert arguments["pipeline_package_path"].endswith(".yaml")
    assert client.package is not None and client.package["pipelineInfo"]["name"] == "nightly"
    assert made == api.Schedule(name="nightly", cron="0 3 * * 1-5", concurrency_policy="Forbid",
                                parameters={"n": 7, "rate": 2.0},
                                title="KFP recurring run r-1", id="r-1")
    assert capsys.readouterr().out == ""  # the api prints nothing, kfp's links neither


def test_options_become_kfps_own(fake, notebook):
    """Mocked client: no KFP API server can run here."""
    made = api.schedule(notebook, "kfp", cron="@daily", name="often", suspend=True,
                        concurrency_policy="Allow", timezone="UTC",
                        connection={"host": HOST}, images=IMAGES)
    _, (_, arguments) = fake[0].calls
    assert fake[0].calls[0] == ("create_experiment", {"name": "Default", "namespace": None})
    assert arguments["job_name"] == "often" and arguments["cron_expression"] == "0 0 0 * * *"
    assert arguments["enabled"] is False and arguments["max_concurrency"] == 10
    assert (made.suspended, made.concurrency_policy, made.cron) == (True, "Allow", "0 0 * * *")


@pytest.mark.parametrize(("options", "message"), [
    ({"timezone": "Europe/Berlin"}, "takes no time zone"),
    ({"concurrency_policy": "Replace"}, "cannot Replace a running run"),
])
def test_what_kfp_cannot_do_is_refused_before_the_server_is_asked(fake, notebook, options,
                                                                   message):
    """Mocked client: no KFP API server can run here."""
    with pytest.raises(CellpipeError, match=message):
        api.schedule(notebook, "kfp", cron="0 3 * * *", connection={"host": HOST},
                     images=IMAGES, **options)
    assert fake == []  # no client was even made


def test_list_follows_the_pages_and_delete_takes_an_id_or_a_name(fake, notebook):
    """Mocked client: no KFP API server can run here."""
    for cron in ("0 3 * * *", "0 4 * * *", "0 5 * * *"):
        api.schedule(notebook, "kfp", cron=cron, connection={"host": HOST}, images=IMAGES)
    api.schedule(notebook, "kfp", cron="*/5 * * * *", name="often", connection={"host": HOST},
                 images=IMAGES)
    listed = api.list_schedules("kfp", host=HOST, namespace="team")
    assert [(s.name, s.id, s.cron) for s in listed] == [
        ("nightly", "r-1", "0 3 * * *"), ("nightly", "r-2", "0 4 * * *"),
        ("nightly", "r-3", "0 5 * * *"), ("often", "r-4", "*/5 * * * *")]
    pages = [call for call in fake[-1].calls if call[0] == "list_recurring_runs"]
    assert [p[1] for p in pages] == [{"page_token": "", "namespace": "team"},
                                     {"page_token": "2", "namespace": "team"}]

    assert api.unschedule("kfp", "often", host=HOST).id == "r-4"
    assert api.unschedule("kfp", "r-2", host=HOST).cron == "0 4 * * *"
    assert fake[-1].calls[-1] == ("delete_recurring_run", {"recurring_run_id": "r-2"})
    with pytest.raises(CellpipeError, match="2 recurring runs are named 'nightly'") as info:
        api.unschedule("kfp", "nightly", host=HOST)
    assert "r-1, r-3" in str(info.value.hint)
    with pytest.raises(CellpipeError, match="no recurring run 'weekly'") as info:
        api.unschedule("kfp", "weekly", host=HOST)
    assert "schedule --list --target kfp" in str(info.value.hint)


def test_kfp_needs_its_host(notebook):
    with pytest.raises(CellpipeError, match="needs the API endpoint"):
        api.list_schedules("kfp")


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    return f"http://127.0.0.1:{port}"


def test_an_unreachable_host_is_a_clear_error(notebook):
    """No KFP API server can run here: only the error path runs the real client."""
    host = _closed_port()
    for call in (lambda: api.schedule(notebook, "kfp", cron="0 3 * * *", images=IMAGES,
                                      connection={"host": host}),
                 lambda: api.list_schedules("kfp", host=host),
                 lambda: api.unschedule("kfp", "nightly", host=host)):
        with pytest.raises(CellpipeError, match="cannot reach the Kubeflow Pipelines API") as info:
            call()
        assert host in str(info.value) and "port-forward" in str(info.value.hint)


def test_the_cli_says_so_in_one_line_with_exit_2(notebook, tmp_path):
    """No KFP API server can run here: the command meets a closed port."""
    images = tmp_path / "images.json"
    images.write_text(json.dumps(IMAGES))
    host = _closed_port()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cellpipe", "schedule", *args], text=True,
                              capture_output=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})

    done = cli(str(notebook), "--target", "kfp", "--host", host, "--images", str(images),
               "--cron", "0 3 * * *", "-p", "n=7")
    assert done.returncode == 2, done.stdout
    assert "cannot reach the Kubeflow Pipelines API" in done.stderr and host in done.stderr
    done = cli("--list", "--target", "kfp", "--host", host)
    assert done.returncode == 2 and "cannot reach" in done.stderr
    done = cli(str(notebook), "--target", "kfp", "--host", host, "--images", str(images),
               "--cron", "0 3 * * *", "--timezone", "Asia/Tokyo")
    assert done.returncode == 2 and "takes no time zone" in done.stderr
    done = cli(str(notebook), "--target", "kfp", "--host", host, "--images", str(images),
               "--cron", "0 3 * *")
    assert done.returncode == 2 and "has 4 field(s)" in done.stderr
