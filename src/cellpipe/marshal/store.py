"""Artifact stores: where step outputs are saved and read back, checked by their digest.

Layout: ``<root>/<step>/<name>.<ext>`` holds the data and ``<root>/<step>/<name>.meta.json``
the sidecar (type, format, size, digest and its algorithm, the file's identity). The sidecar
is written last, so a data file without one was never saved. :class:`ArtifactStore` holds
the logic every store shares (choosing formats, falling back, checking, wrapping errors); a
subclass only moves files:
:class:`~cellpipe.marshal.local.LocalStore` for directories,
:class:`~cellpipe.marshal.remote.FsspecStore` for fsspec URLs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

from cellpipe.errors import CellpipeError
from cellpipe.marshal.errors import ArtifactCorruptedError, ArtifactNotFoundError, MarshalError
from cellpipe.marshal.formats.base import Format, Unsuitable, Written
from cellpipe.marshal.hashing import file_digest
from cellpipe.marshal.meta import ArtifactMeta, qualified_name
from cellpipe.marshal.registry import FRAME_FORMATS, REGISTRY, Registry, missing_library
from cellpipe.marshal.unmarshallable import cannot_marshal, describe, write_failed

SIDECAR_SUFFIX = ".meta.json"
# Step and variable names become file names: word characters and dashes, nothing that
# could leave the directory or collide with a sidecar (no dots).
_NAME = re.compile(r"\w[\w-]*")
_MAX_FALLBACKS = 3
_log = logging.getLogger(__name__)


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise MarshalError(
            f"{what} name {value!r} cannot be used in an artifact path",
            hint="use letters, digits, '_' and '-' only",
        )


class ArtifactStore(ABC):
    """Saves values under ``(step, name)`` and loads them back, checked.

    Args:
        location: Where the store lives, as given to :func:`open_store`.
        frame_format: Format for pandas frames: ``arrow`` or ``parquet``.
        registry: The format registry (the process-wide one by default).
    """

    def __init__(
        self, location: str, *, frame_format: str, registry: Registry | None = None
    ) -> None:
        if frame_format not in FRAME_FORMATS:
            raise ValueError(f"frame_format must be one of {FRAME_FORMATS}, not {frame_format!r}")
        self.location = location
        self.frame_format = frame_format
        self.registry = registry or REGISTRY

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    # -- public API --------------------------------------------------------------------

    def save(
        self, step: str, name: str, value: object, *, consumers: Sequence[str] = ()
    ) -> ArtifactMeta:
        """Save ``value`` as the output ``name`` of ``step``, replacing any earlier one.

        Args:
            step: The producing step.
            name: The variable name.
            value: The value.
            consumers: The steps that will read it (named in errors).

        Returns:
            The sidecar written.

        Raises:
            MarshalError: The value cannot be saved (an open file, a lock, …, or pickle
                refuses it); the error names the variable, its type, the step and the
                consumers.
        """
        _check_name(step, "step")
        _check_name(name, "variable")
        known = describe(value)
        if known is not None:
            what, hint = known
            raise cannot_marshal(
                value, step=step, variable=name, consumers=consumers, what=what, hint=hint
            )
        started = time.perf_counter()
        chosen, note = self.registry.choose(value, frame_format=self.frame_format)
        for _ in range(_MAX_FALLBACKS + 1):
            try:
                meta = self._write(step, name, value, chosen, note)
            except Unsuitable as unsuitable:
                note = unsuitable.reason
                fallback = self._fallback(unsuitable.fallback)
                _log.debug("%s/%s: %s, not %s: %s", step, name, fallback.name, chosen.name, note)
                chosen = fallback
                continue
            except CellpipeError:
                raise
            except Exception as exc:
                raise write_failed(
                    value, chosen.name, exc, step=step, variable=name, consumers=consumers
                ) from exc
            elapsed = time.perf_counter() - started
            _log.debug(
                "saved %s/%s: %s, %d bytes, %.3f s", step, name, meta.format, meta.size, elapsed
            )
            return meta
        raise MarshalError(  # pragma: no cover - fallbacks end at cloudpickle
            f"no format could hold variable {name!r}", step=step, variable=name
        )

    def load(self, step: str, name: str, *, verify: bool = False) -> object:
        """Load the output ``name`` of ``step``, after checking its size and digest.

        A local store skips hashing a data file whose identity (size, mtime_ns, ctime_ns,
        inode, boot) is the one it recorded when it published the file (nothing has
        written to it since, and the machine has not restarted); ``verify`` hashes it
        anyway. Remote stores always hash.

        Raises:
            ArtifactNotFoundError: Nothing was saved under that name.
            ArtifactCorruptedError: The data does not match its sidecar.
            MarshalError: The data cannot be read back (e.g. a module is missing here).
        """
        started = time.perf_counter()
        meta = self.meta(step, name)
        found = self._format(meta)
        try:
            with self._local_data(meta) as local_path:
                self._verify(meta, local_path, full=verify)
                try:
                    value = found.load(local_path)
                except Exception as exc:
                    raise MarshalError(
                        f"variable {name!r} ({meta.type}, format {meta.format}) cannot be "
                        f"loaded: {type(exc).__name__}: {exc}",
                        step=step,
                        variable=name,
                        type_name=meta.type,
                        path=self._location(step, meta.file),
                        hint="install the packages the producing step used in this environment",
                    ) from exc
        except FileNotFoundError as exc:
            raise self._missing_data(meta) from exc
        elapsed = time.perf_counter() - started
        _log.debug("loaded %s/%s: %s, %.3f s", step, name, meta.format, elapsed)
        return value

    def verify(self, step: str, name: str, *, full: bool = True) -> ArtifactMeta:
        """Check the data of ``name`` of ``step`` (size and digest); return its sidecar.

        ``full=False`` checks as a load does: a local file whose identity is unchanged
        since it was published is trusted without hashing.

        Raises:
            ArtifactNotFoundError: Nothing (or no data file) is saved under that name.
            ArtifactCorruptedError: The data does not match its sidecar.
        """
        meta = self.meta(step, name)
        try:
            with self._local_data(meta) as local_path:
                self._verify(meta, local_path, full=full)
        except FileNotFoundError as exc:
            raise self._missing_data(meta) from exc
        return meta

    def exists(self, step: str, name: str) -> bool:
        """Whether ``name`` of ``step`` was saved (its sidecar and data file are there)."""
        try:
            meta = self.meta(step, name)
        except MarshalError:
            return False
        return self._data_exists(meta)

    def meta(self, step: str, name: str) -> ArtifactMeta:
        """Read the sidecar of ``name`` of ``step``.

        Raises:
            ArtifactNotFoundError: There is no sidecar.
            ArtifactCorruptedError: The sidecar is not valid.
        """
        _check_name(step, "step")
        _check_name(name, "variable")
        raw = self._read_sidecar(step, name)
        if raw is None:
            raise ArtifactNotFoundError(
                f"no artifact for variable {name!r}",
                step=step,
                variable=name,
                path=self._location(step, name + SIDECAR_SUFFIX),
                hint="run the step that produces it first",
            )
        try:
            meta = ArtifactMeta.from_json(raw)
            if meta.step != step or meta.name != name:
                raise ValueError(f"the sidecar is for {meta.step}/{meta.name}")
            if meta.file != Path(meta.file).name or meta.file in ("", ".", ".."):
                raise ValueError(f"the sidecar names an odd data file {meta.file!r}")
        except ValueError as exc:
            raise ArtifactCorruptedError(
                f"the sidecar of variable {name!r} is not valid: {exc}",
                step=step,
                variable=name,
                path=self._location(step, name + SIDECAR_SUFFIX),
                hint="run the step that produces it again",
            ) from exc
        return meta

    def path(self, step: str, name: str) -> str:
        """Where the data file of ``name`` of ``step`` lives (a path or a URL)."""
        meta = self.meta(step, name)
        return self._location(step, meta.file)

    def link_from(self, other: ArtifactStore, step: str, name: str) -> ArtifactMeta:
        """Reuse an artifact of another store (a cache hit) without serializing again.

        Local directories get a hard link (a copy where linking fails); other stores a
        copy. The sidecar is written after the data, as in :meth:`save`.

        Returns:
            The sidecar, as in the other store.
        """
        meta = other.meta(step, name)
        if not other._data_exists(meta):
            raise other._missing_data(meta)
        if self._same_place(other):
            return meta
        self._adopt(other, meta)
        return meta

    # -- shared steps ------------------------------------------------------------------

    def _fallback(self, name: str) -> Format:
        found = self.registry.format(name)
        if found is None:  # pragma: no cover - fallbacks are built-in formats
            raise LookupError(f"no format {name!r}")
        return found

    def _format(self, meta: ArtifactMeta) -> Format:
        try:
            found = self.registry.format(meta.format)
        except ModuleNotFoundError as exc:  # pragma: no cover - registry converts these
            raise missing_library(exc, f"the {meta.format!r} format") from exc
        if found is None:
            raise MarshalError(
                f"variable {meta.name!r} was saved in format {meta.format!r}, "
                "which no installed serializer reads",
                step=meta.step,
                variable=meta.name,
                type_name=meta.type,
                path=self._location(meta.step, meta.file),
                hint=f"install the package that provides the serializer plugin for {meta.format!r}",
            )
        return found

    def _missing_data(self, meta: ArtifactMeta) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(
            f"the data file of variable {meta.name!r} is missing",
            step=meta.step,
            variable=meta.name,
            type_name=meta.type,
            path=self._location(meta.step, meta.file),
            hint="run the step that produces it again",
        )

    def _trusted(self, meta: ArtifactMeta, local_path: str) -> bool:
        """Whether the data may be used unhashed (a local store's unchanged file)."""
        return False

    def _verify(self, meta: ArtifactMeta, local_path: str, *, full: bool = False) -> None:
        size = os.stat(local_path).st_size
        problem = None
        if size != meta.size:
            problem = f"it has {size} bytes, its sidecar says {meta.size}"
        elif full or not self._trusted(meta, local_path):
            try:
                digest, _ = file_digest(local_path, meta.algorithm)
            except ValueError as exc:  # an algorithm this installation cannot compute
                raise MarshalError(str(exc), step=meta.step, variable=meta.name,
                                   hint="pip install blake3") from exc
            if digest != meta.digest:
                problem = (f"its {meta.algorithm} is {digest[:12]}…, its sidecar says "
                           f"{meta.digest[:12]}…")
        if problem is not None:
            raise ArtifactCorruptedError(
                f"the data of variable {meta.name!r} is corrupted: {problem}",
                step=meta.step,
                variable=meta.name,
                type_name=meta.type,
                path=self._location(meta.step, meta.file),
                hint="run the step that produces it again",
            )

    def _meta_for(
        self,
        step: str,
        name: str,
        value: object,
        chosen: Format,
        written: Written,
        note: str | None,
    ) -> ArtifactMeta:
        return ArtifactMeta(
            step=step,
            name=name,
            type=qualified_name(type(value)),
            format=chosen.name,
            size=written.size,
            digest=written.digest,
            file=f"{name}.{chosen.extension}",
            note=note,
            algorithm=written.algorithm,
        )

    def _previous_file(self, step: str, name: str) -> str | None:
        """The data file the current sidecar names, to delete once it is replaced."""
        try:
            return self.meta(step, name).file
        except MarshalError:
            return None

    # -- what a store fills in -----------------------------------------------------------

    @abstractmethod
    def _write(
        self, step: str, name: str, value: object, chosen: Format, note: str | None
    ) -> ArtifactMeta:
        """Write the data (atomically), then the sidecar; remove a replaced data file."""

    @abstractmethod
    def _read_sidecar(self, step: str, name: str) -> bytes | None:
        """Return the sidecar's bytes, or None if there is none."""

    @abstractmethod
    def _data_exists(self, meta: ArtifactMeta) -> bool:
        """Whether the data file of ``meta`` is there."""

    @abstractmethod
    def _location(self, step: str, file: str) -> str:
        """Path or URL of ``file`` in the directory of ``step``."""

    @abstractmethod
    def _local_data(self, meta: ArtifactMeta) -> contextlib.AbstractContextManager[str]:
        """A local path holding the data file of ``meta`` while the context lasts."""

    @abstractmethod
    def _same_place(self, other: ArtifactStore) -> bool:
        """Whether ``other`` is this very store (nothing to link)."""

    @abstractmethod
    def _adopt(self, other: ArtifactStore, meta: ArtifactMeta) -> None:
        """Bring the data file of ``meta`` over from ``other``, then write the sidecar."""


@contextlib.contextmanager
def removing(path: str) -> Iterator[str]:
    """Yield ``path``; delete the file afterwards if it exists (and is not in use)."""
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Whether a store location is an fsspec URL other than ``file://`` (a cluster's store)."""
    protocol, separator, _ = os.fspath(location).partition("://")
    return bool(separator) and protocol != "file"


def open_store(
    location: str | os.PathLike[str],
    *,
    frame_format: str | None = None,
    durable: bool | None = None,
    registry: Registry | None = None,
) -> ArtifactStore:
    """Open the store at a local directory (created if needed) or an fsspec URL.

    Args:
        location: A directory path, a ``file://`` URL, or any fsspec URL
            (``memory://run``, ``s3://bucket/prefix``, …).
        frame_format: ``arrow`` or ``parquet``; by default Arrow IPC for local
            directories (fast, memory-mapped) and Parquet for remote stores (smaller).
        durable: Local stores only: fsync data and sidecars before renaming them, so a
            power loss cannot leave a renamed file without its data. Off by default
            (``CELLPIPE_DURABLE=1`` turns it on): a file's recorded identity includes the
            machine's boot, so after a power loss every artifact is hashed in full on load
            and one that lost its data counts as missing (its step runs again); the sync
            would cost a disk write of every artifact (a 512 MB array: 0.2 s → 1.0 s).
        registry: The format registry (the process-wide one by default).

    Returns:
        The store.

    Raises:
        MissingDependencyError: An fsspec URL is given but fsspec (or the filesystem's
            package, such as s3fs) is not installed.
    """
    text = os.fspath(location)
    if not is_remote(text):
        from cellpipe.marshal.local import LocalStore

        directory = text.removeprefix("file://")
        return LocalStore(
            directory, frame_format=frame_format or "arrow",
            durable=durable if durable is not None else os.environ.get(
                "CELLPIPE_DURABLE", "") not in ("", "0"),
            registry=registry
        )
    try:
        from cellpipe.marshal.remote import FsspecStore
    except ModuleNotFoundError as exc:
        raise missing_library(exc, f"the store at {text}") from exc
    return FsspecStore(text, frame_format=frame_format or "parquet", registry=registry)
