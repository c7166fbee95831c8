"""Walks over a pipeline's DAG: the one place that computes ancestors and descendants.

Graphs are given as ``{node: its upstream nodes}`` (what a spec step's ``upstream``
lists) or as a set of ``(source, target)`` edges.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

__all__ = ["ancestor_map", "ancestors", "downstream_of", "reachable"]


def reachable(edges: Mapping[str, Iterable[str]], starts: Iterable[str]) -> set[str]:
    """``starts`` and every node reachable from them along ``edges``."""
    seen = set(starts)
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def ancestors(upstream: Mapping[str, Iterable[str]], names: Iterable[str]) -> set[str]:
    """Every node that ``names`` depend on, directly or not (``names`` themselves excluded)."""
    names = set(names)
    parents = {parent for name in names for parent in upstream.get(name, ())}
    return reachable(upstream, parents) - names


def downstream_of(upstream: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """The same graph the other way: ``{node: the nodes that depend on it directly}``."""
    downstream: dict[str, set[str]] = {node: set() for node in upstream}
    for node, parents in upstream.items():
        for parent in parents:
            downstream.setdefault(parent, set()).add(node)
    return downstream


def ancestor_map(edges: set[tuple[str, str]]) -> dict[str, set[str]]:
    """``{node: all its ancestors}`` for every node with a parent.

    In dependency order, each node's set is its parents' sets joined (no recursion, so a
    chain of thousands of steps is fine). A node on a cycle counts among its own ancestors.
    """
    parents: dict[str, set[str]] = {}
    for source, target in edges:
        parents.setdefault(target, set()).add(source)
    try:
        order = list(graphlib.TopologicalSorter(parents).static_order())
    except graphlib.CycleError:
        return {node: reachable(parents, found) for node, found in parents.items()}
    result: dict[str, set[str]] = {}
    for node in order:
        found: set[str] = set()
        for parent in parents.get(node, ()):
            found.add(parent)
            found |= result[parent]
        result[node] = found
    return {node: result[node] for node in parents}
