"""The DAG walks every layer shares (core.dag): selection, the scheduler, the linker."""

from __future__ import annotations

from cellpipe.core.dag import ancestor_map, ancestors, downstream_of, reachable

UPSTREAM = {"load": [], "clean": ["load"], "left": ["clean"], "right": ["clean"],
            "join": ["left", "right"], "other": []}


def test_ancestors_exclude_the_names_and_follow_every_path():
    assert ancestors(UPSTREAM, {"join"}) == {"left", "right", "clean", "load"}
    assert ancestors(UPSTREAM, {"join", "left"}) == {"right", "clean", "load"}
    assert ancestors(UPSTREAM, {"load", "other"}) == set()


def test_reachable_downstream_is_what_from_selects():
    downstream = downstream_of(UPSTREAM)
    assert downstream["clean"] == {"left", "right"}
    assert reachable(downstream, ["left"]) == {"left", "join"}
    assert reachable(UPSTREAM, ["left"]) == {"left", "clean", "load"}


def test_ancestor_map_of_a_long_chain_and_of_a_cycle():
    """No recursion: a chain of 2000 `after:` tags needs no raised recursion limit."""
    chain = {(f"s{i}", f"s{i + 1}") for i in range(2000)}
    found = ancestor_map(chain)
    assert len(found["s2000"]) == 2000 and found["s1"] == {"s0"}
    cycle = ancestor_map({("a", "b"), ("b", "c"), ("c", "a"), ("a", "d")})
    assert cycle["d"] == {"a", "b", "c"}
    assert cycle["b"] == {"a", "b", "c"}  # on the cycle: among its own ancestors
