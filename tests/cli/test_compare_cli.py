"""`cellpipe compare`: the tables, JSON, the PNG plot and the one-line errors, on real runs
kept under ``tmp_path`` (``--root``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cellpipe import api
from cellpipe.cli.main import main
from tests import conftest


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs of one notebook: the defaults, lr=0.25, then lr=0.25 with epochs=5."""
    folder = tmp_path_factory.mktemp("compare-cli")
    path = conftest.write_nb(
        folder, ("parameters", "epochs = 3\nlr = 0.5"),
        ("step:prepare", "data = list(range(4))"),
        ("step:train", "loss = len(data) / (epochs * lr)"),
        ("metrics", "final_loss = loss"), name="train.ipynb")
    root = folder / ".cellpipe"
    made = [api.run(path, values, root=root)
            for values in ({}, {"lr": 0.25}, {"lr": 0.25, "epochs": 5})]
    return path, root, made


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def test_text_shows_parameters_metrics_and_steps(runs):
    _, root, (a, b, c) = runs
    result = invoke("compare", a.id, b.id, c.id, "--root", root)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "same in every run (0): —" in lines
    row = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    assert row["epochs"] == ["3", "3", "5"] and row["lr"] == ["0.5", "0.25", "0.25"]
    assert row["final_loss"] == ["2.667", "5.333", "(+2.667,", "+100.0%)", "3.2", "(+0.5333,",
                                 "+20.0%)"]
    assert " ".join(row["prepare"]) == (f"ran: first run of this step cached from {a.id} · "
                                        f"same outputs cached from {a.id} · same outputs")
    assert "ran: parameter lr changed · changed: final_loss, loss" in " ".join(row["train"])
    assert "ran: parameter epochs changed" in " ".join(row["train"])
    assert f"{a.id}  train.ipynb  local   succeeded" in result.stdout


def test_json_and_the_plot(runs, tmp_path):
    _, root, (a, _, c) = runs
    plot = tmp_path / "m.png"
    result = invoke("compare", c.id, a.id, "--root", root, "--format", "json", "--plot", plot,
                    "--metric", "final_loss")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["id"] for r in data["runs"]] == [c.id, a.id]
    assert data["parameters"]["differ"] == {"epochs": [5, 3], "lr": [0.25, 0.5]}
    assert data["metrics"]["final_loss"] == {"values": [3.2, pytest.approx(8 / 3)],
                                             "change": [None, pytest.approx(8 / 3 - 3.2)]}
    assert data["steps"]["train"][1]["reason"] == "first run of this step"
    assert data["plot"] == str(plot)
    assert plot.read_bytes()[:4] == b"\x89PNG" and plot.stat().st_size > 10_000


def test_runs_are_found_beside_the_notebook_and_by_latest(runs, tmp_path):
    path, _, (a, _, c) = runs
    result = invoke("compare", a.id[:19], "latest", "--notebook", path, "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.stdout)["runs"]] == [a.id, c.id]
    written = tmp_path / "plot.png"
    result = invoke("compare", a.id, c.id, "--notebook", path, "--plot", written)
    assert result.exit_code == 0 and f"wrote {written}" in result.stdout
    assert written.stat().st_size > 10_000


@pytest.mark.parametrize(("args", "message"), [
    ((), "comparing needs at least two runs (got 0)"),
    (("latest",), "comparing needs at least two runs (got 1)"),
    (("latest", "nope"), "no run 'nope' under "),
    (("latest", "latest"), "is given twice"),
    (("latest", "{a}", "--plot", "x.png", "--metric", "accuracy"),
     "there is no metric 'accuracy' in these runs (numeric metrics: final_loss)"),
])
def test_mistakes_exit_2_with_one_line(runs, args, message):
    _, root, (a, b, c) = runs
    result = invoke("compare", *(x.format(a=a.id) for x in args), "--root", root)

    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    if "nope" in args:
        assert all(r.id in lines[0] for r in (a, b, c))  # the known ids


def test_compare_is_a_command_of_the_installed_cli(runs):
    """The real entry point (a fresh process) lists and runs it."""
    _, root, (a, b, _) = runs
    result = subprocess.run([sys.executable, "-m", "cellpipe", "compare", a.id, b.id,
                             "--root", str(root), "--format", "json"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["differ"] == {"lr": [0.5, 0.25]}
