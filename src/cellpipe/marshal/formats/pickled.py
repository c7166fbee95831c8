"""Pickles: cloudpickle, the format of last resort, and the fallback for pandas frames.

cloudpickle pickles what lives in ``__main__`` (the classes and functions a notebook
defines) by value, so a step process that never ran those cells can still load them;
importable objects are pickled by reference as usual.
"""

from __future__ import annotations

import pickle

import cloudpickle  # type: ignore[import-untyped,unused-ignore]

from cellpipe.marshal.formats.base import Format
from cellpipe.marshal.hashing import HashingWriter

PROTOCOL = 5


class CloudpickleFormat(Format):
    """Any picklable value, through cloudpickle (pickle protocol 5)."""

    name = "cloudpickle"
    extension = "pkl"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Pickle ``value`` into ``sink``."""
        cloudpickle.dump(value, sink, protocol=PROTOCOL)

    def load(self, path: str) -> object:
        """Unpickle the value (a plain pickle stream; cloudpickle must be importable)."""
        with open(path, "rb") as handle:
            return pickle.load(handle)


class PandasPickleFormat(Format):
    """Frames Arrow cannot hold: a pickle, read back with ``pandas.read_pickle``.

    Written by cloudpickle rather than ``DataFrame.to_pickle`` so that notebook-defined
    objects in object columns load in another process too; the stream is an ordinary
    pickle. pandas is imported only to read one back.
    """

    name = "pandas-pickle"
    extension = "pkl"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Pickle the frame."""
        cloudpickle.dump(value, sink, protocol=PROTOCOL)

    def load(self, path: str) -> object:
        """Unpickle the frame with pandas (which also reads pickles of older pandas)."""
        import pandas  # type: ignore[import-untyped,unused-ignore]

        return pandas.read_pickle(path)
