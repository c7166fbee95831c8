"""A wheel of cellpipe itself, for the step images (cellpipe is on no package index).

:func:`build_runtime_wheel` packs the installed package into a byte-for-byte reproducible
wheel whose version names the code it holds, so the dependency layers change exactly when
cellpipe's code does.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import io
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_runtime_wheel"]

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_MODE = 0o644 << 16


def _package_files(package_dir: Path) -> list[tuple[str, bytes]]:
    """``(relative posix path, content)`` of every file of the package, sorted by path."""
    files: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in filenames:
            if filename.endswith(".pyc"):
                continue
            path = Path(dirpath) / filename
            files.append((path.relative_to(package_dir).as_posix(), path.read_bytes()))
    return sorted(files)


def _code_digest(files: Sequence[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for relative, content in files:
        name = relative.encode("utf-8")
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def _record_hash(content: bytes) -> str:
    raw = hashlib.sha256(content).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _zip_entry(archive: zipfile.ZipFile, name: str, content: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.external_attr = _ZIP_MODE
    info.create_system = 3  # "Unix" everywhere, so the bytes do not depend on the host
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, content)


def build_runtime_wheel(dest_dir: Path) -> Path:
    """Build a wheel of the installed ``cellpipe`` package into ``dest_dir``.

    The wheel holds every file of the ``cellpipe`` and ``cellpipe_kernel`` package
    directories (no ``__pycache__``, no ``.pyc``)
    and a minimal ``.dist-info``. Its version is ``cellpipe.__version__`` with the local
    label ``+g<10 hex>`` of a sha256 over the package's files, so a code change gives a new
    file name; the archive is byte-for-byte reproducible (sorted entries, fixed dates and
    modes). A wheel already in ``dest_dir`` under that name is returned untouched.

    Args:
        dest_dir: Where to put the wheel (created if missing).

    Returns:
        The path of ``cellpipe-<version>-py3-none-any.whl``.
    """
    import cellpipe

    # Both top-level packages of cellpipe's wheel: a notebook's `%load_ext cellpipe`, replayed
    # as session setup in a step, imports the magics' package.
    files = [(f"cellpipe/{relative}", content) for relative, content
             in _package_files(Path(cellpipe.__file__).resolve().parent)]
    kernel = importlib.util.find_spec("cellpipe_kernel")
    if kernel is not None and kernel.origin:
        files += [(f"cellpipe_kernel/{relative}", content) for relative, content
                  in _package_files(Path(kernel.origin).resolve().parent)]
    label = "g" + _code_digest(files)[:10]
    base = cellpipe.__version__
    version = f"{base}.{label}" if "+" in base else f"{base}+{label}"
    dest_dir = Path(dest_dir)
    target = dest_dir / f"cellpipe-{version}-py3-none-any.whl"
    if target.is_file():
        return target

    dist_info = f"cellpipe-{version}.dist-info"
    members = list(files)
    members.append(
        (
            f"{dist_info}/METADATA",
            f"Metadata-Version: 2.1\nName: cellpipe\nVersion: {version}\n".encode(),
        )
    )
    members.append(
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: cellpipe\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    )
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, content in members:
        writer.writerow([name, _record_hash(content), str(len(content))])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    members.append((f"{dist_info}/RECORD", record.getvalue().encode("utf-8")))

    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for name, content in members:
                    _zip_entry(archive, name, content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
