"""Comparing values from a top-to-bottom notebook run with the pipeline's values."""

from __future__ import annotations

import math
from typing import Any


def assert_same(expected: Any, actual: Any, where: str = "value") -> None:
    """Assert two values are the same: numbers exactly or within float tolerance, arrays
    and frames by content, estimators by parameters and fitted state, containers deeply."""
    import types

    if isinstance(expected, types.ModuleType):
        assert isinstance(actual, types.ModuleType) and expected.__name__ == actual.__name__, where
        return
    if isinstance(expected, (types.FunctionType, types.BuiltinFunctionType)):
        assert type(expected) is type(actual), f"{where}: {type(expected)} vs {type(actual)}"
        assert expected.__name__ == actual.__name__, where
        code = getattr(expected, "__code__", None)
        if code is not None:  # a notebook function: the same code, replayed
            assert code.co_code == actual.__code__.co_code, where
        return
    if isinstance(expected, type):
        assert isinstance(actual, type) and expected.__qualname__ == actual.__qualname__, where
        own = [k for k in vars(expected) if not k.startswith("__")]
        assert sorted(own) == sorted(k for k in vars(actual) if not k.startswith("__")), where
        return
    if type(expected).__module__ == "__main__":  # an instance of a notebook class
        assert type(actual).__qualname__ == type(expected).__qualname__, where
        assert_same(vars(expected), vars(actual), f"{where}.__dict__")
        return
    if type(expected).__qualname__ == "CapturedIO":  # %%capture: its stderr holds timings
        assert type(actual).__qualname__ == "CapturedIO", where
        assert expected.stdout == actual.stdout, f"{where}.stdout"
        return
    module = type(expected).__module__.split(".")[0]
    if module == "pandas":
        import pandas.testing as pdt

        if hasattr(expected, "columns"):
            # Measured times (sklearn's cv_results_ *_time columns) differ in any two runs.
            timed = [c for c in expected.columns if str(c).endswith("_time")]
            pdt.assert_frame_equal(expected.drop(columns=timed), actual.drop(columns=timed),
                                   check_exact=False, rtol=1e-12, obj=where)
        elif hasattr(expected, "dtype") and hasattr(expected, "index"):
            pdt.assert_series_equal(expected, actual, check_exact=False, rtol=1e-12, obj=where)
        else:
            assert expected.equals(actual), where
        return
    if module == "numpy":
        import numpy as np

        if isinstance(expected, np.random.RandomState):
            assert_same(expected.get_state(legacy=False), actual.get_state(legacy=False), where)
            return
        if isinstance(expected, np.random.Generator):
            assert_same(expected.bit_generator.state, actual.bit_generator.state, where)
            return
        if isinstance(expected, np.ndarray) and expected.dtype == object:
            assert isinstance(actual, np.ndarray) and expected.shape == actual.shape, where
            for index, item in np.ndenumerate(expected):
                assert_same(item, actual[index], f"{where}{list(index)}")
            return

        assert type(actual).__module__.split(".")[0] == "numpy", f"{where}: {type(actual)}"
        np.testing.assert_allclose(np.asarray(expected), np.asarray(actual), rtol=1e-12,
                                   err_msg=where) if np.asarray(expected).dtype.kind in "fc" \
            else np.testing.assert_array_equal(expected, actual, err_msg=where)
        assert np.asarray(expected).dtype == np.asarray(actual).dtype, where
        return
    if module == "matplotlib":
        assert type(expected) is type(actual), where  # figures: same kind of object
        return
    if module == "sklearn" and hasattr(expected, "get_params"):
        assert type(expected) is type(actual), where
        assert_same(expected.get_params(deep=False), actual.get_params(deep=False),
                    f"{where}.get_params()")
        # refit_time_ and the like are measured times: they differ in any two runs
        fitted = {k: v for k, v in vars(expected).items()
                  if k.endswith("_") and not k.endswith("_time_")}
        for key, value in fitted.items():
            assert_same(value, getattr(actual, key), f"{where}.{key}")
        return
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isnan(expected):
            assert math.isnan(actual), where
        else:
            assert math.isclose(expected, actual, rel_tol=1e-12, abs_tol=0.0), \
                f"{where}: {expected!r} != {actual!r}"
        return
    if isinstance(expected, dict):
        assert type(expected) is type(actual) and list(expected) == list(actual), where
        for key in expected:
            if isinstance(key, str) and key.endswith("_time"):
                continue  # a measured time (sklearn's cv_results_): differs in any two runs
            assert_same(expected[key], actual[key], f"{where}[{key!r}]")
        return
    if isinstance(expected, (list, tuple)):
        assert type(expected) is type(actual) and len(expected) == len(actual), where
        for i, (a, b) in enumerate(zip(expected, actual, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
        return
    assert type(expected) is type(actual), f"{where}: {type(expected)} vs {type(actual)}"
    if expected == actual:
        return
    if hasattr(expected, "__next__"):  # an iterator: where it stands, by its pickled state
        import pickle

        assert pickle.dumps(expected) == pickle.dumps(actual), f"{where}: not at the same item"
        return
    # Objects without value equality (a fitted tree, a custom class): compare their state.
    state = getattr(expected, "__getstate__", lambda: None)()
    if state is None and not isinstance(expected, (int, str, bytes, bool)):
        import pickle  # an extension object (a Cython loss): by its pickled state

        assert pickle.dumps(expected) == pickle.dumps(actual), f"{where}: {expected!r}"
        return
    assert state is not None and not isinstance(expected, (int, str, bytes, bool)), \
        f"{where}: {expected!r} != {actual!r}"
    assert_same(state, actual.__getstate__(), f"{where}.__getstate__()")
