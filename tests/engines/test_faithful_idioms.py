"""Each idiom of issue 11 through the central test: the notebook run top to bottom with
nbclient and run as a pipeline end with the same value for every name."""

from __future__ import annotations

import json
import math

import nbformat
import pytest
from click.testing import CliRunner

from cellpipe import api
from cellpipe.cli.main import main
from cellpipe.errors import CellpipeError
from tests.conftest import make_nb
from tests.engines.faithful import assert_faithful

pytest.importorskip("nbclient", reason="nbclient is installed by `.[test]`")
pytestmark = pytest.mark.slow


def write(tmp_path, *cells, name="nb.ipynb", metadata=None):
    path = tmp_path / name
    nbformat.write(make_nb(*cells, metadata=metadata), path)
    return path


def test_every_name_loads_parameters_imports_definitions_and_skip_cells_say_so(tmp_path):
    path = write(
        tmp_path,
        "import pandas as pd\nfrom numpy import nan\nimport math as m",
        ("parameters", "scale = 3\nlabel = 'run'"),
        "OFFSET = 10\n\ndef scaled(v):\n    return v * scale + OFFSET\n\n"
        "class Box:\n    def __init__(self, v):\n        self.v = v",
        ("step:make", "frame = pd.DataFrame({'x': [1.0, nan, 3.0]})\nbox = Box(scaled(2))"),
        ("skip", "scratch = frame.describe()"),
        ("step:use", "total = frame['x'].sum() + box.v\nroot = m.sqrt(total)"),
    )
    run = assert_faithful(path, tmp_path)
    assert run.load("scale") == 3 and run.load("label") == "run"
    assert run.load("pd").__name__ == "pandas" and math.isnan(run.load("nan"))
    assert run.load("scaled")(1) == 13  # replayed, with OFFSET and scale from the run
    assert type(run.load("box")).__name__ == "Box"
    assert {"scale", "pd", "nan", "scaled", "Box", "frame", "box", "total"} <= set(run.names())
    assert "scratch" not in run.names()
    with pytest.raises(CellpipeError, match=r"not part of the pipeline \(cell 5 is "
                       r"marked skip\)"):
        run.load("scratch")
    # a run with another parameter value answers with that value, and the replayed
    # function reads it too
    other = api.run(path, {"scale": 5}, root=tmp_path / ".cellpipe")
    assert other.load("scale") == 5 and other.load("scaled")(1) == 15
    shown = CliRunner().invoke(main, ["show", run.id, "--values", "--root",
                                      str(tmp_path / ".cellpipe")])
    assert shown.exit_code == 0, shown.output
    assert "scratch" in shown.output and "marked skip" in shown.output
    assert "pandas.DataFrame" in shown.output and "parameter" in shown.output


def test_a_closed_file_nobody_reads_is_recorded_not_fatal(tmp_path):
    path = write(
        tmp_path,
        ("step:write", "with open('notes.txt', 'w') as f:\n    f.write('a\\nb\\n')\n"
                       "lines = gen = None"),
        ("step:read", "with open('notes.txt') as handle:\n    rows = handle.read().split()\n"
                      "squares = (r * 2 for r in rows)"),
    )
    run = assert_faithful(path, tmp_path)
    assert run.load("rows") == ["a", "b"]
    for name, what in (("f", "an open file or stream"), ("squares", "a generator")):
        assert name not in run.names()
        with pytest.raises(CellpipeError, match=f"{what} .*not kept: no later step reads"):
            run.load(name)
    kept = json.loads((run.path / "run.json").read_text())["steps"]["write"]["not_kept"]
    assert kept["f"]["message"].startswith("an open file or stream (_io.TextIOWrapper)")


def test_a_later_step_reading_an_open_file_is_flagged_by_lint_and_fails_clearly(tmp_path):
    path = write(
        tmp_path,
        ("step:a", "f = open('x.txt', 'w')"),
        ("step:b", "f.write('hello')\nf.close()"),
    )
    [warning] = [d for d in api.lint(path).diagnostics if d.code == "CP309"]
    assert warning.step == "b" and warning.variable == "f" and warning.cell == 1
    assert "leaves as an open file (cell 1, line 1)" in warning.message
    run = api.run(path, root=tmp_path / ".cellpipe")
    error = run.steps["a"]["error"]
    assert error["variable"] == "f" and error["consumers"] == ["b"]
    assert "an open file or stream" in error["message"]


def test_a_display_helper_using_eval_runs_and_dynamic_steps_export_only_user_names(tmp_path):
    helper = (
        "class display_side_by_side:\n"
        "    def __init__(self, *args):\n        self.args = args\n"
        "    def __repr__(self):\n"
        "        return '\\n\\n'.join(a + '\\n' + repr(eval(a)) for a in self.args)"
    )
    path = write(
        tmp_path,
        "import pandas as pd\n" + helper,
        ("step:frames", "df1 = pd.DataFrame({'a': [1, 2]})\ndf2 = df1 * 10\n"
                        "display_side_by_side('df1', 'df2')"),
        ("step:joined", "both = pd.concat([df1, df2])\ndisplay_side_by_side('both', 'df1')"),
        ("step:globals", "for i in range(2):\n    globals()[f'col_{i}'] = both['a'] * i"),
        ("step:after", "total = col_0.sum() + col_1.sum()"),
    )
    run = assert_faithful(path, tmp_path)
    for state in run.steps.values():
        assert not {"In", "Out", "_", "__", "_i1", "_oh", "get_ipython", "exit", "quit"} & set(
            state.get("outputs", {})), state.get("outputs")
    assert run.load("total") == 33  # col_0 is all zeros, col_1 is both['a']


def test_the_parameters_cell_may_print_and_derive_values(tmp_path):
    path = write(
        tmp_path,
        ("parameters", "# the report's settings\nregion = 'north'\nn_days = 30\n"
                       "window = n_days // 10\nprint(f'report for {region}: {window}')"),
        ("step:series", "values = list(range(n_days))\nmeans = [sum(values[i:i + window]) / "
                        "window for i in range(0, n_days, window)]"),
    )
    run = assert_faithful(path, tmp_path)
    assert [p.name for p in api.compile_spec(path).parameters] == ["region", "n_days"]
    assert "report for north: 3" in run.log("series")
    assert run.load("window") == 3
    other = api.run(path, {"n_days": 50}, root=tmp_path / ".cellpipe")
    assert other.load("window") == 5 and len(other.load("means")) == 10


def test_one_global_seed_gives_top_to_bottom_numbers_in_four_steps(tmp_path):
    path = write(
        tmp_path,
        "import random\nimport numpy as np\nnp.random.seed(42)\nrandom.seed(7)",
        ("step:draw-a", "a = np.random.normal(size=5)"),
        ("step:summary-a", "mean_a = float(a.mean())"),
        ("step:draw-b", "b = np.random.randint(0, 100, size=5)\npick = random.random()"),
        ("step:summary-b", "max_b = int(b.max())"),
        "def walk(n):\n    return np.cumsum(np.random.choice([-1, 1], size=n))",
        ("step:draw-c", "c = walk(20)\narr = np.arange(10)\nnp.random.shuffle(arr)"),
        ("step:draw-d", "d = random.choice(list(range(100))) + np.random.rand()"),
    )
    spec = api.compile_spec(path).to_dict()
    steps = {s["name"]: s for s in spec["steps"]}
    assert steps["draw-b"]["reads"]["(random state)"] == "draw-a"
    assert steps["draw-c"]["reads"]["(random state)"] == "draw-b"
    assert steps["draw-d"]["reads"]["(random state)"] == "draw-c"
    # the summaries don't draw: no edge through the state, parallel with the draws
    for name in ("summary-a", "summary-b"):
        assert "(random state)" not in steps[name]["reads"]
        assert "random_state" not in steps[name]
    assert steps["summary-a"]["upstream"] == ["draw-a"]
    assert steps["summary-b"]["upstream"] == ["draw-b"]
    run = assert_faithful(path, tmp_path, workers=2)
    assert not run.warnings


def test_a_random_state_object_drawn_from_in_three_steps_advances(tmp_path):
    path = write(
        tmp_path,
        "import numpy as np\nfrom sklearn.model_selection import train_test_split",
        ("step:make", "rs = np.random.RandomState(0)\nrng = np.random.default_rng(1)\n"
                      "batches = iter(range(0, 50, 10))\nX = np.arange(40).reshape(20, 2)"),
        ("step:one", "x1 = rs.normal(size=3)\nfirst = next(batches)"),
        ("step:two", "X_tr, X_te = train_test_split(X, random_state=rs)\n"
                     "g = rng.integers(0, 10, 4)"),
        ("step:three", "x3 = rs.uniform(size=2) + rng.normal()\nsecond = next(batches)"),
    )
    spec = api.compile_spec(path).to_dict()
    steps = {s["name"]: s for s in spec["steps"]}
    assert steps["two"]["reads"]["rs"] == "one" and steps["three"]["reads"]["rs"] == "two"
    assert steps["three"]["reads"]["batches"] == "one"
    assert steps["three"]["reads"]["rng"] == "two"
    assert_faithful(path, tmp_path)


def test_a_notebook_class_whose_methods_change_self_advances_across_steps(tmp_path):
    path = write(
        tmp_path,
        "class Tally:\n    def __init__(self):\n        self.items = []\n"
        "    def _push(self, v):\n        self.items.append(v)\n"
        "    def note(self, v):\n        self._push(v)\n        return self\n"
        "    def total(self):\n        return sum(self.items)",
        ("step:make", "tally = Tally()"),
        ("step:one", "tally.note(3)\nfirst = tally.total()"),
        ("step:two", "tally.note(4)"),
        ("step:show", "n = len(tally.items)"),
    )
    steps = {s["name"]: s for s in api.compile_spec(path).to_dict()["steps"]}
    assert steps["two"]["reads"]["tally"] == "one" and steps["show"]["reads"]["tally"] == "two"
    assert "tally" not in steps["show"]["writes"]  # total() and len() don't change it
    assert api.run(path, root=tmp_path / ".cellpipe").load("n") == 2
    assert_faithful(path, tmp_path)


def test_top_level_await_runs_as_in_the_notebook(tmp_path):
    path = write(tmp_path, "import asyncio",
                 ("step:a", "async def fetch():\n    await asyncio.sleep(0)\n    return 3\n"
                            "x = await fetch()"),
                 ("step:b", "y = x + 1"))
    assert not [d for d in api.lint(path).diagnostics if d.severity == "error"]
    assert assert_faithful(path, tmp_path).load("y") == 4


def test_changes_analysis_cannot_see_are_recorded_as_warnings(tmp_path):
    """A value changed by a module's function it was handed; a library drawing from
    np.random: analysis sees neither, the run says so."""
    (tmp_path / "helpers.py").write_text("def add_total(d):\n    d['total'] = sum(d.values())\n")
    path = write(
        tmp_path,
        "import numpy as np\nimport helpers\nfrom sklearn.utils import shuffle",
        ("step:make", "table = {'a': 1}\nX = np.arange(6)"),
        ("step:count", "helpers.add_total(table)\nmixed = shuffle(X)"),
        ("step:show", "n = len(table)"),
    )
    run = api.run(path, root=tmp_path / ".cellpipe")
    assert run.status == "succeeded"
    kinds = {(w["step"], w["kind"], w.get("variable")) for w in run.warnings}
    assert ("count", "input-changed", "table") in kinds
    assert ("count", "random-state", None) in kinds
    shown = CliRunner().invoke(main, ["show", run.id, "--root", str(tmp_path / ".cellpipe")])
    assert "warning [count]: step 'count' changed 'table' in place" in shown.output


def test_session_state_set_midway_carries_forward(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers_mod.py").write_text("def double(v):\n    return 2 * v\n")
    path = write(
        tmp_path,
        "import os\nimport sys\nimport warnings\nimport numpy as np\nimport pandas as pd",
        ("step:load", "frame = pd.read_csv('data/a.csv')"),
        ("step:settings", "os.chdir('data')\npd.set_option('display.precision', 2)\n"
                          "np.set_printoptions(precision=2)\nos.environ['MODE'] = 'fast'\n"
                          "sys.path.append(os.path.abspath('../lib'))\n"
                          "warnings.filterwarnings('ignore')"),
        ("step:after", "here = sorted(os.listdir('.'))\nprecision = pd.get_option("
                       "'display.precision')\ntext = repr(np.array([1 / 3]))\n"
                       "mode = os.environ.get('MODE')\nimport helpers_mod\n"
                       "doubled = helpers_mod.double(frame['x'].sum())\n"
                       "with warnings.catch_warnings(record=True) as caught:\n"
                       "    warnings.warn('x')\nn_caught = len(caught)"),
    )
    spec = api.compile_spec(path).to_dict()
    after = next(s for s in spec["steps"] if s["name"] == "after")
    assert after["setup"][0] == "os.chdir('data')" and len(after["setup"]) == 6
    run = assert_faithful(path, tmp_path)
    assert run.load("here") == ["a.csv"] and run.load("mode") == "fast"
    assert run.load("precision") == 2 and run.load("doubled") == 8


def test_pip_install_lines_read_requirements_files_and_keep_quoted_specs(tmp_path):
    from cellpipe.engines.docker.requirements import install_line_requirements

    (tmp_path / "requirements.txt").write_text("# pinned\nnumpy>=1.20  # arrays\n-e .\n\n"
                                               "pandas\n")
    path = write(tmp_path, ("step:a", '!pip install -q -r requirements.txt "scikit-learn>=1.3" '
                                      "--index-url http://x tqdm\nx = 1"))
    step = api.compile_spec(path).steps[0]
    assert step.requirements == ("-r requirements.txt", "scikit-learn>=1.3", "tqdm")
    assert install_line_requirements(step, tmp_path) == ["numpy>=1.20", "pandas",
                                                         "scikit-learn>=1.3", "tqdm"]
    (tmp_path / "requirements.txt").unlink()
    with pytest.raises(CellpipeError, match="names a file that cannot be read"):
        install_line_requirements(step, tmp_path)


def test_a_step_that_exits_0_without_its_result_is_an_infrastructure_failure(tmp_path):
    path = write(tmp_path, ("step:a", "import os\nos._exit(0)"))
    run = api.run(path, root=tmp_path / ".cellpipe")
    state = run.steps["a"]
    assert state["status"] == "failed"
    assert "exited 0 without writing its result" in state["error"]["message"]
    assert state["error"]["kind"] == "infrastructure"
    assert "succeeded" not in state["error"]["message"]


def test_lint_json_carries_the_loop_of_a_split_step(tmp_path):
    path = write(tmp_path, ("step:prep", "data = [1, 2, 3]"),
                 ("step:model", "fit = sum(data)"), ("step:prep", "report = fit * 2"))
    result = CliRunner().invoke(main, ["lint", str(path), "--format", "json"])
    assert result.exit_code == 1
    [found] = [d for d in json.loads(result.output)["diagnostics"] if d["code"] == "CP404"]
    assert found["loop"] == [{"from": "prep", "to": "model", "variables": ["data"]},
                             {"from": "model", "to": "prep", "variables": ["fit"]}]
