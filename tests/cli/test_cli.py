"""The `cellpipe` command: lint, graph, compile, --version, --help, and its error messages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cellpipe import __version__
from cellpipe.cli.main import main
from tests.conftest import SAMPLES, write_nb


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke



def test_version_and_help(run):
    assert run("--version").output.strip() == f"cellpipe, version {__version__}"
    text = run("--help").output
    for command in ("lint", "graph", "compile"):
        assert command in text
    assert "Examples:" in text
    assert "--strict" in run("lint", "--help").output


def test_lint_clean_notebook_exits_0_and_lists_steps(run):
    result = run("lint", SAMPLES / "tabular_tags.ipynb")
    assert result.exit_code == 0, result.output
    assert "train-logreg" in result.output and "← split: X_train, y_train" in result.output
    assert "ok (0 errors, 0 warnings)" in result.output


def test_lint_errors_exit_1_with_cell_and_line(run, tmp_path):
    path = write_nb(tmp_path, ("step:a", "x = 1"), ("step:b", "y = 2\nz = x + wrong_name"))
    result = run("lint", path)
    assert result.exit_code == 1
    assert "cell 2, line 2: error CP301 'wrong_name'" in result.output


def test_lint_json_shape(run, tmp_path):
    path = write_nb(tmp_path, ("step:a", "x = 1"), ("step:b", "y = x + missing"))
    result = run("lint", path, "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert set(data) >= {"diagnostics", "steps"}
    diagnostic = data["diagnostics"][0]
    assert {k: diagnostic[k] for k in ("severity", "code", "cell", "line", "step")} == {
        "severity": "error",
        "code": "CP301",
        "cell": 1,
        "line": 1,
        "step": "b",
    }
    assert "message" in diagnostic
    assert [s["name"] for s in data["steps"]] == ["a", "b"]
    assert data["steps"][1]["reads"] == {"x": "a"}


def test_strict_turns_warnings_into_failure(run, tmp_path):
    path = write_nb(tmp_path, ("step:a", "from math import *\nx = sqrt(2)"))
    assert run("lint", path).exit_code == 0
    result = run("lint", path, "--strict")
    assert result.exit_code == 1 and "CP302" in result.output


def test_graph_mermaid_and_dot(run):
    mermaid = run("graph", SAMPLES / "tabular_tags.ipynb").output
    assert mermaid.startswith("flowchart TD")
    assert '-->|"X_train, y_train"|' in mermaid
    dot = run("graph", SAMPLES / "tabular_tags.ipynb", "--format", "dot").output
    assert dot.startswith('digraph "tabular_tags"')
    assert '"split" -> "train-forest" [label="X_train, y_train"];' in dot


def test_graph_svg_uses_graphviz_or_says_how_to_get_it(run, tmp_path):
    out = tmp_path / "dag.svg"
    result = CliRunner().invoke(
        main, ["graph", str(SAMPLES / "kale_style.ipynb"), "--format", "svg", "-o", str(out)]
    )
    if shutil.which("dot"):
        assert result.exit_code == 0, result.output
        assert "<svg" in out.read_text()
    else:
        assert result.exit_code == 2
        assert "graphviz" in result.output and "--format dot" in result.output


def test_graph_svg_without_dot_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(
        main, ["graph", str(SAMPLES / "kale_style.ipynb"), "--format", "svg"]
    )
    assert result.exit_code == 2
    assert "error: rendering SVG needs graphviz's `dot` program" in result.output
    assert "Traceback" not in result.output


def test_compile_writes_spec_atomically(run, tmp_path):
    out = tmp_path / "out" / "spec.json"
    result = run("compile", SAMPLES / "kale_style.ipynb", "-o", out)
    assert result.exit_code == 0
    spec = json.loads(out.read_text())
    assert spec["version"] == "1" and len(spec["steps"]) == 7
    assert not list(out.parent.glob(".*tmp"))


def test_compile_refuses_errors_with_the_diagnostics(run, tmp_path):
    path = write_nb(tmp_path, ("step:load", "x = 1"), (["step:b", "after:lod"], "y = x"))
    result = CliRunner().invoke(main, ["compile", str(path)])
    assert result.exit_code == 1
    assert "error CP105 step 'b' runs after 'lod', but there is no such step" in result.output
    assert "fix: did you mean 'load'?" in result.output


def test_bad_files_are_one_line_errors(run, tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    result = CliRunner().invoke(main, ["lint", str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {bad}: is not valid JSON")
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["lint", str(tmp_path / "missing.ipynb")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_split_option(run, tmp_path):
    path = write_nb(tmp_path, "a = 1", "b = a + 1")
    result = run("lint", path, "--split", "cells", "--format", "json")
    assert [s["name"] for s in json.loads(result.output)["steps"]] == ["cell-1", "cell-2"]


def test_console_script_runs_as_a_new_process(tmp_path):
    exe = shutil.which(
        "cellpipe", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    )
    command = [exe] if exe else [sys.executable, "-m", "cellpipe.cli.main"]
    result = subprocess.run(
        [*command, "lint", "-q", str(SAMPLES / "untagged_sections.ipynb")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "untagged_sections.ipynb: ok" in result.stdout
