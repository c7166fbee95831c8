"""Stores: layout, sidecars, digest checks, atomic writes, linking, local and fsspec."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from pathlib import Path

import blake3
import fsspec
import numpy as np
import pytest

from cellpipe import __version__
from cellpipe.errors import CellpipeError
from cellpipe.marshal import (
    ArtifactCorruptedError,
    ArtifactMeta,
    ArtifactNotFoundError,
    MarshalError,
    open_store,
)
from cellpipe.marshal.formats.pickled import CloudpickleFormat
from cellpipe.marshal.hashing import HashingWriter, file_digest, file_sha256
from cellpipe.marshal.local import LocalStore
from cellpipe.marshal.remote import FsspecStore
from tests.marshal.conftest import sidecar


def read_bytes(store, path: str) -> bytes:
    if isinstance(store, FsspecStore):
        return bytes(store.fs.cat_file(path))
    return Path(path).read_bytes()


def write_bytes(store, path: str, data: bytes) -> None:
    if isinstance(store, FsspecStore):
        store.fs.pipe_file(path, data)
    else:
        Path(path).write_bytes(data)


def listing(store, step: str) -> list[str]:
    if isinstance(store, FsspecStore):
        return sorted(
            p.rsplit("/", 1)[-1] for p in store.fs.ls(f"{store.root}/{step}", detail=False)
        )
    return sorted(os.listdir(os.path.join(store.root, step)))


# -- layout and sidecars ---------------------------------------------------------------


def test_layout_is_step_dir_with_data_file_and_sidecar(store):
    store.save("prep", "rows", [1, 2, 3])
    assert listing(store, "prep") == ["rows.json", "rows.meta.json"]
    assert store.path("prep", "rows").endswith("prep/rows.json")


def test_sidecar_holds_type_format_size_digest_identity_and_version(store):
    meta = store.save("prep", "table", {"a": [1.5, None]})
    data = sidecar(store, "prep", "table")
    payload = read_bytes(store, store.path("prep", "table"))
    identity = None
    if isinstance(store, LocalStore):  # what a local load trusts while it is unchanged
        found = os.stat(store.path("prep", "table"))
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        identity = [found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, boot]
    assert data == {
        "sidecar_version": 2,
        "step": "prep",
        "name": "table",
        "type": "builtins.dict",
        "format": "json",
        "size": len(payload),
        "algorithm": "blake3",
        "digest": blake3.blake3(payload).hexdigest(),
        "identity": identity,
        "file": "table.json",
        "note": None,
        "created_by": f"cellpipe {__version__}",
    }
    assert store.meta("prep", "table") == meta
    assert ArtifactMeta.from_dict(meta.to_dict()) == meta


def test_meta_round_trips_and_rejects_bad_sidecars():
    meta = ArtifactMeta("s", "x", "builtins.int", "json", 1, "ab" * 32, "x.json")
    assert ArtifactMeta.from_json(meta.to_json()) == meta
    for bad in ({}, {**meta.to_dict(), "size": "1"}, {**meta.to_dict(), "size": True}, []):
        with pytest.raises(ValueError):
            ArtifactMeta.from_dict(bad)  # type: ignore[arg-type]


def test_exists_and_missing_artifacts(store):
    assert not store.exists("s", "x")
    with pytest.raises(ArtifactNotFoundError) as info:
        store.load("s", "x")
    assert (info.value.step, info.value.variable) == ("s", "x")
    assert "run the step" in info.value.hint
    store.save("s", "x", 1)
    assert store.exists("s", "x")


def test_data_file_without_sidecar_counts_as_not_saved(local_store):
    local_store.save("s", "x", [1])
    os.unlink(os.path.join(local_store.root, "s", "x.meta.json"))
    assert not local_store.exists("s", "x")
    with pytest.raises(ArtifactNotFoundError):
        local_store.load("s", "x")


def test_sidecar_without_data_file_is_reported_missing(store):
    store.save("s", "x", (1, 2))
    if isinstance(store, FsspecStore):
        store.fs.rm_file(f"{store.root}/s/x.pkl")
    else:
        os.unlink(store.path("s", "x"))
    assert not store.exists("s", "x")
    with pytest.raises(ArtifactNotFoundError, match="data file"):
        store.load("s", "x")


def test_overwriting_with_another_format_removes_the_old_data_file(store):
    store.save("s", "x", [1, 2])
    store.save("s", "x", (1, 2))
    assert listing(store, "s") == ["x.meta.json", "x.pkl"]
    assert store.load("s", "x") == (1, 2)


@pytest.mark.parametrize("bad", ["", "../up", "a/b", "a.b", "x y", ".hidden", "a\\b"])
def test_names_that_could_escape_the_directory_are_refused(local_store, bad):
    with pytest.raises(MarshalError, match="cannot be used"):
        local_store.save(bad, "x", 1)
    with pytest.raises(MarshalError, match="cannot be used"):
        local_store.save("s", bad, 1)


def test_unicode_and_dashed_names_are_fine(local_store):
    local_store.save("feature-eng_2", "größe", 3)
    assert local_store.load("feature-eng_2", "größe") == 3


# -- integrity -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [[1, 2, 3], np.arange(1000.0), (1, "a")], ids=type)
def test_a_flipped_byte_is_detected_before_loading(store, value):
    store.save("train", "weights", value)
    path = store.path("train", "weights")
    data = bytearray(read_bytes(store, path))
    data[len(data) // 2] ^= 0x01
    write_bytes(store, path, bytes(data))
    with pytest.raises(ArtifactCorruptedError) as info:
        store.load("train", "weights")
    error = info.value
    assert (error.step, error.variable, error.path) == ("train", "weights", path)
    assert "blake3" in str(error) and "'train'" in str(error) and "'weights'" in str(error)


def test_a_truncated_file_is_detected_by_size(store):
    store.save("s", "x", list(range(100)))
    path = store.path("s", "x")
    write_bytes(store, path, read_bytes(store, path)[:-5])
    with pytest.raises(ArtifactCorruptedError, match="bytes"):
        store.load("s", "x")


@pytest.mark.parametrize(
    "text",
    [
        b"not json",
        b'{"step": "s"}',
        b'{"sidecar_version": 1, "step": "other", "name": "x", "type": "t", "format": "json",'
        b' "size": 1, "sha256": "00", "file": "x.json"}',
        b'{"sidecar_version": 1, "step": "s", "name": "x", "type": "t", "format": "json",'
        b' "size": 1, "sha256": "00", "file": "../../etc/passwd"}',
    ],
    ids=["garbage", "incomplete", "other variable", "path escape"],
)
def test_bad_sidecars_are_reported_corrupted(local_store, text):
    local_store.save("s", "x", 1)
    Path(local_store.root, "s", "x.meta.json").write_bytes(text)
    with pytest.raises(ArtifactCorruptedError) as info:
        local_store.load("s", "x")
    assert info.value.variable == "x"
    assert not local_store.exists("s", "x")


def test_unknown_format_names_the_plugin_to_install(local_store):
    meta = local_store.save("s", "x", 1)
    forged = ArtifactMeta(**{**meta.__dict__, "format": "exotic"})
    Path(local_store.root, "s", "x.meta.json").write_text(forged.to_json())
    with pytest.raises(MarshalError, match="exotic") as info:
        local_store.load("s", "x")
    assert "plugin" in info.value.hint


def test_hashing_writer_hashes_small_and_large_writes_in_order(tmp_path):
    pieces = [b"a" * 10, os.urandom(3 << 20), b"b" * 300_000, bytearray(b"c" * 5)]
    pieces += [memoryview(np.arange(200_000, dtype=np.int64))] * 2 + [b"z" * 100] * 50
    path = tmp_path / "out.bin"
    with HashingWriter(path) as sink:
        for piece in pieces:
            assert sink.write(piece) == memoryview(piece).nbytes
    expected = b"".join(bytes(memoryview(p).cast("B")) for p in pieces)
    assert path.read_bytes() == expected
    assert sink.algorithm == "blake3"
    assert sink.digest == blake3.blake3(expected).hexdigest()
    assert sink.size == len(expected)
    assert file_digest(path) == (sink.digest, len(expected))  # mapped, on all cores
    with HashingWriter(tmp_path / "old.bin", algorithm="sha256") as old:
        for piece in pieces:
            old.write(piece)
    assert old.digest == hashlib.sha256(expected).hexdigest()
    assert file_sha256(tmp_path / "old.bin") == (old.digest, len(expected))  # pipelined


def test_file_digests_of_small_and_empty_files(tmp_path):
    for data in (b"", b"x" * 1000):
        path = tmp_path / "f"
        path.write_bytes(data)
        assert file_sha256(path) == (hashlib.sha256(data).hexdigest(), len(data))
        assert file_digest(path) == (blake3.blake3(data).hexdigest(), len(data))


def test_a_sidecar_of_an_older_cellpipe_names_sha256_and_still_verifies(local_store):
    local_store.save("s", "x", [1, 2])
    path = Path(local_store.path("s", "x"))
    payload = path.read_bytes()
    old = {"sidecar_version": 1, "step": "s", "name": "x", "type": "builtins.list",
           "format": "json", "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest(),
           "file": "x.json", "note": None, "created_by": "cellpipe 0.1.0"}
    Path(local_store.root, "s", "x.meta.json").write_text(json.dumps(old))
    assert local_store.load("s", "x") == [1, 2]
    path.write_bytes(payload.replace(b"2", b"3"))
    with pytest.raises(ArtifactCorruptedError, match="its sha256 is"):
        local_store.load("s", "x")


def test_a_local_load_trusts_an_unchanged_file_and_hashes_a_changed_one(local_store,
                                                                      monkeypatch):
    """The identity recorded at write time (size, mtime_ns, ctime_ns, inode) spares the
    hash while nothing wrote to the file; a write behind cellpipe's back, even one that
    keeps the size and puts the mtime back, changes the ctime and is caught in full."""
    from cellpipe.marshal import store as store_module

    local_store.save("s", "x", np.arange(1000.0))
    hashed = []
    real = store_module.file_digest
    monkeypatch.setattr(store_module, "file_digest",
                        lambda *a, **k: hashed.append(a[0]) or real(*a, **k))
    assert local_store.load("s", "x").sum() == 499500.0
    assert hashed == []
    local_store.load("s", "x", verify=True)  # `cellpipe verify`, a check in full
    assert len(hashed) == 1
    local_store.verify("s", "x")
    assert len(hashed) == 2

    path = local_store.path("s", "x")
    before = os.stat(path)
    data = bytearray(Path(path).read_bytes())
    data[-8:] = np.float64(7.0).tobytes()  # same size
    with open(path, "r+b") as handle:  # in place: the same inode
        handle.write(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the mtime put back
    with pytest.raises(ArtifactCorruptedError, match="blake3"):
        local_store.load("s", "x")
    assert len(hashed) == 3


def test_an_identity_recorded_before_the_machine_restarted_is_not_trusted(local_store,
                                                                         monkeypatch):
    """Artifacts are not fsynced: after a crash or power loss a file may keep its name and
    size but lose its data. The identity names the boot it was seen in, so after a
    restart every artifact is hashed in full before use."""
    from cellpipe.marshal import local
    from cellpipe.marshal import store as store_module

    local_store.save("s", "x", [1, 2, 3])
    hashed = []
    real = store_module.file_digest
    monkeypatch.setattr(store_module, "file_digest",
                        lambda *a, **k: hashed.append(a[0]) or real(*a, **k))
    assert local_store.load("s", "x") == [1, 2, 3] and hashed == []
    monkeypatch.setattr(local, "BOOT_ID", "another-boot")
    assert local_store.load("s", "x") == [1, 2, 3] and len(hashed) == 1


# -- atomic writes ---------------------------------------------------------------------


class _Boom(Exception):
    pass


def _failing_dump(self, value, sink):
    sink.write(b"x" * (3 << 20))  # part of the file is written, then the serializer fails
    raise _Boom("disk on fire")


def test_a_serializer_failing_mid_write_leaves_no_partial_file(store, monkeypatch):
    store.save("s", "x", (1, 2))  # an earlier, good version
    before = listing(store, "s")
    monkeypatch.setattr(CloudpickleFormat, "dump", _failing_dump)
    with pytest.raises(MarshalError, match="disk on fire") as info:
        store.save("s", "x", (3, 4), consumers=["t"])
    assert isinstance(info.value.__cause__, _Boom)
    assert listing(store, "s") == before  # no temporary files, the old artifact intact
    monkeypatch.undo()
    assert store.load("s", "x") == (1, 2)


def test_an_interrupt_mid_write_leaves_no_partial_file(local_store, monkeypatch):
    def interrupted(self, value, sink):
        sink.write(b"x" * 100)
        raise KeyboardInterrupt

    monkeypatch.setattr(CloudpickleFormat, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        local_store.save("s", "x", (1,))
    assert os.listdir(os.path.join(local_store.root, "s")) == []


def test_a_fallback_leaves_no_temporary_file(local_store):
    pd = pytest.importorskip("pandas")
    local_store.save("s", "df", pd.DataFrame({"a": [1, "x"]}))
    assert sorted(os.listdir(os.path.join(local_store.root, "s"))) == ["df.meta.json", "df.pkl"]


def test_non_durable_local_store_writes_the_same_artifacts(tmp_path):
    store = open_store(tmp_path, durable=False)
    meta = store.save("s", "a", np.arange(5))
    assert store.meta("s", "a") == meta
    np.testing.assert_array_equal(store.load("s", "a"), np.arange(5))


# -- linking between stores ------------------------------------------------------------


def test_link_from_a_local_store_hard_links_the_data(tmp_path):
    cache = open_store(tmp_path / "cache")
    run = open_store(tmp_path / "run")
    meta = cache.save("train", "model", np.arange(100.0))
    linked = run.link_from(cache, "train", "model")
    assert linked == meta
    source, target = Path(cache.path("train", "model")), Path(run.path("train", "model"))
    assert source.stat().st_ino == target.stat().st_ino
    # the same sidecar, but for the file's identity: linking changed its ctime (the data
    # was checked in full before the link was published)
    assert dataclasses.replace(run.meta("train", "model"), identity=None) == \
        dataclasses.replace(meta, identity=None)
    assert run.meta("train", "model").identity[3] == source.stat().st_ino
    np.testing.assert_array_equal(run.load("train", "model"), np.arange(100.0))
    assert sorted(os.listdir(tmp_path / "run" / "train")) == ["model.meta.json", "model.npy"]


def test_link_from_copies_when_hard_links_fail(tmp_path, monkeypatch):
    cache = open_store(tmp_path / "cache")
    run = open_store(tmp_path / "run")
    cache.save("s", "x", {"k": 1})

    def no_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    run.link_from(cache, "s", "x")
    source, target = Path(cache.path("s", "x")), Path(run.path("s", "x"))
    assert source.stat().st_ino != target.stat().st_ino
    assert run.load("s", "x") == {"k": 1}


def test_link_from_replaces_an_older_artifact_of_another_format(tmp_path):
    cache = open_store(tmp_path / "cache")
    run = open_store(tmp_path / "run")
    run.save("s", "x", [1])
    cache.save("s", "x", (2,))
    run.link_from(cache, "s", "x")
    assert sorted(os.listdir(tmp_path / "run" / "s")) == ["x.meta.json", "x.pkl"]
    assert run.load("s", "x") == (2,)


def test_link_from_the_same_store_is_a_no_op(local_store):
    meta = local_store.save("s", "x", 1)
    assert local_store.link_from(open_store(local_store.root), "s", "x") == meta


def test_link_from_a_missing_artifact_fails(tmp_path):
    with pytest.raises(ArtifactNotFoundError):
        open_store(tmp_path / "a").link_from(open_store(tmp_path / "b"), "s", "x")


def test_link_between_local_and_memory_stores(local_store, memory_store):
    local_store.save("s", "arr", np.arange(10))
    memory_store.link_from(local_store, "s", "arr")
    np.testing.assert_array_equal(memory_store.load("s", "arr"), np.arange(10))
    memory_store.save("t", "obj", {"a": (1,)})
    local_store.link_from(memory_store, "t", "obj")
    assert local_store.load("t", "obj") == {"a": (1,)}


def test_link_within_one_fsspec_filesystem_copies_there(memory_store):
    other = open_store(memory_store.location + "-other")
    memory_store.save("s", "x", [1, 2])
    other.link_from(memory_store, "s", "x")
    assert other.load("s", "x") == [1, 2]
    assert other.path("s", "x") != memory_store.path("s", "x")
    other.fs.rm(other.root, recursive=True)


# -- opening stores --------------------------------------------------------------------


def test_open_store_accepts_paths_strings_and_file_urls(tmp_path):
    for location in (tmp_path / "a", str(tmp_path / "b"), f"file://{tmp_path}/c"):
        store = open_store(location)
        assert isinstance(store, LocalStore)
        assert os.path.isdir(store.root)
        store.save("s", "x", 1)
        assert store.load("s", "x") == 1


def test_memory_urls_give_fsspec_stores_with_url_paths(memory_store):
    assert isinstance(memory_store, FsspecStore)
    memory_store.save("s", "x", 1)
    assert memory_store.path("s", "x").startswith("memory://")
    assert fsspec.filesystem("memory").exists(f"{memory_store.root}/s/x.meta.json")


def test_s3_without_s3fs_says_what_to_install():
    """In a process where s3fs cannot be imported (the test extras install it)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['s3fs'] = None\n"
            "from cellpipe.marshal import open_store\n"
            "from cellpipe.errors import MissingDependencyError\n"
            "try:\n    open_store('s3://bucket/prefix')\n"
            "except MissingDependencyError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert "s3fs" in done.stdout and "pip install" in done.stdout, done.stdout + done.stderr


def test_unknown_protocols_are_a_cellpipe_error():
    with pytest.raises(CellpipeError):
        open_store("nosuchprotocol://x/y")


def test_frame_format_is_checked(tmp_path):
    with pytest.raises(ValueError, match="frame_format"):
        open_store(tmp_path, frame_format="csv")


def test_errors_survive_pickling_with_their_fields(local_store):
    local_store.save("s", "x", 1)
    Path(local_store.path("s", "x")).write_text("2")
    with pytest.raises(ArtifactCorruptedError) as info:
        local_store.load("s", "x")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is ArtifactCorruptedError
    assert (copy.step, copy.variable, copy.path, copy.type_name, str(copy)) == (
        "s",
        "x",
        info.value.path,
        "builtins.int",
        str(info.value),
    )
