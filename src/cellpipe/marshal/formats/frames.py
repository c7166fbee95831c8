"""pandas DataFrames and Series without pickle: Arrow IPC (fast) or Parquet (small).

Arrow holds almost every frame exactly (index and column labels, categoricals, datetimes
with time zones, nullable integers, strings), but not all: object columns of mixed types,
duplicate column names, non-string labels of mixed types, and a few Parquet type
narrowings. Before writing, the frame is converted, and the schema that conversion
produced is turned back into an empty frame and compared with the original (types of the
index and the labels, dtypes, names, attrs, and the Python types inside object columns).
A frame Arrow cannot hold faithfully is written as a pickle (format ``pandas-pickle``),
and the sidecar's note says why.
"""

from __future__ import annotations

import datetime
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped,unused-ignore]
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.ipc as pa_ipc  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from cellpipe.marshal.formats.base import Format, Unsuitable
from cellpipe.marshal.formats.plain import is_exact_json
from cellpipe.marshal.hashing import HashingWriter

_META_KEY = b"cellpipe"
# A series is stored as a one-column frame under this label; its name is kept aside.
_SERIES_LABEL = "__cellpipe_series__"
_PICKLE = "pandas-pickle"
_MAX_REASON = 200


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _freq(index: pd.Index) -> str | None:
    """The ``freq`` of a datetime or timedelta index, which Arrow does not keep."""
    freq = getattr(index, "freq", None)
    if freq is None or not isinstance(index, (pd.DatetimeIndex, pd.TimedeltaIndex)):
        return None
    text = str(freq.freqstr)
    if pd.tseries.frequencies.to_offset(text) != freq:
        raise Unsuitable(f"the index frequency {freq!r} cannot be written down", _PICKLE)
    return text


def _with_freq(index: pd.Index, freq: str | None) -> pd.Index:
    if freq is None:
        return index
    if isinstance(index, pd.DatetimeIndex):
        return pd.DatetimeIndex(index, freq=freq)
    if isinstance(index, pd.TimedeltaIndex):
        return pd.TimedeltaIndex(index, freq=freq)
    return index  # pragma: no cover - only datetime/timedelta indexes record a freq


def _axes_extra(frame: pd.DataFrame) -> dict[str, Any]:
    """What Arrow's pandas metadata does not keep about the axes: freq, range columns."""
    columns = frame.columns
    extra: dict[str, Any] = {
        "index_freq": _freq(frame.index),
        "columns_freq": _freq(columns),
    }
    if isinstance(columns, pd.RangeIndex):
        extra["columns_range"] = [columns.start, columns.stop, columns.step]
    return extra


def _restore_axes(frame: pd.DataFrame, extra: dict[str, Any]) -> None:
    frame.index = _with_freq(frame.index, extra.get("index_freq"))
    columns = frame.columns
    span = extra.get("columns_range")
    if span is not None and len(columns) == len(range(*span)):
        columns = pd.RangeIndex(*span, name=columns.name)
    frame.columns = _with_freq(columns, extra.get("columns_freq"))


def to_table(value: object) -> pa.Table:
    """Convert a DataFrame or Series to an Arrow table that restores it exactly.

    Raises:
        Unsuitable: Arrow cannot hold the value faithfully (the reason says why).
    """
    if isinstance(value, pd.Series):
        name = value.name
        if not (name is None or (type(name) in (str, int, float, bool) and is_exact_json(name))):
            raise Unsuitable(f"the series name {name!r} is not a plain str or number", _PICKLE)
        frame = value.to_frame(name=_SERIES_LABEL)
        extra: dict[str, Any] = {"kind": "series", "name": name}
    elif isinstance(value, pd.DataFrame):
        frame = value
        extra = {"kind": "frame"}
    else:  # pragma: no cover - the registry checks
        raise Unsuitable("not a pandas frame", "cloudpickle")
    extra.update(_axes_extra(frame))
    try:
        with warnings.catch_warnings():
            # e.g. "column names of mixed type will be cast to str": checked below instead.
            warnings.simplefilter("ignore")
            table = pa.Table.from_pandas(frame, preserve_index=None)
    except Exception as exc:
        words = "; ".join(str(part) for part in exc.args) or type(exc).__name__
        raise Unsuitable(_short(f"Arrow cannot hold it: {words}"), _PICKLE) from exc
    reason = unfaithful(frame, table, extra)
    if reason is not None:
        raise Unsuitable(_short(reason), _PICKLE)
    metadata = dict(table.schema.metadata or {})
    metadata[_META_KEY] = json.dumps(extra).encode()
    table = table.replace_schema_metadata(metadata)
    if table.num_rows != len(frame):  # a table without columns forgets its rows
        raise Unsuitable(f"Arrow would keep {table.num_rows} of its {len(frame)} rows", _PICKLE)
    return table


def from_table(table: pa.Table) -> pd.DataFrame | pd.Series:
    """Turn a table written by :func:`to_table` back into its frame or series."""
    frame = table.to_pandas()
    # Arrow hands categorical codes over without a copy, read-only; a step that assigns
    # into such a column would fail, so give them their own (small) code arrays.
    for position, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            frame.isetitem(position, frame.iloc[:, position].copy())
    raw = (table.schema.metadata or {}).get(_META_KEY)
    extra: dict[str, Any] = json.loads(raw) if raw else {"kind": "frame"}
    _restore_axes(frame, extra)
    if extra.get("kind") != "series":
        return frame
    series = frame.iloc[:, 0]
    series.name = extra.get("name")
    series.attrs = frame.attrs
    return series


# -- the faithfulness check ------------------------------------------------------------


def _same_dtype(left: Any, right: Any) -> bool:
    if left != right or type(left) is not type(right):
        return False
    if isinstance(left, pd.CategoricalDtype):
        return bool(left.categories.dtype == right.categories.dtype)
    return True


def _axis_difference(original: pd.Index, restored: pd.Index, what: str) -> str | None:
    if type(original) is not type(restored) or original.nlevels != restored.nlevels:
        return f"the {what} would come back as {type(restored).__name__}"
    if list(map(type, original.names)) != list(map(type, restored.names)) or list(
        original.names
    ) != list(restored.names):
        return f"the {what} names {list(original.names)!r} would not come back as they are"
    originals = original.levels if isinstance(original, pd.MultiIndex) else [original]
    restoreds = restored.levels if isinstance(restored, pd.MultiIndex) else [restored]
    for left, right in zip(originals, restoreds, strict=True):
        if not _same_dtype(left.dtype, right.dtype):
            return f"the {what} of dtype {left.dtype} would come back as {right.dtype}"
    return None


def _labels_difference(original: pd.Index, restored: pd.Index) -> str | None:
    difference = _axis_difference(original, restored, "column labels")
    if difference is not None:
        return difference
    if not original.equals(restored) or original.inferred_type != restored.inferred_type:
        return "the column labels would come back with other values or types"
    return None


def _index_difference(original: pd.Index, restored: pd.Index, table: pa.Table) -> str | None:
    if isinstance(original, pd.RangeIndex):
        # A range index is kept as metadata, which an empty slice of the table does not
        # match (its length differs), so check the metadata itself.
        stored = table.schema.pandas_metadata["index_columns"]
        if (
            len(stored) == 1
            and isinstance(stored[0], dict)
            and stored[0].get("kind") == "range"
            and stored[0].get("name") == original.name
            and type(stored[0].get("name")) is type(original.name)
        ):
            return None
        return "the range index would not come back as it is"
    return _axis_difference(original, restored, "index")


# Arrow types an object column may map to, with the only Python types that come back
# exactly from them (None aside). Anything else (lists become arrays, dicts gain keys,
# decimals change scale) is left to pickle.
def _python_types_for(arrow_type: Any) -> tuple[type, ...] | None:
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return (bytes,)
    if pa.types.is_date32(arrow_type):
        return (datetime.date,)
    if pa.types.is_time32(arrow_type) or pa.types.is_time64(arrow_type):
        return (datetime.time,)
    if pa.types.is_null(arrow_type):
        return ()
    return None


def _object_values_difference(label: object, values: Any, arrow_type: Any) -> str | None:
    allowed = _python_types_for(arrow_type)
    if allowed is None:
        return f"object column {label!r} would come back as {arrow_type} values"
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds <= set(allowed):
        names = sorted(kind.__name__ for kind in kinds)
        return f"object column {label!r} holds values of types {names} Arrow would change"
    if datetime.time in kinds and any(v is not None and v.tzinfo is not None for v in values):
        return f"object column {label!r} holds times with a time zone"
    return None


def unfaithful(frame: pd.DataFrame, table: pa.Table, extra: dict[str, Any]) -> str | None:
    """Say why ``table`` would not give back ``frame`` exactly, or None if it would.

    Args:
        frame: The original frame.
        table: ``pa.Table.from_pandas(frame, preserve_index=None)``.
        extra: What :func:`from_table` restores on top of Arrow's metadata.

    Returns:
        A reason for the sidecar's note, or None.
    """
    try:
        restored = table.slice(0, 0).to_pandas()
        _restore_axes(restored, extra)
    except Exception as exc:
        return f"Arrow cannot turn it back into a frame: {exc}"
    difference = _labels_difference(frame.columns, restored.columns) or _index_difference(
        frame.index, restored.index, table
    )
    if difference is not None:
        return difference
    for position, (left, right) in enumerate(zip(frame.dtypes, restored.dtypes, strict=True)):
        label = frame.columns[position]
        if not _same_dtype(left, right):
            return f"column {label!r} of dtype {left} would come back as {right}"
        if left == np.dtype(object):
            field = table.schema.field(position)
            difference = _object_values_difference(label, frame.iloc[:, position], field.type)
            if difference is not None:
                return difference
    for level in range(frame.index.nlevels):
        values = frame.index.get_level_values(level)
        if values.dtype == object:
            name = table.schema.pandas_metadata["index_columns"][level]
            field = table.schema.field(name) if isinstance(name, str) else None
            if field is None:  # pragma: no cover - object indexes are stored as columns
                return "an object index cannot be stored"
            difference = _object_values_difference(values.name, values, field.type)
            if difference is not None:
                return difference
    try:
        same_attrs = bool(restored.attrs == frame.attrs)
    except Exception:
        same_attrs = False
    if not same_attrs:
        return "its attrs would not come back as they are"
    return None


# -- formats -----------------------------------------------------------------------------


class ArrowFormat(Format):
    """Arrow IPC file (Feather v2), uncompressed: fast to write, memory-mapped to read."""

    name = "arrow"
    extension = "arrow"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Write the frame as an Arrow IPC file; frames Arrow cannot hold go to pickle."""
        table = to_table(value)
        with pa_ipc.new_file(pa.PythonFile(sink, mode="w"), table.schema) as writer:
            writer.write_table(table)

    def load(self, path: str) -> object:
        """Map the file and rebuild the frame (strings stay in the mapped Arrow memory)."""
        with pa.memory_map(path) as source:
            table = pa_ipc.open_file(source).read_all()
        return from_table(table)


def _as_pandas_sees_it(arrow_type: Any) -> Any:
    """The type with offset widths erased: pandas makes the same column of either width."""
    if pa.types.is_large_string(arrow_type):
        return pa.string()
    if pa.types.is_large_binary(arrow_type):
        return pa.binary()
    if pa.types.is_dictionary(arrow_type):
        return pa.dictionary(
            arrow_type.index_type, _as_pandas_sees_it(arrow_type.value_type), arrow_type.ordered
        )
    return arrow_type


def _parquet_narrowing(table: pa.Table) -> str | None:
    """Say which column Parquet would give back as another Arrow type, if any."""
    buffer = pa.BufferOutputStream()
    pq.write_table(table.slice(0, 0), buffer)
    stored = pq.read_schema(pa.BufferReader(buffer.getvalue()))
    for field in table.schema:
        kept = stored.field(field.name).type
        if _as_pandas_sees_it(kept) != _as_pandas_sees_it(field.type):
            return f"Parquet would store column {field.name!r} of type {field.type} as {kept}"
    return None


class ParquetFormat(Format):
    """Parquet (zstd): smaller, for object stores; frames it would narrow go to Arrow IPC."""

    name = "parquet"
    extension = "parquet"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Write the frame as Parquet."""
        table = to_table(value)
        narrowing = _parquet_narrowing(table)
        if narrowing is not None:
            raise Unsuitable(_short(narrowing), "arrow")
        pq.write_table(table, pa.PythonFile(sink, mode="w"), compression="zstd")

    def load(self, path: str) -> object:
        """Read the file and rebuild the frame."""
        return from_table(pq.read_table(path, memory_map=True))
