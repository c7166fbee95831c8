"""numpy arrays as .npy (memory-mapped, copy-on-write), numpy scalars as 0-d .npy."""

from __future__ import annotations

import numpy as np
import pytest

from tests.marshal.conftest import roundtrip, sidecar

ARRAYS = {
    "float64": np.arange(12, dtype=np.float64).reshape(3, 4),
    "int8": np.array([-128, 0, 127], dtype=np.int8),
    "bool": np.array([True, False]),
    "complex": np.array([1 + 2j, -0.0j]),
    "big-endian": np.arange(5, dtype=">i4"),
    "fortran": np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)),
    "non-contiguous": np.arange(100.0).reshape(10, 10)[::2, 1::3],
    "0-d": np.array(3.5),
    "empty": np.zeros((0, 3)),
    "unicode": np.array(["a", "ü€", ""]),
    "bytes": np.array([b"x", b"yz"]),
    "datetime": np.array(["2020-01-01", "NaT"], dtype="datetime64[ns]"),
    "timedelta": np.array([1, 2], dtype="timedelta64[s]"),
    "structured": np.array([(1, 2.5, b"ab")], dtype=[("a", "i4"), ("b", "f8"), ("c", "S2")]),
    "nan": np.array([np.nan, -0.0, np.inf]),
    "float16": np.array([1.5, -2.0], dtype=np.float16),
}


@pytest.mark.parametrize("key", list(ARRAYS))
def test_arrays_round_trip_as_npy(store, key):
    original = ARRAYS[key]
    back, fmt = roundtrip(store, original)
    assert fmt == "npy"
    assert type(back) is np.ndarray
    assert back.dtype == original.dtype and back.shape == original.shape
    np.testing.assert_array_equal(back, original, strict=True)
    if original.dtype.kind == "f":
        assert np.array_equal(np.signbit(back), np.signbit(original))


def test_fortran_order_is_kept(local_store):
    back, _ = roundtrip(local_store, ARRAYS["fortran"])
    assert back.flags.f_contiguous and not back.flags.c_contiguous


def test_load_is_memory_mapped_and_in_place_changes_do_not_touch_the_file(local_store):
    original = np.arange(1000.0)
    local_store.save("s", "a", original)
    first = local_store.load("s", "a")
    assert isinstance(first.base, np.memmap)  # mapped, not read
    assert first.flags.writeable
    first[0] = -1.0  # the step mutates its input in place
    first *= 2
    assert first[0] == -2.0 and first[1] == 2.0
    again = local_store.load("s", "a")  # the artifact (and its sha256) is unchanged
    np.testing.assert_array_equal(again, original)


def test_memmap_values_are_saved_as_plain_arrays(local_store):
    local_store.save("s", "a", np.arange(10))
    loaded = local_store.load("s", "a")
    changed = loaded[2:5] + 1  # a value derived from a loaded array, saved by the next step
    meta = local_store.save("t", "b", changed)
    assert meta.format == "npy"
    np.testing.assert_array_equal(local_store.load("t", "b"), [3, 4, 5])
    mm = np.lib.format.open_memmap(local_store.path("s", "a"), mode="r")
    assert local_store.save("t", "m", mm).format == "npy"
    np.testing.assert_array_equal(local_store.load("t", "m"), np.arange(10))


def test_object_arrays_go_to_cloudpickle(store):
    original = np.array([1, "a", None, [2]], dtype=object)
    back, fmt = roundtrip(store, original)
    assert fmt == "cloudpickle"
    assert back.dtype == object and list(back) == list(original)
    note = sidecar(store, "s", "x")["note"]
    assert "object" in note


def test_masked_arrays_keep_their_mask_through_pickle(local_store):
    original = np.ma.masked_array([1, 2, 3], mask=[False, True, False])
    back, fmt = roundtrip(local_store, original)
    assert fmt == "cloudpickle"
    assert type(back) is np.ma.MaskedArray
    assert list(back.mask) == [False, True, False]


@pytest.mark.parametrize(
    "scalar",
    [
        np.float64(1.5),
        np.float32(-0.0),
        np.int8(-3),
        np.uint64(2**64 - 1),
        np.bool_(True),
        np.complex128(1 - 1j),
        np.datetime64("2020-01-02T03:04"),
        np.timedelta64(5, "ms"),
        np.str_("ü"),
        np.bytes_(b"ab"),
    ],
    ids=lambda s: type(s).__name__,
)
def test_numpy_scalars_keep_their_exact_type(store, scalar):
    back, fmt = roundtrip(store, scalar)
    assert fmt == "npy-scalar"
    assert type(back) is type(scalar)
    assert back == scalar
    if isinstance(scalar, np.floating):
        assert np.signbit(back) == np.signbit(scalar)


def test_sidecar_describes_the_array(local_store):
    meta = local_store.save("s", "arr", np.zeros(10))
    data = sidecar(local_store, "s", "arr")
    assert data["type"] == "numpy.ndarray"
    assert data["format"] == "npy"
    assert data["file"] == "arr.npy"
    assert data["size"] == meta.size == 128 + 80
