"""`%cellpipe tune`: from a real IPython shell and from a real kernel (nbclient), the study is
left in the namespace and the view shows the trials and the best one."""

from __future__ import annotations

import json

import nbclient
import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cellpipe import api
from tests.conftest import make_nb, write_nb

pytest.importorskip("optuna", reason="optuna is installed by `.[test]`")

CELLS = (
    ("parameters", "x = 0.0"),
    ("step:prepare", "offset = 2.0"),
    ("step:evaluate", "value = (x - offset) ** 2"),
    ("metrics", "loss = value"),
)
NAMESPACE_KEYS = ("_cellpipe_study", "_cellpipe_tune_view", "_cellpipe_params")


@pytest.fixture
def shell(monkeypatch):
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("cellpipe")
    for key in NAMESPACE_KEYS:
        ip.user_ns.pop(key, None)
    yield ip
    for key in NAMESPACE_KEYS:
        ip.user_ns.pop(key, None)


def test_tune_in_a_shell_leaves_the_study_and_prints_each_trial(shell, tmp_path, capsys):
    path = write_nb(tmp_path, *CELLS)
    shell.run_line_magic("cellpipe", f'tune --notebook {path} --objective loss --minimize '
                         f'-p "x=choice(1.0, 2.5, 2.0)" --sampler grid --study sh')

    study = shell.user_ns["_cellpipe_study"]
    assert isinstance(study, api.Study) and study.name == "sh"
    assert study.best_params == {"x": 2.0} and study.best_value == 0.0
    assert study.best_run.load("value") == 0.0
    out = capsys.readouterr().out
    assert [line.split(":")[0].strip() for line in out.splitlines() if "trial " in line
            and "complete" in line] == ["trial 0 complete", "trial 1 complete",
                                         "trial 2 complete"]
    best = study.best_trial
    assert f"study sh: 3 trials, 0 failed; best loss=0 (trial {best.number}, run " \
        f"{best.run_id}): {{'x': 2.0}}" in out
    view = shell.user_ns["_cellpipe_tune_view"]
    assert view.outcome == "done" and view.best.number == best.number
    assert "best 0</b>" in view.header_html and view.table_html.count("<tr>") == 4


def test_tune_problems_are_usage_errors(shell, tmp_path):
    path = write_nb(tmp_path, *CELLS)
    with pytest.raises(UsageError, match=r"no metric 'los'.*did you mean 'loss'"):
        shell.run_line_magic("cellpipe", f"tune --notebook {path} --objective los -p x=int(0,1)")
    with pytest.raises(UsageError, match="unrecognized arguments: --bogus"):
        shell.run_line_magic("cellpipe", f"tune --notebook {path} --bogus")
    with pytest.raises(UsageError, match=r"no command 'tun'.*did you mean 'tune'"):
        shell.run_line_magic("cellpipe", "tun")
    assert "_cellpipe_study" not in shell.user_ns


CHECK = """\
import json
study = _cellpipe_study
assert study.best_value == min(t.value for t in study.trials), study.trials
assert study.best_run.load("value") == study.best_value
print("TUNED", json.dumps({"name": study.name, "best": study.best_value,
                           "trials": len(study.trials)}))
"""


@pytest.mark.slow
def test_tune_from_the_notebook_shows_a_live_table_in_a_real_kernel(tmp_path, monkeypatch):
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    path = tmp_path / "nb.ipynb"
    nb = make_nb("%load_ext cellpipe", *CELLS,
                 ("skip", "%cellpipe tune --notebook nb.ipynb --objective loss --minimize "
                  '-p "x=uniform(-3, 3)" --trials 3 --seed 0 --study kernel'),
                 ("skip", CHECK))
    nbformat.write(nb, path)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    errors = [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    tune_cell, check_cell = nb.cells[-2:]
    printed = "".join(o.get("text", "") for o in check_cell.outputs)
    tuned = json.loads(printed.split("TUNED ", 1)[1])
    assert tuned["name"] == "kernel" and tuned["trials"] == 3
    study = api.open_study("kernel", tmp_path / ".cellpipe")
    assert tuned["best"] == study.best_value

    displays = [o for o in tune_cell.outputs if o["output_type"] == "display_data"]
    assert len(displays) == 1
    assert "application/vnd.jupyter.widget-view+json" in displays[0]["data"]
    # the widgets' final state (kept by nbclient): the header names the best, the table
    # has a row per trial with its run
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    texts = [m["state"].get("value", "") for m in state.values()
             if m["model_name"] == "HTMLModel"]
    header = next(t for t in texts if "cellpipe tune" in t)
    assert "study <code>kernel</code>" in header and "3 trials done" in header
    assert f"best {study.best_value:.4g}</b>" in header
    table = next(t for t in texts if "<table>" in t)
    assert all(t.run_id in table for t in study.trials)
    assert table.count("complete") == 3
