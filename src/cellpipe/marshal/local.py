"""A store in a local directory (also a PVC inside a pod): plain files, atomic renames."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterator

from cellpipe.marshal.formats.base import Format
from cellpipe.marshal.meta import ArtifactMeta
from cellpipe.marshal.registry import Registry
from cellpipe.marshal.store import SIDECAR_SUFFIX, ArtifactStore


def _boot_id() -> str:
    """This boot of the machine (Linux); "" where the system does not say.

    An identity recorded before a crash or power loss is then never trusted after it.
    """
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


BOOT_ID = _boot_id()


def file_identity(path: str) -> tuple[int, int, int, int, str]:
    """What changes when a file is written to or replaced.

    Size, mtime_ns, ctime_ns, inode, and the boot of the machine it was seen in.
    """
    found = os.stat(path)
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, BOOT_ID)


def _fsync_path(path: str, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:  # pragma: no cover - directories cannot be opened on Windows
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(descriptor)


class LocalStore(ArtifactStore):
    """Artifacts in a local directory, which is created if needed.

    Every file is written under a temporary name in its final directory, fsynced (when
    ``durable``) and renamed over the target with ``os.replace``: a reader sees the old
    file or the new one, never part of one.

    Args:
        root: The directory.
        frame_format: ``arrow`` (default) or ``parquet``.
        durable: fsync files and the directory around renames.
        registry: The format registry.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        frame_format: str = "arrow",
        durable: bool = True,
        registry: Registry | None = None,
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        super().__init__(self.root, frame_format=frame_format, registry=registry)
        self.durable = durable
        os.makedirs(self.root, exist_ok=True)

    # -- files -------------------------------------------------------------------------

    def _location(self, step: str, file: str) -> str:
        return os.path.join(self.root, step, file)

    def _temporary(self, step: str, file: str) -> str:
        return os.path.join(self.root, step, f".{file}.{uuid.uuid4().hex[:12]}.tmp")

    def _publish(self, temporary: str, target: str) -> None:
        if self.durable:
            _fsync_path(temporary)
        os.replace(temporary, target)

    def _commit(self, meta: ArtifactMeta, temporary: str, previous: str | None) -> ArtifactMeta:
        """Rename the data into place, write the sidecar, drop a replaced data file.

        The sidecar records the published file's identity (size, mtime_ns, ctime_ns,
        inode, boot): a later load trusts the data while it is unchanged.
        """
        directory = os.path.join(self.root, meta.step)
        sidecar = self._location(meta.step, meta.name + SIDECAR_SUFFIX)
        # Without its sidecar the old artifact counts as not saved: a crash from here on
        # leaves "missing", never an old sidecar next to new data.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sidecar)
        target = self._location(meta.step, meta.file)
        self._publish(temporary, target)
        meta = dataclasses.replace(meta, identity=file_identity(target))
        sidecar_temporary = self._temporary(meta.step, meta.name + SIDECAR_SUFFIX)
        try:
            with open(sidecar_temporary, "w", encoding="utf-8") as handle:
                handle.write(meta.to_json())
            self._publish(sidecar_temporary, sidecar)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sidecar_temporary)
            raise
        if previous is not None and previous != meta.file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._location(meta.step, previous))
        if self.durable:
            _fsync_path(directory, directory=True)
        return meta

    # -- ArtifactStore hooks -------------------------------------------------------------

    def _write(
        self, step: str, name: str, value: object, chosen: Format, note: str | None
    ) -> ArtifactMeta:
        os.makedirs(os.path.join(self.root, step), exist_ok=True)
        previous = self._previous_file(step, name)
        temporary = self._temporary(step, f"{name}.{chosen.extension}")
        try:
            written = chosen.write(value, temporary)
            meta = self._commit(self._meta_for(step, name, value, chosen, written, note),
                                temporary, previous)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return meta

    def _read_sidecar(self, step: str, name: str) -> bytes | None:
        try:
            with open(self._location(step, name + SIDECAR_SUFFIX), "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _data_exists(self, meta: ArtifactMeta) -> bool:
        return os.path.isfile(self._location(meta.step, meta.file))

    @contextlib.contextmanager
    def _local_data(self, meta: ArtifactMeta) -> Iterator[str]:
        yield self._location(meta.step, meta.file)

    def _trusted(self, meta: ArtifactMeta, local_path: str) -> bool:
        return meta.identity is not None and file_identity(local_path) == meta.identity

    def _same_place(self, other: ArtifactStore) -> bool:
        return isinstance(other, LocalStore) and os.path.samefile(self.root, other.root)

    def _adopt(self, other: ArtifactStore, meta: ArtifactMeta) -> None:
        os.makedirs(os.path.join(self.root, meta.step), exist_ok=True)
        previous = self._previous_file(meta.step, meta.name)
        temporary = self._temporary(meta.step, meta.file)
        try:
            with other._local_data(meta) as source:
                linked = False
                if isinstance(other, LocalStore):
                    try:
                        os.link(source, temporary)
                        linked = True
                    except OSError:  # another device, or no hard links here: copy
                        pass
                if not linked:
                    shutil.copyfile(source, temporary)
            # brought over from elsewhere: checked in full before it is published
            self._verify(meta, temporary, full=True)
            self._commit(meta, temporary, previous)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
