"""Values that cannot leave their process: a MarshalError naming variable, type, steps, fix."""

from __future__ import annotations

import io
import pickle
import socket
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cellpipe.errors import CellpipeError
from cellpipe.marshal import MarshalError


def _generator():
    yield 1


def _cases(tmp_path):
    handle = open(tmp_path / "f.txt", "w")  # noqa: SIM115 - the value under test
    binary = open(tmp_path / "f.bin", "wb")  # noqa: SIM115
    sock = socket.socket()
    connection = sqlite3.connect(":memory:")
    pool = ThreadPoolExecutor(max_workers=1)
    values = {
        "text file": (handle, "_io.TextIOWrapper", "open file", "re-open the file"),
        "binary file": (binary, "_io.BufferedWriter", "open file", "re-open the file"),
        "generator": (_generator(), "builtins.generator", "generator", "list("),
        "lock": (threading.Lock(), "_thread.lock", "lock", "create it"),
        "rlock": (threading.RLock(), "_thread.RLock", "lock", "create it"),
        "event": (threading.Event(), "threading.Event", "event", "create it"),
        "socket": (sock, "socket.socket", "socket", "open the connection"),
        "sqlite": (connection, "sqlite3.Connection", "database connection", "connect in"),
        "cursor": (connection.cursor(), "sqlite3.Cursor", "database cursor", "connect in"),
        "module": (io, "builtins.module", "a module", "import it"),
        "pool": (pool, "concurrent.futures.thread.ThreadPoolExecutor", "thread pool", "create"),
    }
    closers = [handle.close, binary.close, sock.close, connection.close, pool.shutdown]
    return values, closers


KINDS = [
    "text file", "binary file", "generator", "lock", "rlock", "event", "socket", "sqlite",
    "cursor", "module", "pool",
]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_known_unmarshallable_values_are_refused_up_front(local_store, tmp_path, kind):
    values, closers = _cases(tmp_path)
    try:
        value, type_name, what, fix = values[kind]
        with pytest.raises(MarshalError) as info:
            local_store.save("load", "handle", value, consumers=["train", "report"])
    finally:
        for close in closers:
            close()
    error = info.value
    assert isinstance(error, CellpipeError)
    assert error.step == "load"
    assert error.variable == "handle"
    assert error.type_name == type_name
    assert error.consumers == ("train", "report")
    assert fix in error.hint
    text = str(error)
    for part in ("'load'", "'handle'", type_name, "'train'", "'report'", what):
        assert part in text
    assert error.__cause__ is None  # recognised, not a pickling traceback
    assert not (tmp_path / "store" / "load").exists() or not any(
        (tmp_path / "store" / "load").iterdir()
    )


def test_bytes_and_string_buffers_are_data_not_files(local_store):
    local_store.save("s", "b", io.BytesIO(b"abc"))
    local_store.save("s", "t", io.StringIO("abc"))
    assert local_store.load("s", "b").getvalue() == b"abc"
    assert local_store.load("s", "t").getvalue() == "abc"


def test_unpicklable_values_inside_containers_are_wrapped_with_the_reason(local_store):
    with pytest.raises(MarshalError) as info:
        local_store.save("fit", "state", {"lock": threading.Lock()}, consumers=["evaluate"])
    error = info.value
    assert (error.step, error.variable, error.type_name) == ("fit", "state", "builtins.dict")
    assert error.consumers == ("evaluate",)
    assert "lock" in str(error) and "cloudpickle failed" in str(error)
    assert error.hint
    assert isinstance(error.__cause__, TypeError)


class _Refuses:
    def __reduce__(self):
        raise RuntimeError("this object refuses to be pickled")


def test_objects_whose_pickling_fails_are_wrapped_not_a_deep_traceback(local_store):
    with pytest.raises(MarshalError, match="refuses to be pickled") as info:
        local_store.save("s", "obj", [1, _Refuses()])
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.consumers == ()
    assert "later steps" in str(info.value)


def test_the_error_pickles_with_its_fields(local_store):
    with pytest.raises(MarshalError) as info:
        local_store.save("s", "g", _generator(), consumers=["t"])
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is MarshalError
    assert (copy.step, copy.variable, copy.type_name, copy.consumers, copy.hint) == (
        "s",
        "g",
        "builtins.generator",
        ("t",),
        info.value.hint,
    )
    assert str(copy) == str(info.value)
