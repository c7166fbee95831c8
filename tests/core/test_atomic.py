"""Atomic writes: the new content under the name, the mode a plain open() gives, no
temporary file left behind (also when the rename fails: injected, as a full disk cannot be
made here on demand)."""

from __future__ import annotations

import os
import stat

import pytest

from cellpipe.core.atomic import write_bytes_atomic, write_text_atomic


def test_bytes_replace_a_file_with_the_mode_a_plain_open_gives(tmp_path):
    target = tmp_path / "deeper" / "plot.png"
    write_bytes_atomic(target, b"\x89PNG old")
    write_bytes_atomic(target, b"\x89PNG\x00new")
    assert target.read_bytes() == b"\x89PNG\x00new"
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    write_text_atomic(tmp_path / "text.txt", "é")
    assert (tmp_path / "text.txt").read_bytes() == "é".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["plot.png"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "plot.png"
    write_bytes_atomic(target, b"old")

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]
