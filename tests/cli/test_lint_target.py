"""`cellpipe lint --target`: what a cluster run would break on, in text and JSON; exit codes."""

from __future__ import annotations

import json

import nbformat
import pytest
from click.testing import CliRunner

from cellpipe.cli.main import main
from tests.conftest import make_nb

LOAD = """\
import pandas as pd
train = pd.read_csv("data/train.csv")
train = train.dropna(subset=["Age"])
"""
SCORE = """\
import requests
scores = requests.post("http://localhost:8000/predict", json=train.head().to_dict()).json()
"""


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def kaggle(tmp_path):
    path = tmp_path / "titanic.ipynb"
    nbformat.write(make_nb((["step:load", "memory:2Gi"], LOAD),
                           (["step:score", "memory:1Gi"], SCORE)), path)
    return path


def test_text_names_each_problem_with_cell_line_and_fix(run, kaggle):
    result = run("lint", kaggle, "--target", "kfp")

    assert result.exit_code == 0, result.output  # warnings pass without --strict
    out = result.output
    assert "cell 1, line 2: warning CP601 step 'load' reads data/train.csv" in out
    assert "cell 2, line 2: warning CP603 step 'score' reaches http://localhost:8000/predict" \
        in out
    assert "fix: put data/train.csv in the step's image" in out
    assert out.rstrip().endswith("ok for target kfp (0 errors, 2 warnings)")


def test_strict_fails_on_the_cluster_warnings(run, kaggle):
    result = run("lint", kaggle, "--target", "kfp", "--strict", "-q")

    assert result.exit_code == 1
    assert "failed for target kfp (0 errors, 2 warnings)" in result.output


def test_json_has_the_cluster_diagnostics(run, kaggle):
    result = run("lint", kaggle, "--target", "argo", "--format", "json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    found = [{k: d[k] for k in ("severity", "code", "cell", "cell_id", "line", "step")}
             for d in data["diagnostics"] if d["code"].startswith("CP6")]
    assert found == [
        {"severity": "warning", "code": "CP601", "cell": 0, "cell_id": "c00", "line": 2,
         "step": "load"},
        {"severity": "warning", "code": "CP603", "cell": 1, "cell_id": "c01", "line": 2,
         "step": "score"},
    ]
    assert all(d["hint"] for d in data["diagnostics"] if d["code"].startswith("CP6"))


def test_required_limits_are_errors(run, tmp_path):
    path = tmp_path / "train.ipynb"
    nbformat.write(make_nb(("step:load", "rows = list(range(10))"),
                           (["step:train", "gpu:1", "memory:8Gi"], "total = sum(rows)"),
                           metadata={"cellpipe": {"cluster": {"require_limits": True}}}), path)

    result = run("lint", path, "--target", "kfp", "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert sorted((d["code"], d["step"]) for d in data["diagnostics"]) == [
        ("CP604", "train"), ("CP605", "load")]

    text = run("lint", path, "--target", "kfp").output
    assert "cell 1: error CP605 step 'load' has no memory limit" in text
    assert "failed for target kfp (1 errors, 1 warnings)" in text


def test_without_target_nothing_changes(run, kaggle):
    result = run("lint", kaggle, "--format", "json")

    assert result.exit_code == 0
    assert not [d for d in json.loads(result.output)["diagnostics"]
                if d["code"].startswith("CP6")]
    assert "ok (0 errors, 0 warnings)" in run("lint", kaggle).output


def test_an_unknown_target_exits_2_with_a_suggestion(run, kaggle):
    result = CliRunner().invoke(main, ["lint", str(kaggle), "--target", "argoo"])

    assert result.exit_code == 2
    assert "'argoo' is none" in result.output and "did you mean 'argo'?" in result.output


def test_bad_cluster_metadata_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_nb(("step:load", "x = 1"),
                           metadata={"cellpipe": {"cluster": {"require_limits": "yes"}}}), path)

    result = CliRunner().invoke(main, ["lint", str(path), "--target", "kfp"])
    assert result.exit_code == 2
    assert "notebook metadata cellpipe.cluster.require_limits: 'yes' is not true or false" \
        in result.output
