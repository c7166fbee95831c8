"""A store at any fsspec URL (``s3://``, ``gs://``, ``memory://`` …), for clusters.

Data is written to a local temporary file first (formats stream into real files, and
the file is hashed on the way), then uploaded; the sidecar is uploaded after the data,
so readers never see a sidecar without its data. Loading downloads to a local temporary
file, checks it, and reads it (memory-mapped formats keep the unlinked file mapped).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import fsspec  # type: ignore[import-untyped,unused-ignore]

from cellpipe.errors import MissingDependencyError
from cellpipe.marshal.formats.base import Format
from cellpipe.marshal.meta import ArtifactMeta
from cellpipe.marshal.registry import Registry
from cellpipe.marshal.store import SIDECAR_SUFFIX, ArtifactStore, removing


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        filesystem, root = fsspec.core.url_to_fs(url)
        return filesystem, str(root)
    except ImportError as exc:
        # fsspec names the package the protocol needs ("Install s3fs to access S3").
        raise MissingDependencyError(
            f"the store at {url} needs a filesystem package that is not installed: {exc}",
            hint="pip install the package named above (s3fs for s3://, gcsfs for gs://, …)",
        ) from exc
    except ValueError as exc:
        raise MissingDependencyError(
            f"fsspec does not know the protocol of {url}: {exc}",
            hint="check the URL, or install the fsspec implementation for it",
        ) from exc


class FsspecStore(ArtifactStore):
    """Artifacts under an fsspec URL.

    Args:
        url: The store's root URL.
        frame_format: ``parquet`` (default: smaller to move) or ``arrow``.
        registry: The format registry.
    """

    def __init__(
        self, url: str, *, frame_format: str = "parquet", registry: Registry | None = None
    ) -> None:
        super().__init__(url, frame_format=frame_format, registry=registry)
        self.fs, root = _filesystem(url)
        self.root = root.rstrip("/")

    def _path(self, step: str, file: str) -> str:
        return f"{self.root}/{step}/{file}"

    def _location(self, step: str, file: str) -> str:
        return str(self.fs.unstrip_protocol(self._path(step, file)))

    def _upload(self, meta: ArtifactMeta, local_path: str, previous: str | None) -> None:
        """Upload the data, then the sidecar; drop a replaced data file."""
        sidecar = self._path(meta.step, meta.name + SIDECAR_SUFFIX)
        self.fs.makedirs(f"{self.root}/{meta.step}", exist_ok=True)
        if previous is not None:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(sidecar)
        self.fs.put_file(local_path, self._path(meta.step, meta.file))
        self.fs.pipe_file(sidecar, meta.to_json().encode("utf-8"))
        if previous is not None and previous != meta.file:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self._path(meta.step, previous))

    def _write(
        self, step: str, name: str, value: object, chosen: Format, note: str | None
    ) -> ArtifactMeta:
        previous = self._previous_file(step, name)
        with tempfile.TemporaryDirectory(prefix="cellpipe-") as scratch:
            local_path = os.path.join(scratch, f"{name}.{chosen.extension}")
            written = chosen.write(value, local_path)
            meta = self._meta_for(step, name, value, chosen, written, note)
            self._upload(meta, local_path, previous)
        return meta

    def _read_sidecar(self, step: str, name: str) -> bytes | None:
        try:
            data = self.fs.cat_file(self._path(step, name + SIDECAR_SUFFIX))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return bytes(data)

    def _data_exists(self, meta: ArtifactMeta) -> bool:
        return bool(self.fs.isfile(self._path(meta.step, meta.file)))

    @contextlib.contextmanager
    def _local_data(self, meta: ArtifactMeta) -> Iterator[str]:
        descriptor, local_path = tempfile.mkstemp(prefix="cellpipe-", suffix=f"-{meta.file}")
        os.close(descriptor)
        with removing(local_path):
            self.fs.get_file(self._path(meta.step, meta.file), local_path)
            yield local_path

    def _same_place(self, other: ArtifactStore) -> bool:
        return isinstance(other, FsspecStore) and other.fs is self.fs and other.root == self.root

    def _adopt(self, other: ArtifactStore, meta: ArtifactMeta) -> None:
        previous = self._previous_file(meta.step, meta.name)
        if isinstance(other, FsspecStore) and other.fs is self.fs:
            # Same filesystem: let it copy (server-side on object stores).
            sidecar = self._path(meta.step, meta.name + SIDECAR_SUFFIX)
            self.fs.makedirs(f"{self.root}/{meta.step}", exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(sidecar)
            self.fs.copy(other._path(meta.step, meta.file), self._path(meta.step, meta.file))
            self.fs.pipe_file(sidecar, meta.to_json().encode("utf-8"))
            if previous is not None and previous != meta.file:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(self._path(meta.step, previous))
            return
        with other._local_data(meta) as local_path:
            self._upload(meta, local_path, previous)


def put_document(url: str, key: str, local: str | os.PathLike[str]) -> None:
    """Upload the file ``local`` to ``key`` under the store at ``url`` (a step's report, …)."""
    filesystem, root = _filesystem(url)
    target = f"{root.rstrip('/')}/{key}"
    filesystem.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    filesystem.put_file(os.fspath(local), target)


def get_document(url: str, key: str) -> bytes | None:
    """The bytes at ``key`` under the store at ``url``; None when there is nothing there."""
    filesystem, root = _filesystem(url)
    try:
        data: bytes = filesystem.cat_file(f"{root.rstrip('/')}/{key}")
    except FileNotFoundError:
        return None
    return data
