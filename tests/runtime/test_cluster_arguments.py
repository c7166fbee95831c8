"""What cluster engines hand the runtime: parameters as text, metrics collected as files."""

from __future__ import annotations

import json
import subprocess
import sys

from cellpipe import api
from tests.conftest import ROOT, write_nb


def test_params_as_text_are_typed_and_metrics_are_written_as_files(tmp_path):
    path = write_nb(tmp_path, ("parameters", "C = 1.0\nlayers = [1, 2]\nname = 'a'"),
                    ("step:fit", "score = C * sum(layers)\nlabel = name.upper()"),
                    ("metrics", "score"))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.compile_spec(path).to_json())
    outputs = tmp_path / "outputs"
    done = subprocess.run(
        [sys.executable, "-m", "cellpipe.runtime", "--spec", str(spec_path), "--step", "fit",
         "--store", str(tmp_path / "store"), "--step-dir", str(tmp_path / "fit"),
         "--param", "C=0.5", "--param", "layers=[3, 4, 5]", "--param", "name=b",
         "--outputs-dir", str(outputs)],
        capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src")}, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((outputs / "metrics.json").read_text()) == {"score": 6.0}
    assert (outputs / "score").read_text() == "6.0"


def test_a_param_that_does_not_fit_its_type_fails_before_the_step_runs(tmp_path):
    path = write_nb(tmp_path, ("parameters", "n = 3"), ("step:a", "x = n * 2"))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.compile_spec(path).to_json())
    done = subprocess.run(
        [sys.executable, "-m", "cellpipe.runtime", "--spec", str(spec_path), "--step", "a",
         "--store", str(tmp_path / "store"), "--step-dir", str(tmp_path / "a"),
         "--param", "n=three"],
        capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src")}, timeout=120,
    )
    assert done.returncode == 2
    assert "parameter 'n' is an int; 'three' is not" in done.stderr
