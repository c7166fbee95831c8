"""Wheels for the step images, fetched on the host so that ``docker build`` needs no network.

Builds must work air-gapped: a builder (or the registry mirror it talks to) may have no way
out to a package index, and a build that resolves packages inside the container is neither
reproducible nor cacheable. So every distribution a step image needs is resolved *here*, on
the host, by pip, and kept as a wheel file in a content-addressed :class:`WheelCache`; the
image's Dockerfile copies those files in and installs them with ``pip install --no-index``.

cellpipe itself is on no index: :mod:`cellpipe.engines.docker.runtime_wheel` packs it.

Cache layout (default root ``$CELLPIPE_WHEEL_CACHE`` or ``~/.cache/cellpipe/wheels``)::

    blobs/<sha256>/<original wheel file name>   # pip needs the file name, so it is kept
    index.json                                  # "<name>==<version>" -> {"sha256", "file"}
                                                # "loose:<sha256>"   -> [{"sha256", "file"}]
    .lock                                       # flock'ed around index updates

This module does not talk to Docker.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpipe.core.atomic import write_text_atomic
from cellpipe.errors import CellpipeError, MissingDependencyError

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from packaging.version import Version

__all__ = ["CachedWheel", "WheelCache"]

CACHE_ENV = "CELLPIPE_WHEEL_CACHE"
WHEELHOUSE_ENV = "CELLPIPE_WHEELHOUSE"

_CHUNK = 1 << 20
_STDERR_LINES = 5
_HINT = (
    "pin another version in the requirements override, or put a wheel for it in the "
    f"directory named by {WHEELHOUSE_ENV}"
)
# PEP 508 distribution names; anything else (say "-r x" or "--index-url=…") never reaches pip.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class CachedWheel:
    """One wheel file in the cache.

    Attributes:
        name: Canonical (PEP 503) distribution name.
        version: The version: the pinned string for a pin, the file name's for a loose wheel.
        path: The blob file, ``<root>/blobs/<sha256>/<wheel file name>``.
        sha256: Hex sha256 of the file's content.
    """

    name: str
    version: str
    path: Path
    sha256: str


def _run_pip(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pip ARGS`` with this interpreter; never raises on pip's failure."""
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _pip_importable() -> bool:
    """Whether ``python -m pip`` can work in this interpreter."""
    return bool(sys.executable) and importlib.util.find_spec("pip") is not None


def _require_pip() -> None:
    if not _pip_importable():
        raise CellpipeError(
            f"pip is not installed in this environment ({sys.executable or 'no interpreter'})",
            hint="python -m ensurepip, or install pip",
        )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _tail(result: subprocess.CompletedProcess[str] | None) -> str:
    """The last few lines pip printed (stderr, or stdout when stderr is empty)."""
    if result is None:
        return ""
    text = result.stderr or result.stdout or ""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-_STDERR_LINES:])


def _packaging() -> Any:
    """Import ``packaging`` (the docker extra) or say how to install it."""
    try:
        import packaging.requirements
        import packaging.utils
        import packaging.version
    except ImportError as exc:  # pragma: no cover - the docker extra brings it
        raise MissingDependencyError.for_extra(
            "packaging", "docker", "Downloading wheels for docker images"
        ) from exc
    return packaging


def _canonical(name: str) -> str:
    return str(_packaging().utils.canonicalize_name(name))


def _version(text: str) -> Version:
    version: Version = _packaging().version.Version(text)
    return version


def _wheel_identity(filename: str) -> tuple[str, Version] | None:
    """``(canonical name, version)`` from a wheel's file name, or None if it is not one."""
    pkg = _packaging()
    try:
        name, version, _build, _tags = pkg.utils.parse_wheel_filename(filename)
    except pkg.utils.InvalidWheelFilename:
        return None
    return str(name), version


@dataclass(frozen=True)
class _Pin:
    name: str  # canonical
    version: str  # as pinned
    parsed: Version

    @property
    def key(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def _check_pins(pins: Mapping[str, str]) -> list[_Pin]:
    """Validate and canonicalize pins, sorted by name."""
    pkg = _packaging()
    found: dict[str, _Pin] = {}
    for raw_name, raw_version in pins.items():
        if not _NAME.match(raw_name):
            raise CellpipeError(
                f"{raw_name!r} is not a valid distribution name",
                hint="fix the name in the requirements override",
            )
        version = raw_version.strip()
        try:
            parsed = _version(version)
        except pkg.version.InvalidVersion:
            raise CellpipeError(
                f"{raw_name}=={raw_version!r}: {raw_version!r} is not a valid version",
                hint="pin an exact version such as 1.2.3",
            ) from None
        pin = _Pin(_canonical(raw_name), version, parsed)
        other = found.get(pin.name)
        if other is not None and other.parsed != parsed:
            raise CellpipeError(
                f"{pin.name} is pinned twice, to {other.version} and {version}",
                hint="keep one pin per distribution",
            )
        found[pin.name] = pin
    return [found[name] for name in sorted(found)]


def _check_loose(loose: Sequence[str]) -> list[str]:
    """Validate loose requirement strings; return them stripped, sorted and deduplicated."""
    pkg = _packaging()
    checked: set[str] = set()
    for text in loose:
        requirement = text.strip()
        try:
            pkg.requirements.Requirement(requirement)
        except pkg.requirements.InvalidRequirement as exc:
            raise CellpipeError(
                f"{text!r} is not a requirement pip can download ({exc})",
                hint="write it as name, name==version or name>=version",
            ) from None
        checked.add(requirement)
    return sorted(checked)


def _find_links() -> list[str]:
    wheelhouse = os.environ.get(WHEELHOUSE_ENV)
    return ["--find-links", wheelhouse] if wheelhouse else []


def _pip_fetch(
    command: str, dest: Path, requirements: Sequence[str], *, deps: bool = False
) -> subprocess.CompletedProcess[str]:
    """``pip download`` (binary wheels only) or ``pip wheel`` of ``requirements`` into ``dest``."""
    args = [command]
    if not deps:
        args.append("--no-deps")
    if command == "download":
        args += ["--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", str(dest)]
    else:
        args += ["--disable-pip-version-check", "-q", "-w", str(dest)]
    return _run_pip([*args, *_find_links(), *requirements])


def _wheels_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(".whl"))


def _match(pins: Sequence[_Pin], directory: Path, into: dict[str, Path]) -> None:
    """Record in ``into`` (pin key -> file) the wheels in ``directory`` that fit a pin."""
    by_identity: dict[tuple[str, Version], Path] = {}
    for path in _wheels_in(directory):
        identity = _wheel_identity(path.name)
        if identity is not None:
            by_identity.setdefault(identity, path)
    for pin in pins:
        if pin.key not in into and (pin.name, pin.parsed) in by_identity:
            into[pin.key] = by_identity[(pin.name, pin.parsed)]


class WheelCache:
    """A content-addressed cache of wheel files on the host, shared by processes.

    Args:
        root: The cache directory; default ``$CELLPIPE_WHEEL_CACHE`` if set, else
            ``~/.cache/cellpipe/wheels``.
    """

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            env = os.environ.get(CACHE_ENV)
            root = Path(env) if env else Path.home() / ".cache" / "cellpipe" / "wheels"
        self.root = Path(root)

    @property
    def index_path(self) -> Path:
        """Where the index (key -> blob) is kept."""
        return self.root / "index.json"

    # -- the index ---------------------------------------------------------------------

    def _read_index(self) -> dict[str, Any]:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the cache's lock (an ``flock`` on ``root/.lock``) for an index update."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a+b") as handle:
            if sys.platform != "win32":
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if sys.platform != "win32":
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _update_index(self, entries: Mapping[str, Any]) -> None:
        if not entries:
            return
        with self._locked():
            index = self._read_index()
            index.update(entries)
            write_text_atomic(self.index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")

    def _blob(self, entry: Any) -> tuple[Path, str] | None:
        """The blob file and sha of an index entry, if the entry is sound and the file exists."""
        if not isinstance(entry, dict):
            return None
        sha, file = entry.get("sha256"), entry.get("file")
        if not isinstance(sha, str) or not isinstance(file, str):
            return None
        path = self.root / file
        return (path, sha) if path.is_file() else None

    def _store(self, source: Path) -> dict[str, str]:
        """Move a downloaded file into its blob (hashing it once); return its index entry."""
        sha = _sha256_file(source)
        relative = f"blobs/{sha}/{source.name}"
        target = self.root / relative
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)  # same file system: the temp dir is inside root
        return {"sha256": sha, "file": relative}

    # -- pip ---------------------------------------------------------------------------

    def _download_pins(self, pins: Sequence[_Pin], workdir: Path) -> dict[str, dict[str, str]]:
        """Download (or build) a wheel for each pin; store them; raise if one has none."""
        found: dict[str, Path] = {}
        last: dict[str, subprocess.CompletedProcess[str]] = {}
        batch = workdir / "batch"
        batch.mkdir()
        _pip_fetch("download", batch, [p.requirement for p in pins])
        _match(pins, batch, found)
        for number, pin in enumerate(pins):
            if pin.key in found:
                continue
            one = workdir / f"pin-{number}"
            one.mkdir()
            if len(pins) > 1:  # alone, it was the batch: no need to ask again
                _pip_fetch("download", one, [pin.requirement])
                _match([pin], one, found)
                if pin.key in found:
                    continue
            last[pin.key] = _pip_fetch("wheel", one, [pin.requirement])
            _match([pin], one, found)

        entries = {key: self._store(path) for key, path in found.items()}
        self._update_index(entries)  # keep what worked even if something else failed
        missing = [pin for pin in pins if pin.key not in found]
        if missing:
            names = ", ".join(pin.key for pin in missing)
            said = _tail(last.get(missing[0].key))
            raise CellpipeError(
                f"no wheel could be downloaded or built for {names}"
                + (f"; pip said:\n{said}" if said else ""),
                hint=_HINT,
            )
        return entries

    def _download_loose(self, requirements: Sequence[str], workdir: Path) -> list[dict[str, str]]:
        """Download loose requirements with their dependencies; store every wheel."""
        target = workdir / "loose"
        target.mkdir()
        result = _pip_fetch("download", target, requirements, deps=True)
        wheels = _wheels_in(target)
        if result.returncode != 0 or not wheels:
            said = _tail(result)
            raise CellpipeError(
                f"no wheels could be downloaded for {', '.join(requirements)}"
                + (f"; pip said:\n{said}" if said else ""),
                hint=_HINT,
            )
        return [self._store(path) for path in wheels]

    # -- the public entry point ----------------------------------------------------------

    def ensure(self, pins: Mapping[str, str], loose: Sequence[str] = ()) -> list[CachedWheel]:
        """Return a cached wheel for every pin and loose requirement, fetching what is missing.

        Pins already in the cache never run pip. Missing pins are downloaded in one
        ``pip download --no-deps --only-binary=:all:`` call; a pin that call does not yield
        is retried alone, then built with ``pip wheel --no-deps`` (from its sdist). Loose
        requirements (packages not installed here) are downloaded *with* their dependencies
        and cached together under one key. ``$CELLPIPE_WHEELHOUSE``, if set, is passed to
        pip as ``--find-links``.

        Args:
            pins: Distribution name -> exact version.
            loose: Requirement strings such as ``"xgboost>=1.7"``.

        Returns:
            The pins' wheels sorted by canonical name, then the loose wheels sorted by file
            name.

        Raises:
            CellpipeError: A name, version or requirement is malformed, pip is missing, or
                no wheel could be had for a pin or for the loose requirements.
        """
        checked = _check_pins(pins)
        requirements = _check_loose(loose)
        index = self._read_index()

        blobs: dict[str, tuple[Path, str]] = {}
        missing: list[_Pin] = []
        for pin in checked:
            blob = self._blob(index.get(pin.key))
            if blob is None:
                missing.append(pin)
            else:
                blobs[pin.key] = blob

        loose_key = ""
        loose_blobs: list[tuple[Path, str]] | None = []
        if requirements:
            loose_key = "loose:" + hashlib.sha256("\n".join(requirements).encode()).hexdigest()
            loose_blobs = self._loose_blobs(index.get(loose_key))

        if missing or loose_blobs is None:
            _require_pip()
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".download-", dir=self.root) as tmp:
                workdir = Path(tmp)
                if missing:
                    for key, entry in self._download_pins(missing, workdir).items():
                        blobs[key] = (self.root / entry["file"], entry["sha256"])
                if loose_blobs is None:
                    entries = self._download_loose(requirements, workdir)
                    self._update_index({loose_key: entries})
                    loose_blobs = [(self.root / e["file"], e["sha256"]) for e in entries]

        wheels = [
            CachedWheel(pin.name, pin.version, blobs[pin.key][0], blobs[pin.key][1])
            for pin in checked
        ]
        for path, sha in sorted(loose_blobs or [], key=lambda blob: blob[0].name):
            identity = _wheel_identity(path.name)
            name, version = (identity[0], str(identity[1])) if identity else (path.name, "")
            wheels.append(CachedWheel(name, version, path, sha))
        return wheels

    def _loose_blobs(self, entry: Any) -> list[tuple[Path, str]] | None:
        """The blobs of a loose entry, or None unless every one of them is there."""
        if not isinstance(entry, list) or not entry:
            return None
        blobs = [self._blob(item) for item in entry]
        if any(blob is None for blob in blobs):
            return None
        return [blob for blob in blobs if blob is not None]
