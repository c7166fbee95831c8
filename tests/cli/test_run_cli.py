"""`cellpipe run`, `runs`, `show` and `logs`: typed parameters, sweeps, exit codes, and
looking at runs afterwards. Runs live under ``tmp_path`` (``--root``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cellpipe import api
from cellpipe.cli.main import main
from tests import conftest


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()
    root = tmp_path / ".cellpipe"

    def invoke(*args, root_option=True):
        argv = [str(a) for a in args]
        if root_option:
            argv += ["--root", str(root)]
        return runner.invoke(main, argv, catch_exceptions=False)

    invoke.root = root
    return invoke


def write_nb(tmp_path, *cells, name="train.ipynb"):
    return conftest.write_nb(tmp_path, *cells, name=name)


@pytest.fixture
def train_nb(tmp_path):
    return write_nb(
        tmp_path,
        ("parameters", "epochs = 3\nlr = 0.5\nname = 'model'\nlayers = [4, 2]"),
        ("step:prepare", "data = list(range(10))\nprint('prepared', len(data), 'rows')"),
        ("step:train", "loss = 1 / (epochs * lr)\nlabel = name\nshape = layers\n"
         "print('trained', label)"),
        ("metrics", "final_loss = loss\naccuracy = 1 - loss / 10"),
    )


def only_run(root):
    runs = api.list_runs(root)
    assert len(runs) == 1, [r.id for r in runs]
    return runs[0]


def test_run_converts_parameters_to_their_declared_types(cli, train_nb):
    result = cli("run", train_nb, "-p", "epochs=4", "-p", "lr=1", "-p", "name=42",
                 "-p", "layers=[8, 4, 2]")

    assert result.exit_code == 0, result.output
    run = only_run(cli.root)
    assert run.parameters == {"epochs": 4, "lr": 1.0, "name": "42", "layers": [8, 4, 2]}
    assert type(run.parameters["lr"]) is float and type(run.load("label")) is str
    assert run.load("shape") == [8, 4, 2]
    assert f"run {run.id} succeeded" in result.stdout
    assert "final_loss=0.25" in result.stdout and "accuracy=0.975" in result.stdout
    assert "train: succeeded" in result.stderr  # progress, one line per state change


def test_bad_parameter_value_exits_2_with_one_line_naming_it(cli, train_nb):
    result = cli("run", train_nb, "-p", "epochs=abc")

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "'epochs'" in lines[0] and "'abc'" in lines[0] and "int" in lines[0]
    assert "-p epochs=3" in lines[0]
    assert api.list_runs(cli.root) == []  # nothing ran


def test_unknown_parameter_suggests_the_closest_name(cli, train_nb):
    result = cli("run", train_nb, "-p", "epoch=4")

    assert result.exit_code == 2
    assert "no parameter 'epoch'" in result.stderr
    assert "did you mean 'epochs'" in result.stderr


def test_malformed_parameter_option_is_a_usage_error(cli, train_nb):
    result = cli("run", train_nb, "-p", "epochs")
    assert result.exit_code == 2
    assert "NAME=VALUE" in result.output


def test_parameters_file_and_p_overrides(cli, train_nb, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("epochs: 5\nlr: 0.1\nlayers: [1, 2, 3]\n", encoding="utf-8")

    result = cli("run", train_nb, "-f", params, "-p", "lr=0.2")

    assert result.exit_code == 0, result.output
    assert only_run(cli.root).parameters == {
        "epochs": 5, "lr": 0.2, "name": "model", "layers": [1, 2, 3]}


def test_parameters_file_with_a_wrongly_typed_value_exits_2(cli, train_nb, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("epochs: many\n", encoding="utf-8")
    result = cli("run", train_nb, "-f", params)
    assert result.exit_code == 2
    assert "'epochs'" in result.stderr


def test_injection_through_p_stays_a_string(cli, tmp_path):
    target = tmp_path / "pwned"
    value = f"'; import os; os.system(\"touch {target}\") #"
    path = write_nb(tmp_path, ("parameters", "label = 'x'"), ("step:keep", "kept = label"))

    result = cli("run", path, "-p", f"label={value}")

    assert result.exit_code == 0, result.output
    assert only_run(cli.root).load("kept") == value
    assert not target.exists()


@pytest.mark.slow
def test_sweep_prints_one_row_per_run_with_metric_columns(cli, train_nb):
    result = cli("run", train_nb, "--sweep", "-p", "epochs=1,2", "-p", "lr=0.5,0.25")

    assert result.exit_code == 0, result.output
    runs = api.list_runs(cli.root)
    assert len(runs) == 4
    lines = result.stdout.strip().splitlines()
    header = lines[0].split()
    assert header[:4] == ["run", "notebook", "status", "duration"]
    assert {"epochs", "lr", "final_loss", "accuracy"} <= set(header)
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 4
    assert {row[0] for row in rows} == {r.id for r in runs}
    column = {name: header.index(name) for name in ("epochs", "lr", "final_loss")}
    got = {(row[column["epochs"]], row[column["lr"]], row[column["final_loss"]])
           for row in rows}
    assert got == {("1", "0.5", "2"), ("1", "0.25", "4"), ("2", "0.5", "1"),
                   ("2", "0.25", "2")}
    # prepare reads no swept parameter: it ran once, then came from the cache.
    prepare = sorted(r.steps["prepare"]["status"] for r in runs)
    assert prepare == ["cached", "cached", "cached", "succeeded"]


def test_failed_step_exits_1_and_says_where(cli, tmp_path):
    path = write_nb(tmp_path, ("step:ok", "x = 1"), ("step:broken", "y = x\nz = y / 0"))

    result = cli("run", path)

    assert result.exit_code == 1
    run = only_run(cli.root)
    assert f"run {run.id} failed" in result.stdout
    assert "broken: cell 2, line 2: ZeroDivisionError" in result.stdout
    assert f"cellpipe logs {run.id} broken" in result.stdout


def test_corrupted_artifact_with_no_cache_blocks_the_selection(cli, tmp_path):
    path = write_nb(tmp_path, ("step:make", "data = [1, 2, 3]"), ("step:use", "n = sum(data)"))
    assert cli("run", path).exit_code == 0
    artifact = only_run(cli.root).path / "artifacts" / "make" / "data.json"
    artifact.write_bytes(artifact.read_bytes().replace(b"2", b"5"))

    result = cli("run", path, "--step", "use", "--no-cache")

    assert result.exit_code == 1
    assert "its cached result is damaged" in result.stdout
    assert "corrupted" in result.stdout and "--to make" in result.stdout


def test_unknown_step_suggests_the_closest_name(cli, train_nb):
    result = cli("run", train_nb, "--step", "trian")

    assert result.exit_code == 2
    assert "no step 'trian'" in result.stderr and "did you mean 'train'" in result.stderr
    assert cli("run", train_nb, "--from", "nosuch").exit_code == 2


def test_runs_show_and_logs(cli, train_nb):
    assert "no runs yet" in cli("runs").stdout
    assert cli("run", train_nb, "-p", "epochs=2").exit_code == 0
    assert cli("run", train_nb, "-p", "epochs=4").exit_code == 0
    first, second = api.list_runs(cli.root)

    listing = cli("runs")
    assert listing.exit_code == 0
    lines = listing.stdout.strip().splitlines()
    assert len(lines) == 3 and "final_loss" in lines[0] and "epochs" in lines[0]
    assert lines[1].startswith(first.id) and lines[2].startswith(second.id)

    as_json = json.loads(cli("runs", "--format", "json").stdout)
    assert [r["id"] for r in as_json] == [first.id, second.id]
    assert as_json[1]["metrics"]["final_loss"] == 0.5

    # a unique prefix is enough (the shortest one that the first run's id does not share)
    prefix = next(second.id[:n] for n in range(16, len(second.id) + 1)
                  if not first.id.startswith(second.id[:n]))
    shown = cli("show", prefix)
    assert shown.exit_code == 0, shown.output
    assert f"run {second.id} succeeded" in shown.stdout
    assert '"epochs": 4' in shown.stdout
    assert "prepare" in shown.stdout and "cached" in shown.stdout
    assert "parameter epochs changed" in shown.stdout

    logs = cli("logs", "latest", "train")
    assert logs.exit_code == 0 and logs.stdout == "trained model\n"
    assert cli("logs", first.id, "prepare").stdout == "prepared 10 rows\n"

    missing = cli("show", "nosuchrun")
    assert missing.exit_code == 2 and "no run 'nosuchrun'" in missing.stderr
    assert cli("logs", "latest", "nosuch").exit_code == 2


def test_runs_default_root_is_beside_the_notebook(tmp_path):
    path = write_nb(tmp_path, ("step:one", "x = 1"))
    runner = CliRunner()
    assert runner.invoke(main, ["run", str(path)]).exit_code == 0
    listing = runner.invoke(main, ["runs", str(path)])
    assert listing.exit_code == 0
    assert len(api.list_runs(tmp_path / ".cellpipe")) == 1
    assert api.list_runs(tmp_path / ".cellpipe")[0].id in listing.stdout


@pytest.mark.slow
def test_two_cellpipe_processes_at_once(tmp_path):
    path = write_nb(tmp_path, ("parameters", "n = 1"),
                    ("step:a", "import time\ntime.sleep(0.5)\nx = n * 2"))
    root = tmp_path / ".cellpipe"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    processes = [
        subprocess.Popen([sys.executable, "-c", "from cellpipe.cli.main import main; main()",
                          "run", str(path), "--root", str(root), "--no-cache", "-p", f"n={n}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for n in (1, 2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    runs = api.list_runs(root)
    assert len(runs) == 2 and runs[0].path != runs[1].path
    assert sorted(r.load("x") for r in runs) == [2, 4]
