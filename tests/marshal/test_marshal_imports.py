"""Heavy libraries are imported only when a value (or URL) of theirs is met."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("numpy", "pandas", "pyarrow", "sklearn", "joblib", "fsspec", "cloudpickle")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def imported_after(code: str) -> set[str]:
    report = f"import sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = run_python(textwrap.dedent(code) + "\n" + report)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_importing_the_package_imports_no_heavy_library():
    result = run_python(
        "import cellpipe.marshal, sys; assert 'numpy' not in sys.modules; "
        "assert 'pandas' not in sys.modules"
    )
    assert result.returncode == 0, result.stderr
    assert imported_after("import cellpipe.marshal") == set()


def test_plain_data_round_trips_without_heavy_libraries(tmp_path):
    code = f"""
    from cellpipe.marshal import open_store
    store = open_store({str(tmp_path)!r})
    store.save("s", "x", {{"a": [1, 2.5, None]}})
    assert store.load("s", "x") == {{"a": [1, 2.5, None]}}
    """
    assert imported_after(code) == set()


def test_pickled_values_import_cloudpickle_only(tmp_path):
    code = f"""
    from cellpipe.marshal import open_store
    store = open_store({str(tmp_path)!r})
    store.save("s", "x", (1, 2))
    assert store.load("s", "x") == (1, 2)
    """
    assert imported_after(code) == {"cloudpickle"}


def test_arrays_import_numpy_but_not_pandas(tmp_path):
    code = f"""
    import numpy as np
    from cellpipe.marshal import open_store
    store = open_store({str(tmp_path)!r})
    store.save("s", "a", np.arange(3))
    store.load("s", "a")
    """
    assert imported_after(code) == {"numpy"}


def test_frames_fall_back_to_pickle_when_pyarrow_is_missing(tmp_path):
    code = f"""
    import sys
    sys.modules["pyarrow"] = None  # as if pyarrow were not installed
    import pandas as pd
    from cellpipe.errors import MissingDependencyError
    from cellpipe.marshal import open_store
    store = open_store({str(tmp_path)!r})
    meta = store.save("s", "df", pd.DataFrame({{"a": [1, 2]}}))
    assert meta.format == "pandas-pickle", meta
    assert "pip install 'cellpipe[arrow]'" in meta.note, meta.note
    assert store.load("s", "df")["a"].tolist() == [1, 2]
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_loading_arrow_without_pyarrow_says_what_to_install(tmp_path):
    save = f"""
    import pandas as pd
    from cellpipe.marshal import open_store
    open_store({str(tmp_path)!r}).save("s", "df", pd.DataFrame({{"a": [1]}}))
    """
    assert run_python(save).returncode == 0
    load = f"""
    import sys
    sys.modules["pyarrow"] = None
    from cellpipe.errors import MissingDependencyError
    from cellpipe.marshal import open_store
    try:
        open_store({str(tmp_path)!r}).load("s", "df")
    except MissingDependencyError as exc:
        print(exc.hint)
    """
    result = run_python(load)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pip install 'cellpipe[arrow]'"
