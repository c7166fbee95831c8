"""``--metrics-file``: the metrics as the text Katib's File metrics collector parses."""

from __future__ import annotations

import subprocess
import sys

from cellpipe import api
from tests.conftest import ROOT, write_nb
from tests.targets.katib.katib_controller import katib_parse


def test_metrics_file_holds_every_finite_metric_as_katib_reads_it(tmp_path):
    path = write_nb(tmp_path, ("parameters", "lr = 0.001"),
                    ("step:fit", "print('accuracy=0.1 per epoch, noise')\n"
                                 "tiny = lr / 100\naccuracy = 0.9731\nloss = -2.5\n"
                                 "epochs = 3\nbad = float('nan')"),
                    ("metrics", "tiny\naccuracy\nloss\nepochs\nbad"))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(api.compile_spec(path).to_json())
    metrics_file = tmp_path / "katib" / "metrics.log"  # its folder is made when missing
    done = subprocess.run(
        [sys.executable, "-m", "cellpipe.runtime", "--spec", str(spec_path), "--step", "fit",
         "--store", str(tmp_path / "store"), "--step-dir", str(tmp_path / "fit"),
         "--param", "lr=0.002", "--metrics-file", str(metrics_file)],
        capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src")}, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "accuracy=0.1" in done.stdout  # printed by the notebook, not in the file
    text = metrics_file.read_text()
    parsed = katib_parse(text, ["tiny", "accuracy", "loss", "epochs", "bad"])
    assert parsed == {"tiny": ["0.00002"], "accuracy": ["0.9731"], "loss": ["-2.5"],
                      "epochs": ["3"]}
    assert float(parsed["tiny"][0]) == 0.002 / 100
    assert "bad" not in text  # NaN is no observation: Katib marks the objective unavailable
