"""run.json and its event log: the cost of a step event stays flat in the number of steps,
and a reader (or a resume after the engine was killed) sees every event that reached disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from cellpipe.engines.runs import EVENTS_FILE, RUN_FILE, RunsDirectory
from tests.conftest import make_nb


def test_step_events_append_and_readers_apply_those_newer_than_the_snapshot(tmp_path):
    runs = RunsDirectory(tmp_path)
    record = runs.create({"status": "running", "steps": {}})
    record.save()
    for name in ("a", "b", "c"):
        record.step(name)["status"] = "running"
        record._snapshot_at = time.monotonic()  # no snapshot due: the events stay in the log
        record.save_step(name)
    snapshot = json.loads((record.path / RUN_FILE).read_text())
    assert snapshot["steps"] == {}
    lines = (record.path / EVENTS_FILE).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == ["a", "b", "c"]
    loaded = runs.load(record.id)
    assert {n: s["status"] for n, s in loaded.data["steps"].items()} == dict.fromkeys(
        "abc", "running")

    # a torn last line (the engine killed while writing it) ends the log; the rest counts
    with open(record.path / EVENTS_FILE, "a") as log:
        log.write('{"seq": 99, "step": "d", "sta')
    assert set(runs.load(record.id).data["steps"]) == {"a", "b", "c"}

    record.step("a")["status"] = "succeeded"
    record.save()  # a snapshot empties the log: nothing is applied twice
    assert (record.path / EVENTS_FILE).read_text() == ""
    assert runs.load(record.id).data["steps"]["a"]["status"] == "succeeded"
    record.step("b")["status"] = "succeeded"
    record._snapshot_at = time.monotonic()
    record.save_step("b")
    assert runs.load(record.id).data["steps"]["b"]["status"] == "succeeded"
    record.close()
    assert not (record.path / EVENTS_FILE).exists()
    assert json.loads((record.path / RUN_FILE).read_text())["steps"]["b"]["status"] == \
        "succeeded"


def test_a_killed_engine_leaves_every_finished_step_on_record_and_resume_reuses_them(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_nb(("step:first", "x = 1"), ("step:second", "y = x + 1"),
                           ("step:slow", "import time\ntime.sleep(60)\nz = y")), path)
    root = tmp_path / ".cellpipe"
    proc = subprocess.Popen([sys.executable, "-m", "cellpipe", "run", str(path), "--root",
                             str(root), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = RunsDirectory(root)
    deadline = time.monotonic() + 60
    state: dict = {}
    while time.monotonic() < deadline:
        time.sleep(0.1)
        ids = runs.ids()
        if ids:
            state = runs.load(ids[-1]).data["steps"]
            if state.get("slow", {}).get("status") == "running":
                break
    assert state.get("slow", {}).get("status") == "running", state
    proc.send_signal(signal.SIGKILL)  # no handler runs: what is on disk is all there is
    proc.wait(timeout=30)
    subprocess.run(["pkill", "-9", "-f", "time.sleep(60)"], check=False)
    record = runs.load(runs.ids()[-1])
    assert record.data["steps"]["first"]["status"] == "succeeded"
    assert record.data["steps"]["second"]["status"] == "succeeded"

    nbformat.write(make_nb(("step:first", "x = 1"), ("step:second", "y = x + 1"),
                           ("step:slow", "z = y")), path)
    done = subprocess.run([sys.executable, "-m", "cellpipe", "run", str(path), "--root",
                           str(root), "--resume", record.id], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    final = runs.load(record.id).data
    assert final["status"] == "succeeded"
    assert final["steps"]["slow"]["status"] == "succeeded"


def _artifact(run, step, name):
    meta = run.steps[step]["outputs"][name]
    return Path(run.steps[step]["store"]) / meta["step"] / meta["file"]


def test_a_torn_or_rewritten_artifact_is_treated_as_missing_and_its_step_runs_again(tmp_path):
    """A cached result whose data a crash truncated, or something rewrote behind cellpipe's
    back (same size, even), is not reused: the step runs again and its readers get the
    right value. `cellpipe verify RUN` names the damage."""
    from click.testing import CliRunner

    from cellpipe import api
    from cellpipe.cli.main import main

    path = tmp_path / "nb.ipynb"
    nbformat.write(make_nb(("step:make", "import numpy as np\ndata = np.arange(1000.0)"),
                           ("step:use", "total = float(data.sum())")), path)
    root = tmp_path / ".cellpipe"
    first = api.run(path, root=root)
    assert first.status == "succeeded" and first.load("total") == 499500.0
    cli = CliRunner()
    ok = cli.invoke(main, ["verify", first.id, "--root", str(root)])
    assert ok.exit_code == 0 and "2 of 2 artifacts intact" in ok.output and "blake3" in ok.output

    artifact = _artifact(first, "make", "data")
    artifact.write_bytes(artifact.read_bytes()[:-100])  # torn: a crash mid-write
    bad = cli.invoke(main, ["verify", first.id, "--root", str(root)])
    assert bad.exit_code == 1 and "make/data" in bad.output and "bytes" in bad.output
    second = api.run(path, root=root)
    assert second.steps["make"]["status"] == "succeeded"
    assert "its saved results are damaged" in second.steps["make"]["reason"]
    assert second.load("total") == 499500.0

    artifact = _artifact(second, "make", "data")
    data = bytearray(artifact.read_bytes())
    data[-8:] = bytes(8)  # the last value becomes 0.0, the size stays
    artifact.write_bytes(bytes(data))
    third = api.run(path, root=root)
    assert third.steps["make"]["status"] == "succeeded"
    assert "blake3" in third.steps["make"]["reason"]
    assert third.load("total") == 499500.0
    fourth = api.run(path, root=root)  # intact again: reused, without hashing it again
    assert fourth.steps["make"]["status"] == "cached"
