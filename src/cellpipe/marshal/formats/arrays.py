"""numpy arrays as ``.npy`` (no pickle), loaded memory-mapped; numpy scalars as 0-d ``.npy``.

Loading maps the file copy-on-write (``mmap_mode="c"``): nothing is read until touched,
pages come straight from the page cache, and a step that changes the array in place
changes only its private copy of the pages it writes, never the artifact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cellpipe.marshal.formats.base import Format, Unsuitable
from cellpipe.marshal.hashing import HashingWriter


def _write_npy(array: np.ndarray[Any, Any], sink: HashingWriter) -> None:
    if array.dtype.hasobject:
        raise Unsuitable("array of Python objects", "cloudpickle")
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    header = np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(sink, header)
    except ValueError:  # a header over 64 KiB (huge structured dtypes) needs version 2
        np.lib.format.write_array_header_2_0(sink, header)
    # The header says whether the data is in Fortran order; write the memory as it is
    # laid out, without the chunked copy np.save makes for file objects that are not files.
    ordered = array.T if header["fortran_order"] else array
    if ordered.size:
        sink.write(ordered.reshape(-1).view(np.uint8))


class NpyFormat(Format):
    """``numpy.ndarray`` (and ``numpy.memmap``) of any non-object dtype."""

    name = "npy"
    extension = "npy"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Write the array as ``.npy``; object arrays go to cloudpickle."""
        if not isinstance(value, np.ndarray):  # pragma: no cover - the registry checks
            raise Unsuitable("not a numpy array", "cloudpickle")
        _write_npy(value, sink)

    def load(self, path: str) -> object:
        """Map the array copy-on-write; return it as a plain, writable ``ndarray``."""
        try:
            mapped = np.load(path, mmap_mode="c", allow_pickle=False)
        except ValueError:  # an array with no elements: nothing to map
            return np.load(path, allow_pickle=False)
        # A plain ndarray view of the memmap: same memory, but ``type(x) is np.ndarray``
        # like the value that was saved, and results of operations are plain arrays.
        return mapped.view(np.ndarray)


class NpyScalarFormat(Format):
    """numpy scalars (``np.float64(1.5)``, ``np.datetime64(...)``): a 0-d ``.npy``."""

    name = "npy-scalar"
    extension = "npy"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Write the scalar as a 0-d array."""
        if not isinstance(value, np.generic) or type(value).__module__ != "numpy":
            raise Unsuitable("a subclass of a numpy scalar type", "cloudpickle")
        _write_npy(np.asarray(value), sink)

    def load(self, path: str) -> object:
        """Read the 0-d array back and return its scalar."""
        array = np.load(path, allow_pickle=False)
        return array[()]
