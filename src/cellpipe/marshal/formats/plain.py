"""JSON for plain data that comes back exactly as it went in.

JSON is readable by anything, so plain values (numbers, strings, lists and dicts of them)
are stored as JSON, but only when loading gives back the very same value: the same types
(``1`` stays an int, ``1.0`` a float, a tuple would come back a list and is refused), the
same float bits, and no container shared or nested in itself (JSON would copy it). The
check is structural, on exact types, without serializing twice.
"""

from __future__ import annotations

import json
import math
import struct
import sys

from cellpipe.marshal.formats.base import Format
from cellpipe.marshal.hashing import HashingWriter

#: Deeper nesting goes to pickle (the json module recurses once per level).
MAX_DEPTH = 200

_ATOMS = frozenset({type(None), bool, str})
# json.loads("NaN") gives this one NaN; other NaNs (sign, payload) would not come back.
_NAN_BITS = struct.pack("<d", json.loads("NaN"))


def _int_fits(value: int) -> bool:
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    # 3 bits per decimal digit undercounts (log2 10 = 3.32), so this errs on the safe side.
    return limit == 0 or value.bit_length() <= (limit - 1) * 3


def _float_exact(value: float) -> bool:
    return not math.isnan(value) or struct.pack("<d", value) == _NAN_BITS


def is_exact_json(value: object) -> bool:
    """Whether ``json.loads(json.dumps(value))`` gives back exactly ``value``.

    Args:
        value: Any object.

    Returns:
        True for None, bool, int, float and str (exact types, not subclasses) and lists
        and str-keyed dicts of them, recursively, without shared or cyclic containers.
    """
    seen: set[int] = set()
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind in _ATOMS:
            continue
        if kind is int and isinstance(item, int):
            if not _int_fits(item):
                return False
        elif kind is float and isinstance(item, float):
            if not _float_exact(item):
                return False
        elif kind is dict and isinstance(item, dict):
            if depth >= MAX_DEPTH or id(item) in seen:
                return False
            seen.add(id(item))
            for key, inner in item.items():
                if type(key) is not str:
                    return False
                stack.append((inner, depth + 1))
        elif kind is list and isinstance(item, list):
            if depth >= MAX_DEPTH or id(item) in seen:
                return False
            seen.add(id(item))
            stack.extend((inner, depth + 1) for inner in item)
        else:
            return False
    return True


class JsonFormat(Format):
    """Plain data as JSON (ASCII, so lone surrogates in strings survive too).

    NaN and infinities are written as ``NaN`` / ``Infinity``, the extension Python's
    json module reads back; other JSON readers may not accept them.
    """

    name = "json"
    extension = "json"

    def dump(self, value: object, sink: HashingWriter) -> None:
        """Write ``value`` as JSON."""
        text = json.dumps(value, ensure_ascii=True, allow_nan=True, separators=(",", ":"))
        sink.write(text.encode("ascii"))

    def load(self, path: str) -> object:
        """Read the JSON value back."""
        with open(path, encoding="ascii") as handle:
            return json.load(handle)
