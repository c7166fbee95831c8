"""Ctrl-C on `cellpipe run`: the step processes end, the run is marked cancelled, and what
finished is kept for --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nbformat

from tests.conftest import make_nb


def test_ctrl_c_cancels_cleanly(tmp_path):
    path = tmp_path / "slow.ipynb"
    nbformat.write(make_nb(("step:fast", "x = 1"),
                           ("step:slow", "import time\ntime.sleep(60)\ny = x")), path)
    root = tmp_path / ".cellpipe"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellpipe", "run", str(path), "--root", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    run_file, pid = None, None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pid is None:
        time.sleep(0.2)
        for candidate in root.glob("runs/*/run.json"):
            try:
                state = json.loads(candidate.read_text())["steps"]["slow"]
            except (ValueError, KeyError):
                continue
            if state.get("status") == "running":
                run_file, pid = candidate, state["pid"]
    assert pid is not None, "the slow step never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "run cancelled" in err and "Traceback" not in err
    data = json.loads(run_file.read_text())
    assert data["status"] == "cancelled"
    assert data["steps"]["fast"]["status"] == "succeeded"
    assert data["steps"]["slow"]["status"] == "cancelled"
    time.sleep(0.2)
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the step process outlived the cancelled run"
