"""Plain data goes to JSON only when it comes back exactly; everything else to pickle."""

from __future__ import annotations

import math
import struct
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellpipe.marshal import open_store
from cellpipe.marshal.formats.plain import MAX_DEPTH, is_exact_json
from tests.marshal.conftest import roundtrip


def same(left: object, right: object) -> bool:
    """Equal with identical types all the way down, floats compared bit for bit."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return struct.pack("<d", left) == struct.pack("<d", right)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    return left == right


json_atoms = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 1e308, 5e-324])
    | st.text()
)
json_values = st.recursive(
    json_atoms,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_plain_data_round_trips_exactly_as_json(tmp_path_factory, value):
    store = open_store(tmp_path_factory.mktemp("json"))
    back, fmt = roundtrip(store, value)
    assert fmt == "json"
    assert same(back, value)


@pytest.mark.parametrize(
    "value",
    [1, 1.0, -0.0, True, 0, 2**100, -(2**64), "ü€😀", "\ud800", "", None, [], {}, 1e-310],
    ids=repr,
)
def test_atoms_keep_their_type(local_store, value):
    back, fmt = roundtrip(local_store, value)
    assert fmt == "json"
    assert same(back, value)


def test_int_stays_int_and_float_stays_float(local_store):
    back, _ = roundtrip(local_store, {"i": 1, "f": 1.0, "b": False, "n": [0, 0.0]})
    assert type(back["i"]) is int and type(back["f"]) is float
    assert type(back["b"]) is bool and [type(v) for v in back["n"]] == [int, float]


def test_key_order_is_kept(local_store):
    value = {"z": 1, "a": 2, "m": 3}
    back, _ = roundtrip(local_store, value)
    assert list(back) == ["z", "a", "m"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ((1, 2), "tuple would come back a list"),
        ({1: "a"}, "int keys would come back str"),
        ({"a": (1,)}, "nested tuple"),
        ({1, 2}, "set"),
        (frozenset({1}), "frozenset"),
        (b"bytes", "bytes"),
        (1 + 2j, "complex"),
        (float("-nan"), "NaN with the sign bit set"),
        (struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\x7f")[0], "NaN payload"),
        ([1, (2, 3)], "tuple inside a list"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_values_json_would_change_go_to_cloudpickle(local_store, value, why):
    assert not is_exact_json(value), why
    back, fmt = roundtrip(local_store, value)
    assert fmt == "cloudpickle"
    assert type(back) is type(value)
    if isinstance(value, float):
        assert struct.pack("<d", back) == struct.pack("<d", value)
    else:
        assert back == value


def test_subclasses_of_plain_types_go_to_cloudpickle(local_store):
    class Score(float):
        pass

    class Tag(str):
        pass

    class Bag(dict):
        pass

    for value in (Score(1.5), Tag("x"), Bag(a=1), [Tag("y")]):
        assert not is_exact_json(value)
        back, fmt = roundtrip(local_store, value)
        assert fmt == "cloudpickle"
        assert back == value


def test_shared_and_cyclic_containers_go_to_cloudpickle(local_store):
    inner = [1, 2]
    shared = [inner, inner]
    back, fmt = roundtrip(local_store, shared, "shared")
    assert fmt == "cloudpickle"
    assert back[0] is back[1]  # aliasing survives, JSON would copy

    cyclic: list[object] = [1]
    cyclic.append(cyclic)
    back, fmt = roundtrip(local_store, cyclic, "cyclic")
    assert fmt == "cloudpickle"
    assert back[1] is back


def test_deep_nesting_goes_to_pickle_not_a_recursion_error(local_store):
    deep: list[object] = []
    node = deep
    for _ in range(MAX_DEPTH + 5):
        child: list[object] = []
        node.append(child)
        node = child
    assert not is_exact_json(deep)
    back, fmt = roundtrip(local_store, deep)
    assert fmt == "cloudpickle"
    assert back == deep


def test_ints_too_long_for_str_conversion_go_to_pickle(local_store):
    limit = sys.get_int_max_str_digits()
    if limit == 0:
        pytest.skip("int/str conversion is unlimited here")
    huge = 10 ** (limit + 10)
    assert not is_exact_json(huge)
    back, fmt = roundtrip(local_store, huge)
    assert (fmt, back) == ("cloudpickle", huge)


def test_nan_and_infinities_come_back(local_store):
    back, fmt = roundtrip(local_store, [math.nan, math.inf, -math.inf, -0.0])
    assert fmt == "json"
    assert math.isnan(back[0]) and back[1:] == [math.inf, -math.inf, -0.0]
    assert math.copysign(1.0, back[3]) == -1.0
