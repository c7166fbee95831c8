"""Failure injection on the local engine: a step that raises, is killed, times out; corrupted
artifacts; runs started at once; hostile parameter values. Every run ends (never stuck),
says which step failed and why, and a failed run can be completed in place."""

from __future__ import annotations

import threading
import time

from cellpipe import api
from tests.conftest import write_nb
from tests.engines.runutil import count, run


def test_failed_step_names_cell_and_line_branch_finishes_descendants_skipped(tmp_path):
    path = write_nb(
        tmp_path,
        ("parameters", "n = 3"),
        ("step:load", "data = list(range(n))"),
        ("step:left", "total = sum(data)"),
        "doubled = total * 2\nraise ValueError('no good')\nafter = 1",
        ("step:right", "import time\ntime.sleep(0.3)\nother = len(data)"),
        ("step:final", "result = doubled + other"),
    )
    result = run(path, tmp_path)

    assert result.status == "failed"
    steps = result.steps
    assert {n: s["status"] for n, s in steps.items()} == {
        "load": "succeeded", "left": "failed", "right": "succeeded", "final": "skipped"}
    error = steps["left"]["error"]
    # The step has two cells; the error is in the second one (0-based cell 3), line 2.
    assert error["cell"] == 3
    assert error["line"] == 2
    assert error["ename"] == "ValueError" and error["evalue"] == "no good"
    assert error["message"].startswith("cell 4, line 2: ValueError: no good")
    assert steps["left"]["exit_code"] == 1
    assert "left" in steps["final"]["message"]
    assert "ValueError: no good" in result.log("left")
    assert result.load("other") == 3  # the parallel branch's result is there
    assert "finished" in result.data and result.data["finished"] >= result.data["started"]


def test_resume_completes_failed_run_in_place_without_rerunning_finished_steps(tmp_path):
    marker, counter = tmp_path / "fixed", tmp_path / "count.txt"
    path = write_nb(
        tmp_path,
        ("step:load", count(counter, "L") + "\ndata = [1, 2, 3]"),
        ("step:flaky", "import os\n" + count(counter, "F") + "\n"
         f"if not os.path.exists({str(marker)!r}):\n    raise RuntimeError('not yet')\n"
         "total = sum(data)"),
        ("step:branch", count(counter, "B") + "\nsize = len(data)"),
        ("step:end", count(counter, "E") + "\nend = total + size"),
    )
    first = run(path, tmp_path)
    assert first.status == "failed"
    assert first.steps["end"]["status"] == "skipped"
    assert sorted(counter.read_text()) == ["B", "F", "L"]
    before = {name: first.steps[name]["started"] for name in ("load", "branch")}

    marker.touch()  # the cause of the failure goes away
    resumed = run(path, tmp_path, resume=first.id)

    assert resumed.id == first.id and resumed.path == first.path
    assert [p.name for p in (tmp_path / ".cellpipe" / "runs").iterdir()] == [first.id]
    assert resumed.status == "succeeded"
    assert {n: s["status"] for n, s in resumed.steps.items()} == dict.fromkeys(
        ("load", "flaky", "branch", "end"), "succeeded")
    for name, started in before.items():  # finished steps were kept, not run again
        assert resumed.steps[name]["started"] == started
    assert sorted(counter.read_text()) == ["B", "E", "F", "F", "L"]
    # The failure of the first attempt does not stick to the step that now succeeded.
    assert "error" not in resumed.steps["flaky"]
    assert "message" not in resumed.steps["end"]
    assert resumed.load("end") == 9
    on_disk = api.open_run(first.id, tmp_path / ".cellpipe")
    assert on_disk.status == "succeeded" and on_disk.steps["flaky"]["attempts"] == 1


def test_resume_after_fixing_the_notebook_follows_the_new_code(tmp_path):
    path = write_nb(tmp_path, ("step:a", "x = 1"), ("step:b", "y = x / 0"))
    first = run(path, tmp_path)
    assert first.status == "failed"
    assert "ZeroDivisionError" in first.steps["b"]["error"]["message"]

    write_nb(tmp_path, ("step:a", "x = 1"), ("step:b", "y = x / 2"))
    resumed = run(path, tmp_path, resume=first.id)
    assert resumed.status == "succeeded"
    assert resumed.steps["a"]["started"] == first.steps["a"]["started"]
    assert resumed.load("y") == 0.5


def test_step_killed_by_sigkill_fails_with_the_signal_and_the_run_ends(tmp_path):
    path = write_nb(
        tmp_path,
        ("step:ok", "import time\ntime.sleep(0.2)\nfine = 1"),
        ("step:doomed", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nnever = 1"),
        ("step:after", "both = fine + never"),
    )
    started = time.monotonic()
    result = run(path, tmp_path, workers=2)

    assert time.monotonic() - started < 30
    assert result.status == "failed"
    doomed = result.steps["doomed"]
    assert doomed["status"] == "failed"
    assert doomed["error"]["message"] == "killed by signal SIGKILL"
    assert doomed["exit_code"] == -9
    assert result.steps["ok"]["status"] == "succeeded"
    assert result.steps["after"]["status"] == "skipped"
    on_disk = api.open_run(result.id, tmp_path / ".cellpipe")
    assert on_disk.status == "failed"
    assert not [n for n, s in on_disk.steps.items() if s["status"] in ("running", "pending")]


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_corrupted_cached_artifact_is_never_used(tmp_path):
    """The digest check runs before a cached result is reused: a selected step's needed
    upstream with a damaged result is blocked (not fed to the reader); a full run runs it
    again."""
    path = write_nb(tmp_path, ("step:make", "data = list(range(100))"),
                    ("step:use", "total = sum(data)"))
    first = run(path, tmp_path)
    assert first.status == "succeeded"
    flip_a_byte(first.path / "artifacts" / "make" / "data.json")

    again = run(path, tmp_path, step=["use"], cache=False)

    assert again.status == "failed"
    make = again.steps["make"]
    assert make["status"] == "blocked"
    assert "its cached result is damaged" in make["message"]
    assert "'data'" in make["message"] and "blake3" in make["message"]
    assert "cellpipe run NOTEBOOK --to make" in make["message"]
    assert again.steps["use"]["status"] == "skipped"

    full = run(path, tmp_path)
    assert full.status == "succeeded"
    assert "its saved results are damaged" in full.steps["make"]["reason"]
    assert full.load("total") == 4950


def test_a_corrupted_artifact_is_run_again_when_resuming(tmp_path):
    marker = tmp_path / "fixed"
    path = write_nb(
        tmp_path,
        ("step:make", "import numpy as np\narr = np.arange(50.0)"),
        ("step:use", f"import os\nassert os.path.exists({str(marker)!r})\ntotal = arr.sum()"),
    )
    first = run(path, tmp_path)
    assert first.steps["use"]["status"] == "failed"
    flip_a_byte(first.path / "artifacts" / "make" / "arr.npy")
    marker.touch()

    resumed = run(path, tmp_path, resume=first.id)

    assert resumed.status == "succeeded"
    assert resumed.steps["make"]["status"] == "succeeded"
    assert "damaged" in resumed.steps["make"]["reason"]
    assert resumed.load("total") == 1225.0


def test_an_artifact_corrupted_after_the_check_fails_its_reader_clearly(tmp_path):
    """Between the scheduler's check and the reader's load a file can still change: the
    reader's own load hashes what changed and fails as infrastructure, naming it."""
    path = write_nb(tmp_path, ("step:make", "data = list(range(100))"),
                    ("step:use", "import pathlib\n"
                     "assert len(data) == 100  # after make, which it reads\n"
                     "p = next(pathlib.Path('.cellpipe/runs').glob('*/artifacts/make/data.json'))\n"
                     "b = bytearray(p.read_bytes()); b[5] ^= 1; p.write_bytes(bytes(b))\n"
                     "flipped = True"),
                    ("step:read", "total = sum(data) if flipped else 0"))
    result = run(path, tmp_path)
    read = result.steps["read"]
    assert result.steps["use"]["status"] == "succeeded", result.steps["use"]
    assert read["status"] == "failed" and read["exit_code"] == 2
    assert read["error"]["type"] == "ArtifactCorruptedError"
    assert "cannot load input 'data' from step 'make'" in read["error"]["message"]
    assert "blake3" in read["error"]["message"]


def test_two_runs_of_one_notebook_at_once_do_not_collide(tmp_path):
    path = write_nb(
        tmp_path,
        ("parameters", "seed = 0"),
        ("step:a", "import time\ntime.sleep(0.3)\nx = seed * 10"),
        ("step:b", "y = x + 1"),
    )
    # Warm the step server for another notebook first: both runs then switch it at once.
    other = write_nb(tmp_path, ("step:other", "import csv\nw = 1"), name="other.ipynb")
    assert run(other, tmp_path).status == "succeeded"
    results, errors = {}, []

    def start(seed):
        try:
            results[seed] = run(path, tmp_path, {"seed": seed}, cache=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert results[1].id != results[2].id and results[1].path != results[2].path
    assert all(r.status == "succeeded" for r in results.values())
    assert results[1].load("y") == 11 and results[2].load("y") == 21
    assert len(list((tmp_path / ".cellpipe" / "runs").iterdir())) == 3


INJECTION = "'; import os; os.system(\"touch {target}\") #"


def test_injection_in_a_parameter_value_stays_a_string(tmp_path):
    target = tmp_path / "pwned"
    value = INJECTION.format(target=target)
    path = write_nb(tmp_path, ("parameters", "label = 'plain'"),
                    ("step:keep", "stored = label\nlength = len(label)"))
    result = run(path, tmp_path, {"label": value})

    assert result.status == "succeeded"
    assert result.load("stored") == value
    assert result.load("length") == len(value)
    assert result.parameters["label"] == value
    assert not target.exists()
