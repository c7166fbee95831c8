"""Comparing values from a top-to-bottom notebook run with the pipeline's values."""

from __future__ import annotations

import math
from typing import Any


def assert_same(expected: Any, actual: Any, where: str = "value") -> None:
    """Assert two values are the same: numbers exactly or within float tolerance, arrays
    and frames by content, estimators by parameters and fitted state, containers deeply."""
    module = type(expected).__module__.split(".")[0]
    if module == "pandas":
        import pandas.testing as pdt

        if hasattr(expected, "columns"):
            pdt.assert_frame_equal(expected, actual, check_exact=False, rtol=1e-12, obj=where)
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
        fitted = {k: v for k, v in vars(expected).items() if k.endswith("_")}
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
    # Objects without value equality (a fitted tree, a custom class): compare their state.
    state = getattr(expected, "__getstate__", lambda: None)()
    assert state is not None and not isinstance(expected, (int, str, bytes, bool)), \
        f"{where}: {expected!r} != {actual!r}"
    assert_same(state, actual.__getstate__(), f"{where}.__getstate__()")
