"""Which distributions a step's image gets: from imports, pinned to what is installed here."""

from __future__ import annotations

from importlib import metadata

import nbformat

from cellpipe import api
from cellpipe.core.analysis import imported_modules
from cellpipe.engines.docker.requirements import RUNTIME_DISTRIBUTIONS, step_requirements
from tests.conftest import make_nb, write_nb


def _spec(tmp_path, *cells, metadata_=None, name="nb.ipynb"):
    path = tmp_path / name
    nbformat.write(make_nb(*cells, metadata=metadata_), path)
    return api.compile_spec(path)


def test_imports_are_pinned_to_installed_versions_and_stdlib_is_left_out(tmp_path):
    spec = _spec(tmp_path, ("step:a", "import json, os.path\nimport numpy as np\n"
                                      "x = np.ones(2)"))
    pins = step_requirements(spec, tmp_path)["a"].pins
    assert pins["numpy"] == metadata.version("numpy")
    assert not {"json", "os"} & set(pins)
    for name in RUNTIME_DISTRIBUTIONS:
        assert pins[name] == metadata.version(name), name
    # the closure: what the runtime's distributions need comes too, pinned the same way
    assert pins["traitlets"] == metadata.version("traitlets")
    assert "cellpipe" not in pins and "pip" not in pins


def test_module_names_map_to_their_distributions(tmp_path):
    spec = _spec(tmp_path, ("step:a", "from sklearn.linear_model import Ridge\nm = Ridge()"))
    needs = step_requirements(spec, tmp_path)["a"]
    assert needs.pins["scikit-learn"] == metadata.version("scikit-learn")
    assert needs.reasons["scikit-learn"].startswith("import sklearn")
    assert "scipy" in needs.pins  # scikit-learn's own requirement


def test_a_step_gets_what_its_ancestors_imported_and_frames_bring_pyarrow(tmp_path):
    spec = _spec(
        tmp_path,
        ("step:load", "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})"),
        ("step:use", "total = int(df['a'].sum())"),
    )
    needs = step_requirements(spec, tmp_path)
    # 'use' imports nothing, but unpickling its input needs pandas; frames travel as Arrow
    assert needs["use"].pins["pandas"] == metadata.version("pandas")
    assert needs["use"].pins["pyarrow"] == metadata.version("pyarrow")
    assert needs["use"].key() == needs["load"].key()  # one dependency layer for both


def test_the_override_wins(tmp_path):
    requirements = ["numpy==1.26.4", "not-installed-dist>=2"]
    spec = _spec(tmp_path, ("step:a", "import numpy as np\nx = np.ones(2)"),
                       metadata_={"cellpipe": {"requirements": requirements}})
    assert list(spec.pipeline.requirements or ()) == requirements
    needs = step_requirements(spec, tmp_path)["a"]
    assert needs.pins["numpy"] == "1.26.4"
    assert "not-installed-dist>=2" in needs.loose
    # a requirements file given at build time wins over the notebook's metadata
    needs = step_requirements(spec, tmp_path, override=["numpy==2.0.0  # pinned for the cluster"])
    assert needs["a"].pins["numpy"] == "2.0.0"


def test_pip_install_lines_join_the_requirements(tmp_path):
    spec = _spec(tmp_path, ("step:a", "!pip install iniconfig\nimport json\nx = 1"))
    needs = step_requirements(spec, tmp_path)["a"]
    assert needs.pins["iniconfig"] == metadata.version("iniconfig")


def test_local_modules_go_into_the_step_and_unknown_imports_are_lint_warnings(tmp_path):
    (tmp_path / "helpers.py").write_text("def twice(x):\n    return 2 * x\n")
    path = write_nb(tmp_path, ("step:a", "import helpers\nimport no_such_module_here\n"
                                          "x = helpers.twice(2)"))
    spec = api.compile_spec(path)  # compiling does not look at the environment
    assert step_requirements(spec, tmp_path)["a"].local_modules == ("helpers",)
    found = [d for d in api.lint(path).diagnostics if d.code == "CP501"]
    assert len(found) == 1
    (warning,) = found
    assert warning.severity == "warning"
    assert "no_such_module_here" in warning.message and warning.step == "a"
    assert (warning.cell, warning.line) == (0, 2)


def test_imported_modules_reads_ipython_syntax_and_skips_relative_imports():
    source = "%matplotlib inline\nimport numpy.linalg as la\nfrom . import sibling\n" \
             "from pandas import DataFrame\n!ls"
    assert imported_modules(source) == [("numpy", 2), ("pandas", 4)]


def test_a_missing_daemon_is_a_clear_error(tmp_path):
    """No daemon needed: DOCKER_HOST points at a socket that does not exist."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = write_nb(tmp_path, ("step:a", "x = 1"))
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock",
           "PYTHONPATH": str(ROOT / "src")}
    for command in (["run", str(path), "--engine", "docker"], ["build", str(path)]):
        done = subprocess.run([sys.executable, "-m", "cellpipe", *command], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr  # cellpipe's exit code for its environment
        assert "cannot reach the Docker daemon at unix://" in done.stderr
        assert "No such file or directory" in done.stderr
        assert "--engine local" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_step_gets_every_module_imported_above_it(tmp_path):
    # sklearn's load_*(as_frame=True) imports pandas itself: top to bottom it works because
    # the notebook's import cell (no step of its own) installed and loaded pandas first
    spec = _spec(
        tmp_path,
        ("imports", "import pandas as pd\nfrom sklearn.datasets import load_iris"),
        ("step:load", "frame = load_iris(as_frame=True).frame"),
        ("step:later", "import json\nx = 1"),
        ("", "import polars_is_not_here_but_below"),
    )
    needs = step_requirements(spec, tmp_path)
    assert needs["load"].pins["pandas"] == metadata.version("pandas")
    assert needs["load"].reasons["pandas"] == "import pandas (cell 1)"
