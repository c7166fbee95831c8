"""Digests of artifact files: computed while writing (on other cores), streamed when reading.

Hashing is the main cost a checked store adds over a bare ``np.save``. The algorithm is
BLAKE3 (the ``blake3`` package, multi-threaded: ~3 GB/s on two cores here, against
~1.5 GB/s for sha256 with SHA-NI), recorded in each sidecar with its name; sidecars of
older cellpipe versions name sha256, which still verifies. The writer hands every chunk it
writes to a hashing thread (the hash and file writes both release the GIL), so the two
proceed side by side instead of one after the other: one pass, from the buffers being
written, never by reading the file back.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
from types import TracebackType
from typing import Any

_blake3: Any
try:
    import blake3 as _blake3
except ImportError:  # pragma: no cover - blake3 is a dependency; sha256 where it is missing
    _blake3 = None

#: The algorithm new artifacts are hashed with.
ALGORITHM = "blake3" if _blake3 is not None else "sha256"
ALGORITHMS = ("blake3", "sha256")


def new_digest(algorithm: str = ALGORITHM) -> Any:
    """A fresh hash object (``update``, ``hexdigest``) for ``algorithm``."""
    if algorithm == "blake3":
        if _blake3 is None:
            raise ValueError("blake3 digests need the blake3 package: pip install blake3")
        return _blake3.blake3(max_threads=_blake3.blake3.AUTO)
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unknown digest algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")


def file_digest(path: str | os.PathLike[str], algorithm: str = ALGORITHM) -> tuple[str, int]:
    """The hex digest of a file and its size, read once (BLAKE3 maps it, on all cores)."""
    if algorithm == "blake3" and _blake3 is not None:
        size = os.stat(path).st_size
        digest = new_digest("blake3")
        if size:
            digest.update_mmap(os.fspath(path))
        return digest.hexdigest(), size
    if algorithm == "sha256":
        return file_sha256(path)
    new_digest(algorithm)  # raises the clear error
    raise AssertionError  # pragma: no cover

#: Size of the chunks a file is read and hashed in.
CHUNK = 1 << 20
#: Writes smaller than this are gathered into one chunk before being written and hashed.
_GATHER = 256 << 10
_STOP = object()
#: Files at least this large are read and hashed on two threads.
_PIPELINE_FROM = 8 * CHUNK
_BUFFERS = 4
#: Chunks handed to the hashing thread and not hashed yet, at most.
_QUEUED = 4


def file_sha256(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Stream a file through sha256 in 1 MiB chunks.

    Large files are read on this thread while a second one hashes the previous chunks
    (both release the GIL), so reading costs next to nothing on top of hashing.

    Args:
        path: The file.

    Returns:
        The hex digest and the number of bytes read.
    """
    with open(path, "rb", buffering=0) as handle:
        if os.fstat(handle.fileno()).st_size < _PIPELINE_FROM:
            digest = hashlib.sha256()
            view = memoryview(bytearray(CHUNK))
            total = 0
            while count := handle.readinto(view):
                digest.update(view[:count])
                total += count
            return digest.hexdigest(), total
        return _pipelined_sha256(handle)


def _pipelined_sha256(handle: io.RawIOBase) -> tuple[str, int]:
    digest = hashlib.sha256()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    for _ in range(_BUFFERS):
        free.put(bytearray(CHUNK))

    def hash_chunks() -> None:
        while (item := full.get()) is not None:
            buffer, count = item
            digest.update(memoryview(buffer)[:count])
            free.put(buffer)

    worker = threading.Thread(target=hash_chunks, name="cellpipe-sha256", daemon=True)
    worker.start()
    total = 0
    try:
        while True:
            buffer = free.get()
            count = handle.readinto(buffer) or 0
            if not count:
                break
            total += count
            full.put((buffer, count))
    finally:
        full.put(None)
        worker.join()
    return digest.hexdigest(), total


class _Hasher:
    """Feeds chunks to the digest in order, on a worker thread started on the first big chunk."""

    def __init__(self, algorithm: str = ALGORITHM) -> None:
        self._digest = new_digest(algorithm)
        # Bounded: when the file is written faster than it is hashed, the writer waits
        # rather than holding ever more written-but-unhashed chunks in memory.
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUED)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def feed(self, chunk: Any) -> None:
        """Hash ``chunk`` (a buffer that must stay unchanged until :meth:`finish`)."""
        if self._thread is None:
            if memoryview(chunk).nbytes < CHUNK:
                self._digest.update(chunk)
                return
            self._thread = threading.Thread(target=self._run, name="cellpipe-hash", daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not _STOP:
            if self._error is None:
                try:
                    self._digest.update(chunk)
                except BaseException as exc:  # pragma: no cover - hashlib does not fail
                    self._error = exc

    def finish(self) -> str:
        """Wait for the queued chunks and return the hex digest."""
        self.stop()
        if self._error is not None:  # pragma: no cover
            raise self._error
        return str(self._digest.hexdigest())

    def stop(self) -> None:
        """Stop the worker thread (after it has hashed what was queued)."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None


class HashingWriter:
    """A write-only binary file that hashes what it writes and counts its size.

    Serializers write to it as to any binary file. Large writes go straight to the file
    (no copy) while the hashing thread reads the same buffer; small ones are gathered into
    chunks first. A writer must be closed (or used as a context manager) before
    :attr:`digest` is read; the caller keeps the objects it passed to :meth:`write`
    unchanged until then, which every serializer used here does.
    """

    def __init__(self, path: str | os.PathLike[str], algorithm: str = ALGORITHM) -> None:
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        self.algorithm = algorithm
        self._hasher = _Hasher(algorithm)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._size = 0
        self._digest: str | None = None

    # -- the file protocol serializers need --------------------------------------------

    def write(self, data: Any) -> int:
        """Write a bytes-like object; returns the number of bytes written."""
        view = memoryview(data)
        count = view.nbytes
        if count < _GATHER:
            self._pending.append(data if type(data) is bytes else view.tobytes())
            self._pending_size += count
            if self._pending_size >= CHUNK:
                self._flush_pending()
        else:
            self._flush_pending()
            if not view.c_contiguous:
                view = memoryview(view.tobytes())
            self._emit(view if view.ndim == 1 and view.format == "B" else view.cast("B"))
        self._size += count
        return count

    def tell(self) -> int:
        """Return the number of bytes written so far."""
        return self._size

    def flush(self) -> None:
        """Nothing to do: data reaches the file at the latest in :meth:`close`."""

    def writable(self) -> bool:
        """Return True."""
        return True

    def readable(self) -> bool:
        """Return False."""
        return False

    def seekable(self) -> bool:
        """Return False: serializers must write sequentially."""
        return False

    @property
    def closed(self) -> bool:
        """Whether the file has been closed."""
        return self._file.closed

    # -- results -----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def digest(self) -> str:
        """Hex digest of everything written; available after :meth:`close`."""
        if self._digest is None:
            raise RuntimeError("HashingWriter.digest is known only after close()")
        return self._digest

    def close(self) -> None:
        """Write what is pending, finish the hash and close the file (the store fsyncs)."""
        if self._file.closed:
            return
        try:
            self._flush_pending()
            self._digest = self._hasher.finish()
        finally:
            self._hasher.stop()
            self._file.close()

    def abort(self) -> None:
        """Close without finishing (after a failed dump); the caller deletes the file."""
        self._pending.clear()
        self._hasher.stop()
        self._file.close()

    def __enter__(self) -> HashingWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    # -- internals ---------------------------------------------------------------------

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        self._emit(memoryview(chunk))

    def _emit(self, view: memoryview) -> None:
        # Queue the hash first so the worker reads the buffer while this thread writes it.
        self._hasher.feed(view)
        written = 0
        total = view.nbytes
        while written < total:
            count = self._file.write(view[written:])
            if count is None:  # pragma: no cover - only for non-blocking files
                continue
            written += count
