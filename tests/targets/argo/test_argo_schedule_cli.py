"""`cellpipe schedule … --target argo`, `--list` and `--delete`, end to end from the CLI.

No Kubernetes API server can run here: these are API-level tests against kmock's in-memory
Kubernetes API over real HTTP (see conftest.py), which the `cellpipe` process reaches
through a kubeconfig, as it would a user's cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_nb
from tests.targets.argo.conftest import CRON_WORKFLOWS, kubeconfig

pytest.importorskip("kubernetes")

CELLS = [
    ("parameters", "n = 5\nrate = 0.5"),
    ("step:make", "values = [rate * i for i in range(n)]"),
    ("step:total", "total = sum(values)"),
    ("metrics", "total"),
]


@pytest.fixture
def cellpipe(kube, tmp_path):
    """Run `cellpipe ARGS…` against kmock; returns (exit code, stdout, stderr)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig(tmp_path, kube.url)),
           "PYTHONPATH": str(ROOT / "src")}

    def run(*args: str) -> tuple[int, str, str]:
        done = subprocess.run([sys.executable, "-m", "cellpipe", *args], env=env, text=True,
                              capture_output=True, timeout=120)
        return done.returncode, done.stdout, done.stderr

    return run


@pytest.fixture
def notebook(tmp_path):
    path = write_nb(tmp_path, *CELLS, name="nightly.ipynb")
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"make": "registry.local/nb-make:1",
                                  "total": "registry.local/nb-total:1"}))
    return path, images


def test_schedule_then_list_then_delete(cellpipe, notebook, kube):
    """kmock stands in for the Kubernetes API server (none can run here)."""
    path, images = notebook
    code, out, err = cellpipe("schedule", str(path), "--target", "argo", "--images", str(images),
                              "--cron", "0 3 * * *", "--timezone", "Europe/Berlin",
                              "-p", "n=7", "-p", "rate=2")
    assert code == 0, err
    assert "CronWorkflow nightly: 0 3 * * * (Europe/Berlin), concurrency Forbid" in out
    assert "cellpipe schedule --delete nightly --target argo" in out
    stored = kube.stored(CRON_WORKFLOWS[2], "ml")["nightly"]
    arguments = {p["name"]: p["value"]
                 for p in stored["spec"]["workflowSpec"]["arguments"]["parameters"]}
    assert arguments == {"n": "7", "rate": "2.0"}  # converted to the declared types
    assert stored["spec"]["concurrencyPolicy"] == "Forbid"

    code, out, err = cellpipe("schedule", str(path), "--target", "argo", "--images", str(images),
                              "--cron", "*/10 * * * *", "--name", "often", "--suspend",
                              "--concurrency-policy", "allow", "--namespace", "ml")
    assert code == 0, err
    assert "CronWorkflow often: */10 * * * *, concurrency Allow, suspended" in out

    code, out, err = cellpipe("schedule", "--list", "--target", "argo")
    assert code == 0, err
    assert out.splitlines() == [
        "nightly: 0 3 * * * (Europe/Berlin), concurrency Forbid",
        "often: */10 * * * *, concurrency Allow, suspended",
    ]
    code, out, err = cellpipe("schedule", "--list", "--target", "argo", "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [s["name"] for s in listed] == ["nightly", "often"]
    assert listed[0]["parameters"] == {"n": "7", "rate": "2.0"}

    code, out, err = cellpipe("schedule", "--delete", "nightly", "--target", "argo")
    assert code == 0, err
    assert out.strip() == "deleted CronWorkflow nightly"
    assert set(kube.stored(CRON_WORKFLOWS[2], "ml")) == {"often"}
    code, out, err = cellpipe("schedule", "--delete", "nightly", "--target", "argo")
    assert code == 2 and "404" in err and "schedule --list" in err


def test_a_bad_cron_is_a_one_line_error_with_exit_2_and_nothing_is_created(cellpipe, notebook,
                                                                            kube):
    """kmock stands in for the Kubernetes API server (none can run here)."""
    path, images = notebook
    code, out, err = cellpipe("schedule", str(path), "--target", "argo", "--images", str(images),
                              "--cron", "0 3 * * 8")
    assert code == 2, out
    assert "field 5 (day of week) is '8'" in err and "0-6 or SUN-SAT" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = cellpipe("schedule", str(path), "--target", "argo", "--images", str(images),
                            "--cron", "0 0 3 * * *")
    assert code == 2 and "no seconds field" in err
    code, _, err = cellpipe("schedule", str(path), "--target", "argo", "--images", str(images),
                            "--cron", "0 3 * * *", "--timezone", "Mars/Olympus")
    assert code == 2 and "unknown time zone 'Mars/Olympus'" in err
    code, _, err = cellpipe("schedule", str(path), "--target", "argo", "--images", str(images),
                            "--cron", "0 3 * * *", "-p", "m=1")
    assert code == 2 and "no parameter 'm'" in err
    assert kube.stored(CRON_WORKFLOWS[2], "ml") == {}


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "argo"], "give NOTEBOOK and --cron"),
    (["NB", "--target", "argo"], "give NOTEBOOK and --cron"),
    (["--list", "--delete", "x", "--target", "argo"], "not both"),
    (["NB", "--list", "--target", "argo"], "--list takes no NOTEBOOK"),
    (["--delete", "x", "--cron", "* * * * *", "--target", "argo"], "--delete takes no"),
    (["--list", "--target", "kfp"], "--target kfp needs --host"),
    (["--list", "--target", "argoo"], "did you mean 'argo'"),
    (["NB", "--cron", "* * * * *", "--concurrency-policy", "queue", "--target", "argo"],
     "unknown concurrency policy 'queue'"),
])
def test_usage_errors_exit_2(args, message, tmp_path):
    """No cluster is reached: these fail while the command line is read."""
    path = write_nb(tmp_path, *CELLS)
    argv = [str(path) if a == "NB" else a for a in args]
    done = subprocess.run([sys.executable, "-m", "cellpipe", "schedule", *argv], text=True,
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
