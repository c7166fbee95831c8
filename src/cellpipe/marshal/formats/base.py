"""What a format is: a way to write a value to a file and read it back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from cellpipe.marshal.hashing import ALGORITHM, HashingWriter


@dataclass(frozen=True)
class Written:
    """What writing a data file produced.

    Attributes:
        digest: Hex digest of the file.
        size: Size of the file in bytes.
        algorithm: The digest's algorithm (``blake3``, or ``sha256``).
    """

    digest: str
    size: int
    algorithm: str = ALGORITHM


class Unsuitable(Exception):
    """Raised by :meth:`Format.dump` (before it writes) when the value needs another format.

    Attributes:
        reason: Why, in a few words; recorded as the sidecar's ``note``.
        fallback: Name of the format to use instead.
    """

    def __init__(self, reason: str, fallback: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fallback = fallback


class Format(ABC):
    """A named way to write values to a file and read them back.

    Subclasses set :attr:`name` (recorded in the sidecar) and :attr:`extension`, and fill
    :meth:`dump` and :meth:`load`. :meth:`write` wraps ``dump`` with hashing.
    """

    name: str = ""
    extension: str = ""

    def write(self, value: object, path: str) -> Written:
        """Write ``value`` to ``path``, hashing it on the way.

        Args:
            value: The value.
            path: A new local file to create.

        Returns:
            The file's digest and size.

        Raises:
            Unsuitable: The value needs another format.
        """
        with HashingWriter(path) as sink:
            self.dump(value, sink)
        return Written(sink.digest, sink.size, sink.algorithm)

    @abstractmethod
    def dump(self, value: object, sink: HashingWriter) -> None:
        """Serialize ``value`` into ``sink``; raise :class:`Unsuitable` before writing."""

    @abstractmethod
    def load(self, path: str) -> object:
        """Read a value back from a verified local file."""
