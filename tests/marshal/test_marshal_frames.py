"""DataFrames and Series through Arrow IPC and Parquet, exactly, or to pickle when not."""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
import pandas as pd
import pytest

from cellpipe.marshal import open_store
from tests.marshal.conftest import roundtrip, sidecar


def _with_attrs() -> pd.DataFrame:
    frame = pd.DataFrame({"a": [1, 2]})
    frame.attrs["source"] = {"file": "x.csv", "rows": 2}
    return frame


# Frames Arrow holds exactly: they must come back equal, with check_exact, in both formats.
FAITHFUL = {
    "basic": lambda: pd.DataFrame({"i": [1, 2], "f": [1.5, np.nan], "s": ["x", None]}),
    "ints of every width": lambda: pd.DataFrame(
        {k: np.array([0, 1], dtype=k) for k in ["int8", "int16", "int32", "uint8", "uint64"]}
    ),
    "float32 and -0.0": lambda: pd.DataFrame(
        {"a": np.array([-0.0, 1.5], dtype="float32"), "b": [-0.0, np.inf]}
    ),
    "bool": lambda: pd.DataFrame({"b": [True, False]}),
    "categorical": lambda: pd.DataFrame(
        {"c": pd.Categorical(["a", "b", "a"], categories=["b", "a", "unused"], ordered=True)}
    ),
    "categorical with missing": lambda: pd.DataFrame({"c": pd.Categorical(["x", None, "y"])}),
    "datetime with tz": lambda: pd.DataFrame(
        {"t": pd.date_range("2024-03-30", periods=3, freq="h", tz="Europe/Paris")}
    ),
    "datetime units": lambda: pd.DataFrame(
        {
            "ns": pd.Series(pd.to_datetime(["2020-01-01", None]).as_unit("ns")),
            "ms": pd.Series(pd.to_datetime(["2020-01-01", "2021-06-01"]).as_unit("ms")),
        }
    ),
    "timedelta": lambda: pd.DataFrame({"d": pd.to_timedelta([1, None, 3], unit="s")}),
    "nullable": lambda: pd.DataFrame(
        {
            "I": pd.array([1, None], dtype="Int64"),
            "U": pd.array([1, None], dtype="UInt8"),
            "B": pd.array([True, None], dtype="boolean"),
            "F": pd.array([1.5, None], dtype="Float64"),
            "S": pd.array(["x", None], dtype="string"),
        }
    ),
    "pyarrow dtypes": lambda: pd.DataFrame({"a": pd.array([1, None], dtype="int64[pyarrow]")}),
    "period": lambda: pd.DataFrame({"p": pd.period_range("2020-01", periods=3, freq="M")}),
    "interval": lambda: pd.DataFrame({"i": pd.interval_range(0, 3)}),
    "bytes column": lambda: pd.DataFrame({"b": pd.Series([b"x", None, b""], dtype=object)}),
    "dates column": lambda: pd.DataFrame({"d": [dt.date(2020, 1, 1), dt.date(1999, 12, 31)]}),
    "all-None object column": lambda: pd.DataFrame({"n": pd.Series([None, None], dtype=object)}),
    "int column labels": lambda: pd.DataFrame({0: [1], 1: [2], 10: [3]}),
    "float column labels": lambda: pd.DataFrame({0.5: [1], -1.5: [2]}),
    "timestamp column labels": lambda: pd.DataFrame({pd.Timestamp("2020-01-01"): [1]}),
    "named column index": lambda: pd.DataFrame({"a": [1]}).rename_axis(columns="fields"),
    "multiindex columns": lambda: pd.DataFrame(
        [[1, 2, 3]], columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)])
    ),
    "range index with start and step": lambda: pd.DataFrame(
        {"a": [1, 2, 3]}, index=pd.RangeIndex(10, 40, 10, name="r")
    ),
    "str index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="key")),
    "int index, unsorted": lambda: pd.DataFrame({"a": [1, 2, 3]}, index=[5, -1, 5]),
    "float index": lambda: pd.DataFrame({"a": [1, 2]}, index=[0.5, -0.0]),
    "datetime index with freq": lambda: pd.DataFrame(
        {"a": range(4)}, index=pd.date_range("2020", periods=4, freq="D", tz="UTC", name="day")
    ),
    "business-day freq": lambda: pd.DataFrame(
        {"a": range(3)}, index=pd.bdate_range("2024-01-01", periods=3)
    ),
    "timedelta index with freq": lambda: pd.DataFrame(
        {"a": range(3)}, index=pd.timedelta_range("1s", periods=3, freq="s")
    ),
    "categorical index": lambda: pd.DataFrame({"a": [1, 2]}, index=pd.CategoricalIndex(["x", "y"])),
    "multiindex": lambda: pd.DataFrame(
        {"v": [1.0, 2.0, 3.0]},
        index=pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", "n"]),
    ),
    "attrs": _with_attrs,
    "no columns, no rows": lambda: pd.DataFrame(index=pd.RangeIndex(0)),
    "from a 2-d array (range column labels)": lambda: pd.DataFrame(np.eye(3)),
    "no rows": lambda: pd.DataFrame(
        {"a": pd.Series([], dtype="int64"), "s": pd.Series([], dtype="str")}
    ),
    "empty": pd.DataFrame,
    "index name like Arrow's": lambda: pd.DataFrame(
        {"__index_level_0__": [1]}, index=pd.Index([5], name="__index_level_0__")
    ),
    "unicode labels": lambda: pd.DataFrame({"ü€😀": ["ß"]}),
}


def assert_same_frame(back: object, original: pd.DataFrame) -> None:
    assert type(back) is type(original)
    pd.testing.assert_frame_equal(
        back, original, check_exact=True, check_index_type=True, check_column_type=True
    )
    assert type(back.index) is type(original.index)
    assert type(back.columns) is type(original.columns)
    assert back.attrs == original.attrs
    assert getattr(back.index, "freq", None) == getattr(original.index, "freq", None)


@pytest.fixture(params=["arrow", "parquet"])
def frame_store(request, tmp_path):
    return open_store(tmp_path / request.param, frame_format=request.param)


@pytest.mark.parametrize("kind", list(FAITHFUL))
def test_frames_arrow_holds_round_trip_exactly(frame_store, kind):
    original = FAITHFUL[kind]()
    back, fmt = roundtrip(frame_store, original)
    # Parquet narrows a few types (int dictionaries, second-resolution timestamps…);
    # those go to Arrow IPC, never to pickle.
    assert fmt in ("arrow", frame_store.frame_format)
    assert_same_frame(back, original)


def test_local_stores_default_to_arrow_and_remote_to_parquet(local_store, memory_store):
    frame = pd.DataFrame({"a": [1, 2]})
    assert local_store.save("s", "df", frame).format == "arrow"
    assert memory_store.save("s", "df", frame).format == "parquet"
    assert local_store.path("s", "df").endswith("df.arrow")
    assert memory_store.path("s", "df").endswith("df.parquet")
    assert_same_frame(memory_store.load("s", "df"), frame)


def test_parquet_keeps_string_categoricals_and_tz_datetimes(memory_store):
    frame = pd.DataFrame(
        {
            "colour": pd.Categorical.from_codes([0, 1, 0], ["red", "green"]),
            "seen": pd.date_range("2024-01-01", periods=3, freq="s", tz="UTC"),
            "visits": pd.array([1, None, 3], dtype="Int64"),
            "name": ["a", "b", None],
        }
    )
    back, fmt = roundtrip(memory_store, frame)
    assert fmt == "parquet"
    assert sidecar(memory_store, "s", "x")["note"] is None
    assert_same_frame(back, frame)


def test_parquet_narrowing_falls_back_to_arrow_with_a_note(memory_store):
    frame = pd.DataFrame({"c": pd.Categorical([1, 2, 1])})  # Parquet loses int categories
    back, fmt = roundtrip(memory_store, frame)
    assert fmt == "arrow"
    assert "Parquet" in sidecar(memory_store, "s", "x")["note"]
    assert_same_frame(back, frame)


# Frames Arrow cannot hold exactly: pickled, with the reason in the sidecar.
UNFAITHFUL = {
    "mixed object column": (lambda: pd.DataFrame({"a": [1, "x", 2.5]}), "Arrow cannot hold"),
    "lists in a column": (lambda: pd.DataFrame({"a": [[1], [2, 3]]}), "object column 'a'"),
    "dicts in a column": (lambda: pd.DataFrame({"a": [{"x": 1}, {"y": 2}]}), "object column"),
    "decimals": (lambda: pd.DataFrame({"a": [decimal.Decimal("2"), decimal.Decimal("1.5")]}), "a"),
    "object column of str": (
        lambda: pd.DataFrame({"a": pd.Series(["x", None], dtype=object)}),
        "would come back as",
    ),
    "object column of ints": (
        lambda: pd.DataFrame({"a": pd.Series([1, 2], dtype=object)}),
        "would come back as",
    ),
    "bytes and NaN": (lambda: pd.DataFrame({"a": [b"x", np.nan]}), "object column"),
    "datetime in a date column": (
        lambda: pd.DataFrame({"d": [dt.date(2020, 1, 1), dt.datetime(2020, 1, 1, 5)]}),
        "",
    ),
    "duplicate column names": (lambda: pd.DataFrame([[1, 2]], columns=["a", "a"]), "Duplicate"),
    "mixed column labels": (lambda: pd.DataFrame({0: [1], "a": [2]}), "column labels"),
    "non-str index name": (
        lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index([3, 4], name=7)),
        "names",
    ),
    "object index of ints": (
        lambda: pd.DataFrame({"a": [1, 2]}, index=pd.Index([1, 2], dtype=object)),
        "index",
    ),
    "sparse": (lambda: pd.DataFrame({"a": pd.arrays.SparseArray([0, 1, 0])}), "Arrow"),
    "complex": (lambda: pd.DataFrame({"a": np.array([1j, 2])}), "Arrow"),
    "rows but no columns": (lambda: pd.DataFrame(index=pd.RangeIndex(3)), "rows"),
    "python-backed strings": (
        lambda: pd.DataFrame({"a": pd.array(["x", None], dtype=pd.StringDtype("python"))}),
        "would come back as",
    ),
    "attrs that are not JSON": (
        lambda: pd.DataFrame({"a": [1]}).pipe(lambda f: f.attrs.update(t=(1, 2)) or f),
        "attrs",
    ),
}


@pytest.mark.parametrize("kind", list(UNFAITHFUL))
def test_frames_arrow_cannot_hold_go_to_pandas_pickle(frame_store, kind):
    make, words = UNFAITHFUL[kind]
    original = make()
    back, fmt = roundtrip(frame_store, original)
    assert fmt == "pandas-pickle"
    note = sidecar(frame_store, "s", "x")["note"]
    assert note and words in note
    pd.testing.assert_frame_equal(back, original, check_exact=True)
    if original.shape[1]:
        assert list(map(type, back.iloc[:, 0])) == list(map(type, original.iloc[:, 0]))
    assert back.attrs == original.attrs


def test_notebook_objects_inside_a_frame_are_pickled_by_value(local_store):
    class Point:  # defined in a function: pickle by reference could not find it again
        def __init__(self, x: int) -> None:
            self.x = x

    frame = pd.DataFrame({"p": [Point(1), Point(2)]})
    back, fmt = roundtrip(local_store, frame)
    assert fmt == "pandas-pickle"
    assert [p.x for p in back["p"]] == [1, 2]


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1, 2, 3], name="count"),
        pd.Series([1.5, None]),
        pd.Series(["a", "b"], index=pd.Index(["x", "y"], name="k"), name=0),
        pd.Series(pd.Categorical(["a", "b"]), name="c"),
        pd.Series(pd.date_range("2020", periods=3, tz="UTC"), name=("a", "b")),
        pd.Series([], dtype="Int64", name="e"),
    ],
    ids=["named", "unnamed", "int name", "categorical", "tuple name", "empty"],
)
def test_series_round_trip_with_name_and_index(frame_store, series):
    back, fmt = roundtrip(frame_store, series)
    assert fmt in ("arrow", "parquet", "pandas-pickle")
    assert type(back) is pd.Series
    pd.testing.assert_series_equal(back, series, check_exact=True, check_index_type=True)
    assert back.name == series.name and type(back.name) is type(series.name)


def test_series_of_mixed_objects_goes_to_pandas_pickle(local_store):
    series = pd.Series([1, "a"], name="m")
    back, fmt = roundtrip(local_store, series)
    assert fmt == "pandas-pickle"
    pd.testing.assert_series_equal(back, series, check_exact=True)


def test_loaded_frames_can_be_changed_in_place(local_store):
    original = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.0, 2.0, 3.0],
            "s": ["a", "b", "c"],
            "c": pd.Categorical(["x", "y", "x"]),
            "t": pd.date_range("2020", periods=3, tz="UTC"),
            "I": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    local_store.save("s", "df", original)
    frame = local_store.load("s", "df")
    frame.loc[0, "i"] = 10
    frame.loc[1, "f"] = -1.0
    frame.loc[2, "s"] = "z"
    frame.loc[0, "c"] = "y"
    frame.loc[1, "t"] = pd.Timestamp("1999-01-01", tz="UTC")
    frame.loc[1, "I"] = 7
    frame["new"] = 1
    frame.iloc[:, 1] *= 2
    assert frame.loc[0, "c"] == "y" and frame.loc[2, "s"] == "z"
    assert_same_frame(local_store.load("s", "df"), original)  # the artifact is untouched


def test_subclasses_of_dataframe_keep_their_class(local_store):
    class Tagged(pd.DataFrame):
        @property
        def _constructor(self):
            return Tagged

    frame = Tagged({"a": [1, 2]})
    back, fmt = roundtrip(local_store, frame)
    assert fmt == "cloudpickle"
    assert type(back).__name__ == "Tagged"


def test_sidecar_names_the_pandas_type(local_store):
    local_store.save("s", "df", pd.DataFrame({"a": [1]}))
    local_store.save("s", "se", pd.Series([1]))
    assert sidecar(local_store, "s", "df")["type"] == f"{pd.DataFrame.__module__}.DataFrame"
    assert sidecar(local_store, "s", "se")["type"] == f"{pd.Series.__module__}.Series"
