"""The sidecar of an artifact: what was saved, in which format, and its checksum."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from cellpipe import __version__

#: Version of the sidecar layout, bumped when a field changes meaning. Version 2 names the
#: digest's algorithm (``algorithm``, ``digest``) where version 1 had ``sha256``, and may
#: record the data file's identity; version 1 sidecars still load.
SIDECAR_VERSION = 2

_REQUIRED_TEXT = ("step", "name", "type", "format", "file")


def qualified_name(kind: type) -> str:
    """Return ``module.QualName`` of a type, the key the format registry uses."""
    return f"{kind.__module__}.{kind.__qualname__}"


@dataclass(frozen=True)
class ArtifactMeta:
    """What the sidecar ``<step>/<name>.meta.json`` says about one saved value.

    Attributes:
        step: The step that produced the value.
        name: The variable name.
        type: Qualified type name of the value, e.g. ``pandas.DataFrame``.
        format: Format name, e.g. ``json``, ``npy``, ``arrow``, ``parquet``,
            ``pandas-pickle``, ``joblib``, ``cloudpickle`` or a plugin's format.
        size: Size of the data file in bytes.
        digest: Hex digest of the data file.
        file: Data file name, relative to the step directory.
        note: Why a fallback format was chosen, if one was.
        created_by: ``cellpipe <version>`` that wrote the artifact.
        algorithm: The digest's algorithm: ``blake3``, or ``sha256`` (older sidecars).
        identity: The data file as a local store published it: ``[size, mtime_ns,
            ctime_ns, inode, boot id]``. While the file still has it, nothing has written
            to it since (a write changes mtime and ctime, a replacement the inode) and the
            machine has not restarted (after a crash or power loss unsynced data may be
            gone), so a local load may trust it without hashing; None where it was not
            recorded.
    """

    step: str
    name: str
    type: str
    format: str
    size: int
    digest: str
    file: str
    note: str | None = None
    created_by: str = field(default=f"cellpipe {__version__}")
    algorithm: str = "sha256"
    identity: tuple[int, int, int, int, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the sidecar as a JSON-ready dict (stable key order)."""
        data = {"sidecar_version": SIDECAR_VERSION, **asdict(self)}
        data["identity"] = list(self.identity) if self.identity is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactMeta:
        """Build from a sidecar dict.

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        if not isinstance(data, dict):
            raise ValueError("the sidecar is not a JSON object")
        for key in _REQUIRED_TEXT:
            if not isinstance(data.get(key), str):
                raise ValueError(f"sidecar field {key!r} is missing or not a string")
        size = data.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError("sidecar field 'size' is missing or not a byte count")
        if "digest" in data:
            digest, algorithm = data.get("digest"), data.get("algorithm")
        else:  # version 1: sha256
            digest, algorithm = data.get("sha256"), "sha256"
        if not isinstance(digest, str) or not isinstance(algorithm, str):
            raise ValueError("sidecar fields 'digest' and 'algorithm' are missing")
        identity = data.get("identity")
        if identity is not None and not (
                isinstance(identity, list) and len(identity) == 5
                and all(isinstance(i, int) and not isinstance(i, bool) for i in identity[:4])
                and isinstance(identity[4], str)):
            raise ValueError("sidecar field 'identity' is not four integers and a boot id")
        note = data.get("note")
        if note is not None and not isinstance(note, str):
            raise ValueError("sidecar field 'note' is not a string")
        created_by = data.get("created_by")
        return cls(
            step=data["step"],
            name=data["name"],
            type=data["type"],
            format=data["format"],
            size=size,
            digest=digest,
            file=data["file"],
            note=note,
            created_by=created_by if isinstance(created_by, str) else "unknown",
            algorithm=algorithm,
            identity=tuple(identity) if identity is not None else None,
        )

    def to_json(self) -> str:
        """Return the sidecar text (indented JSON, ends with a newline)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ArtifactMeta:
        """Parse sidecar text.

        Raises:
            ValueError: The text is not JSON or not a valid sidecar.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"the sidecar is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
