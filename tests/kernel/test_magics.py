"""``%%step`` and ``%cellpipe`` through a real IPython shell (and one real kernel)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import types

import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from cellpipe import api
from cellpipe.core.diagnostics import Diagnostic
from cellpipe.errors import PipelineError
from cellpipe_kernel import magics
from cellpipe_kernel.notebook import SESSION_ENV, runs_root
from tests.conftest import make_nb, write_nb

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEFTOVERS = ("__session__", "_cellpipe_params", "ran_body", "value", "skipped", "y",
             "_cellpipe_cluster_run")


@pytest.fixture
def ipython_shell(monkeypatch):
    """The test session's InteractiveShell with cellpipe loaded, and no kernel session."""
    monkeypatch.delenv(SESSION_ENV, raising=False)
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "cellpipe")
    for name in LEFTOVERS:
        shell.user_ns.pop(name, None)
    yield shell
    for name in LEFTOVERS:
        shell.user_ns.pop(name, None)


def run(shell, source):
    """Run a cell as a front end would; return (result, stdout, stderr, display outputs)."""
    with capture_output() as captured:
        result = shell.run_cell(source, store_history=True)
    return result, ANSI.sub("", captured.stdout), ANSI.sub("", captured.stderr), captured.outputs


@pytest.fixture
def sums_nb(tmp_path):
    return write_nb(tmp_path, ("parameters", "n = 3\nscale = 1.5"),
                    ("step:make", "xs = [i * scale for i in range(n)]"),
                    ("step:total", "total = sum(xs)"), ("metrics", "total_metric = total"))


# -- loading -----------------------------------------------------------------------------


def test_loading_twice_is_harmless(ipython_shell):
    result, out, err, _ = run(ipython_shell, "%load_ext cellpipe")
    assert result.success and "already loaded" in out + err
    magics.register(ipython_shell)
    magics.register(ipython_shell)
    assert ipython_shell.find_cell_magic("step") is not None
    assert ipython_shell.find_line_magic("cellpipe") is not None
    assert run(ipython_shell, "%%step a\nvalue = 1")[0].success


# -- %%step ------------------------------------------------------------------------------


def test_the_body_runs_in_the_user_namespace_with_its_outputs(ipython_shell):
    result, out, _, outputs = run(ipython_shell, (
        "%%step prepare --gpu 1 --memory 2Gi\n"
        "from IPython.display import HTML, display\n"
        "value = 20\n"
        "print('printed', value)\n"
        "display(HTML('<b>shown</b>'))\n"
        "value + 22\n"))
    assert result.success
    assert ipython_shell.user_ns["value"] == 20
    assert "printed 20" in out
    assert [o.data["text/html"] for o in outputs] == ["<b>shown</b>"]
    # The last expression is the cell's value: Out[N] and `_`, as without the magic.
    assert result.result == 42
    assert ipython_shell.user_ns["Out"][result.execution_count] == 42
    assert ipython_shell.user_ns["_"] == 42
    assert f"Out[{result.execution_count}]: 42" in out


def test_a_model_option_is_the_model_tag(ipython_shell):
    result, _, _, _ = run(ipython_shell, "%%step train --model clf --model=scaler\nclf = 1")
    assert result.success and ipython_shell.user_ns["clf"] == 1


def test_a_trailing_semicolon_hides_the_value(ipython_shell):
    result, out, _, _ = run(ipython_shell, "%%step a\nvalue = 5\nvalue * 2;")
    assert result.success and result.result is None and "Out[" not in out


def test_an_error_names_the_cells_own_line_once_and_fails_the_cell(ipython_shell):
    # body line 2 = cell line 3 (the %%step header is line 1, as in the editor)
    result, out, _, _ = run(ipython_shell, (
        "%%step a\n"
        "value = 1\n"
        "raise ValueError('boom')\n"
        "y = 2\n"))
    assert isinstance(result.error_in_exec, ValueError) and not result.success
    assert out.count("Traceback") == 1
    assert f"Cell In[{result.execution_count}], line 3" in out
    assert "----> 3 raise ValueError('boom')" in out
    assert "----> 1 %%step a" in out  # the cell's frame shows the cell, not the transformed call
    assert ipython_shell.user_ns["value"] == 1 and "y" not in ipython_shell.user_ns


def test_line_numbers_hold_inside_functions_and_after_blank_lines(ipython_shell):
    result, out, _, _ = run(ipython_shell, (
        "%%step a\n"
        "\n"
        "\n"
        "def inner():\n"
        "    return 1 / 0\n"
        "inner()\n"))
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert "----> 6 inner()" in out
    assert "line 5, in inner()" in out and "----> 5     return 1 / 0" in out


def test_a_step_called_from_code_numbers_lines_the_same_way(ipython_shell):
    with pytest.raises(ZeroDivisionError) as caught:
        ipython_shell.run_cell_magic("step", "a", "value = 1\n1 / 0\n")
    frame = caught.traceback[-1]
    assert frame.lineno + 1 == 3  # pytest's lineno is 0-based: cell line 3


def test_a_syntax_error_in_the_body_points_at_its_line(ipython_shell):
    result, out, err, _ = run(ipython_shell, "%%step a\nvalue = 1\nvalue = (\n")
    assert not result.success and isinstance(result.error_in_exec, UsageError)
    assert "line 3" in out and "SyntaxError" in out and "Traceback" not in out
    assert "syntax error" in err
    assert "value" not in ipython_shell.user_ns


def test_skip_still_runs_the_body(ipython_shell):
    # --skip keeps the cell out of the pipeline; in the notebook it is a cell like any other.
    result, _, _, _ = run(ipython_shell, "%%step explore --skip\nskipped = 'ran'\nskipped")
    assert result.success and result.result == "ran"


@pytest.mark.parametrize(("header", "message", "fix"), [
    ("train --gpu two", "gpu must be a whole number, not 'two'", "e.g. gpu:1"),
    ("train --frobnicate", "%%step has no option '--frobnicate'", "%%step NAME [--after A B]"),
    ("Train", "'Train', which is not a valid step name", "e.g. 'train'"),
    ("train --timeout", "--timeout needs a value", "[--timeout S]"),
    ("train --model 'my model'", "model 'my model' is not a variable name", "model:clf"),
])
def test_a_bad_header_is_a_usage_error_and_the_body_does_not_run(
        ipython_shell, header, message, fix):
    result, out, err, _ = run(ipython_shell, f"%%step {header}\nran_body = True\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert err.startswith("UsageError: ") and message in err and fix in err
    assert "Traceback" not in out + err
    assert "ran_body" not in ipython_shell.user_ns


def test_the_header_is_read_as_written_like_the_analyzer_does(ipython_shell):
    ipython_shell.user_ns["value"] = "train"
    result, _, err, _ = run(ipython_shell, "%%step {value}\nran_body = True\n")
    assert isinstance(result.error_in_exec, UsageError) and "'{value}'" in err
    assert "ran_body" not in ipython_shell.user_ns


def test_run_all_stops_at_a_failing_step_cell_in_a_real_kernel(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="nbclient is installed by `.[test]`")
    nb = make_nb(("skip", "%load_ext cellpipe\n%cellpipe lint"),
                 "%%step a\nvalue = 20\nvalue + 22",
                 "%%step b\nvalue = 1\n1 / 0\nafter_error = True",
                 "never = True")
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    # as jupyter_server starts kernels; ipykernel turns it into __session__
    monkeypatch.setenv(SESSION_ENV, str(path))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(nbclient.exceptions.CellExecutionError) as caught:
        client.execute()
    assert caught.value.ename == "ZeroDivisionError"
    lint, ok, failed, never = nb.cells
    assert [o["output_type"] for o in lint.outputs] == ["display_data"]
    assert lint.outputs[0]["data"]["text/plain"] == "saved.ipynb: 2 steps; 0 errors, 0 warnings"
    assert [o["output_type"] for o in ok.outputs] == ["execute_result"]
    assert ok.outputs[0]["data"]["text/plain"] == "42"
    assert ok.outputs[0]["execution_count"] == ok.execution_count
    traceback = ANSI.sub("", "\n".join(failed.outputs[0]["traceback"]))
    assert f"Cell In[{failed.execution_count}], line 3" in traceback
    assert "----> 3 1 / 0" in traceback
    assert never.execution_count is None and not never.outputs


# -- %cellpipe ---------------------------------------------------------------------------


def only_output(outputs):
    assert len(outputs) == 1, [o.data for o in outputs]
    return outputs[0].data


def test_lint_shows_each_diagnostic_with_its_cell(ipython_shell, tmp_path):
    path = write_nb(tmp_path, ("step:a", "x = 1"), ("step:b", "y = 2\nz = x + wrong_name"))
    result, _, _, outputs = run(ipython_shell, f"%cellpipe lint --notebook {path}")
    assert result.success and result.result is None
    data = only_output(outputs)
    assert "2 steps; 1 error, 0 warnings" in data["text/html"]
    assert "CP301" in data["text/html"] and "cell 2" in data["text/html"]
    assert "&#x27;wrong_name&#x27;" in data["text/html"]  # escaped
    assert "title='cell id c01'" in data["text/html"]
    # a link JupyterLab follows to the cell (it scrolls to #cell-id=…)
    assert "href='nb.ipynb#cell-id=c01'" in data["text/html"]
    assert data["text/plain"].splitlines()[0] == "nb.ipynb: 2 steps; 1 error, 0 warnings"
    assert "cell 2, line 2: error CP301: 'wrong_name'" in data["text/plain"]


def test_lint_of_a_clean_notebook_is_a_summary(ipython_shell, sums_nb):
    _, _, _, outputs = run(ipython_shell, f"%cellpipe lint --notebook {sums_nb}")
    assert only_output(outputs)["text/plain"] == "nb.ipynb: 2 steps; 0 errors, 0 warnings"


def test_lint_for_a_cluster_target(ipython_shell, tmp_path):
    path = write_nb(tmp_path, ("step:load", "import pandas as pd\n"
                                            "train = pd.read_csv('data/train.csv')"))
    _, _, _, outputs = run(ipython_shell, f"%cellpipe lint --notebook {path} --target kfp")
    text = only_output(outputs)["text/plain"]
    assert "cell 1, line 2: warning CP601: step 'load' reads data/train.csv" in text
    _, _, _, outputs = run(ipython_shell, f"%cellpipe lint --notebook {path}")
    assert "CP601" not in only_output(outputs)["text/plain"]


def test_graph_is_svg_or_says_it_falls_back_to_mermaid(ipython_shell, sums_nb):
    result, out, _, outputs = run(ipython_shell, f"%cellpipe graph --notebook {sums_nb}")
    assert result.success and result.result is None
    data = only_output(outputs)
    if shutil.which("dot"):
        assert "<svg" in data["image/svg+xml"] and "total" in data["image/svg+xml"]
    else:
        assert data["text/markdown"].startswith("```mermaid\n")
        assert "showing the graph as Mermaid" in out


def test_graph_falls_back_to_mermaid_without_graphviz(ipython_shell, sums_nb, monkeypatch,
                                                       tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on it
    result, out, _, outputs = run(ipython_shell, f"%cellpipe graph --notebook {sums_nb}")
    assert result.success
    data = only_output(outputs)
    assert data["text/markdown"] == f"```mermaid\n{api.render_graph(sums_nb).rstrip()}\n```"
    assert "not installed: showing the graph as Mermaid instead" in out


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_graph_as_text(ipython_shell, sums_nb, fmt):
    _, _, _, outputs = run(ipython_shell, f"%cellpipe graph --notebook {sums_nb} --format {fmt}")
    data = only_output(outputs)
    assert data["text/plain"] == api.render_graph(sums_nb, fmt)
    assert data["text/markdown"].startswith(f"```{fmt}\n")


def test_runs_table_after_runs(ipython_shell, sums_nb):
    _, out, _, outputs = run(ipython_shell, f"%cellpipe runs --notebook {sums_nb}")
    assert "no runs of nb.ipynb yet" in out and not outputs
    first = api.run(sums_nb)
    second = api.run(sums_nb, {"n": 4})
    result, _, _, outputs = run(ipython_shell, f"%cellpipe runs --notebook {sums_nb}")
    assert result.success and result.result is None
    data = only_output(outputs)
    header, *rows = data["text/plain"].splitlines()
    assert header.split() == ["run", "status", "duration", "n", "total_metric"]  # n differs
    assert rows[0].split()[:2] == [first.id, "succeeded"] and rows[0].split()[3:] == ["3", "4.5"]
    assert rows[1].split()[0] == second.id and rows[1].split()[3:] == ["4", "9"]
    assert f"<td style='text-align:left'>{second.id}</td>" in data["text/html"]


def test_params_displays_the_form(ipython_shell, sums_nb, tmp_path):
    pytest.importorskip("ipywidgets", reason="ipywidgets is installed by `.[test]`")
    result, _, _, outputs = run(ipython_shell, f"%cellpipe params --notebook {sums_nb}")
    assert result.success and result.result is None
    assert "application/vnd.jupyter.widget-view+json" in only_output(outputs)
    plain = write_nb(tmp_path, ("step:a", "x = 1"), name="plain.ipynb")
    _, out, _, outputs = run(ipython_shell, f"%cellpipe params --notebook {plain}")
    assert "plain.ipynb has no parameters" in out and not outputs


def fake_run_view(monkeypatch):
    calls = []
    module = types.ModuleType("cellpipe_kernel.run_view")

    def run_command(shell, argv, notebook):
        calls.append((shell, argv, notebook))
        return "the run"

    module.run_command = run_command
    monkeypatch.setitem(sys.modules, "cellpipe_kernel.run_view", module)
    return calls


@pytest.mark.parametrize("option", [["--notebook", "{path}"], ["--notebook={path}"]])
def test_run_hands_the_rest_to_the_run_view(ipython_shell, sums_nb, monkeypatch, option):
    calls = fake_run_view(monkeypatch)
    words = " ".join(o.format(path=sums_nb) for o in option)
    result, _, _, _ = run(ipython_shell, f"%cellpipe run -p n=5 {words} --no-cache")
    assert result.result == "the run"
    assert calls == [(ipython_shell, ["-p", "n=5", "--no-cache"], sums_nb)]


def test_run_help_needs_no_notebook(ipython_shell, monkeypatch):
    calls = fake_run_view(monkeypatch)
    assert run(ipython_shell, "%cellpipe run -h")[0].success
    assert calls[0][1] == ["-h"]
    assert isinstance(run(ipython_shell, "%cellpipe run")[0].error_in_exec, UsageError)
    assert len(calls) == 1


@pytest.mark.parametrize(("line", "message"), [
    ("lint --notebook missing.ipynb", "the notebook 'missing.ipynb' (from --notebook) does not"),
    ("frobnicate", "%cellpipe has no command 'frobnicate' (commands: lint, graph"),
    ("grahp", "did you mean 'graph'?"),
    ("lint --bogus", "%cellpipe lint: unrecognized arguments: --bogus\nusage: %cellpipe lint"),
    ("--bogus", "%cellpipe: unrecognized arguments: --bogus"),
    ("graph --format png", "argument --format: invalid choice: 'png'"),
    ("lint", "cannot tell which notebook this kernel runs"),
    ("run --notebook", "--notebook needs a PATH"),
    ("lint --notebook 'unclosed", "cannot split"),
])
def test_mistakes_are_one_line_usage_errors(ipython_shell, line, message):
    result, out, err, _ = run(ipython_shell, f"%cellpipe {line}")
    assert isinstance(result.error_in_exec, UsageError)
    assert err.startswith("UsageError: ") and message in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("line", "expected"), [
    ("-h", "usage: %cellpipe [-h] COMMAND ..."),
    ("", "usage: %cellpipe [-h] COMMAND ..."),
    ("lint -h", "usage: %cellpipe lint [-h] [--notebook PATH]"),
    ("graph --help", "--format {svg,mermaid,dot}"),
])
def test_help_is_printed_without_an_error(ipython_shell, line, expected):
    result, out, err, _ = run(ipython_shell, f"%cellpipe {line}")
    assert result.success and result.result is None
    assert expected in out and not err


def test_a_pipeline_error_lists_its_diagnostics_then_one_line(capsys):
    problem = Diagnostic("error", "CP301", "'q' is read but never defined", cell=1, line=2,
                         hint="define it earlier")
    with pytest.raises(UsageError) as caught, magics.usage_errors():
        raise PipelineError("the notebook has 1 problem(s)", [problem], path="nb.ipynb")
    assert str(caught.value) == "nb.ipynb: the notebook has 1 problem(s)"
    assert capsys.readouterr().err == (
        "cell 2, line 2: error CP301: 'q' is read but never defined\n"
        "    fix: define it earlier\n")


def test_unexpected_errors_are_not_disguised():
    with pytest.raises(KeyError), magics.usage_errors():
        raise KeyError("a bug")


# -- which notebook ----------------------------------------------------------------------


def test_the_notebook_comes_from_the_session_variable(ipython_shell, tmp_path):
    path = write_nb(tmp_path, ("step:a", "x = 1"), ("step:b", "y = x + wrong_name"),
                    name="session.ipynb")
    ipython_shell.user_ns["__session__"] = str(path)
    _, _, _, outputs = run(ipython_shell, "%cellpipe lint")
    assert only_output(outputs)["text/plain"].startswith("session.ipynb: 2 steps; 1 error")


def test_the_notebook_comes_from_the_session_environment(ipython_shell, tmp_path,
                                                         monkeypatch):
    write_nb(tmp_path, ("step:a", "x = 1"), name="from_env.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(SESSION_ENV, "from_env.ipynb")  # relative: to the kernel's cwd
    _, _, _, outputs = run(ipython_shell, "%cellpipe lint")
    assert only_output(outputs)["text/plain"].startswith("from_env.ipynb: 1 step; 0 errors")
    fake = fake_run_view(monkeypatch)
    run(ipython_shell, "%cellpipe run -p n=1")
    assert fake[0][1:] == (["-p", "n=1"], tmp_path / "from_env.ipynb")


def test_an_unsaved_or_foreign_session_says_what_to_do(ipython_shell, tmp_path, monkeypatch):
    monkeypatch.setenv(SESSION_ENV, str(tmp_path / "Untitled.ipynb"))
    _, _, err, _ = run(ipython_shell, "%cellpipe lint")
    assert (f"UsageError: the notebook '{tmp_path / 'Untitled.ipynb'}' (from ${SESSION_ENV}) "
            "does not exist (save the notebook first") in err
    ipython_shell.user_ns["__session__"] = "console-1"
    _, _, err, _ = run(ipython_shell, "%cellpipe lint")
    assert "session 'console-1' (from __session__) is not a notebook (pass --notebook" in err


def test_runs_are_looked_for_where_api_run_puts_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CELLPIPE_HOME", raising=False)
    assert runs_root(tmp_path / "nb.ipynb") == tmp_path / ".cellpipe"
    monkeypatch.setenv("CELLPIPE_HOME", str(tmp_path / "home"))
    assert runs_root(tmp_path / "nb.ipynb") == tmp_path / "home"


def test_submit_follows_the_run_and_leaves_the_cluster_run_in_the_namespace(
        ipython_shell, sums_nb, tmp_path, monkeypatch):
    """Through the example plugin target (its "cluster" is a folder): the magic compiles,
    submits with the parameters form's values and -p on top, and stores the ClusterRun."""
    from cellpipe.plugins import ENGINES, TARGETS
    from tests.plugins.test_plugins import install_example

    monkeypatch.syspath_prepend(str(install_example(tmp_path / "site")))
    for registry in (ENGINES, TARGETS):
        registry.reset()
    monkeypatch.setenv("CELLPIPE_BASE_IMAGE", "ml/notebook:1")
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    try:
        ipython_shell.user_ns["_cellpipe_params"] = {"n": 4}
        result, out, err, _ = run(ipython_shell, f"%cellpipe submit --notebook {sums_nb} "
                                  f"--target folder --host {cluster} -p scale=2 --watch")
        assert result.success, err
        found = ipython_shell.user_ns["_cellpipe_cluster_run"]
        assert isinstance(found, api.ClusterRun) and found.status == "Succeeded"
        assert f"folder run {found.name}: Succeeded" in out and "stay in the cluster" in out
        (written,) = cluster.glob("*.json")
        assert json.loads(written.read_text())["parameters"] == {"n": 4, "scale": 2.0}
        result, _, err, _ = run(ipython_shell, f"%cellpipe submit --notebook {sums_nb} "
                                "--target kfp")
        assert not result.success and "--target kfp needs --host" in err
    finally:
        for registry in (ENGINES, TARGETS):
            registry.reset()
