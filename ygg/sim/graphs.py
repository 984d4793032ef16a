"""Seeded graph generators for the simulator, and shortest paths (no dependencies).

A graph is a number of nodes and a list of undirected edges ``(a, b)`` with ``a < b``.
Anything with ``nodes()`` and ``edges()`` (a networkx graph) can be turned into one.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

Edges = list[tuple[int, int]]


def _norm(edges: set[tuple[int, int]]) -> Edges:
    return sorted({(min(a, b), max(a, b)) for a, b in edges if a != b})


def line(n: int) -> Edges:
    return [(i, i + 1) for i in range(n - 1)]


def ring(n: int) -> Edges:
    return line(n) + ([(0, n - 1)] if n > 2 else [])


def star(n: int) -> Edges:
    return [(0, i) for i in range(1, n)]


def grid(n: int) -> Edges:
    """A near-square grid of ``n`` nodes, row by row."""
    width = max(1, round(n**0.5))
    edges = set()
    for i in range(n):
        if (i + 1) % width and i + 1 < n:
            edges.add((i, i + 1))
        if i + width < n:
            edges.add((i, i + width))
    return _norm(edges)


def _networkx() -> Any:
    try:
        import networkx
    except ImportError:
        raise SystemExit(
            "the random graph kinds need networkx: pip install 'ygg[sim]' (or networkx)"
        ) from None
    return networkx


def barabasi_albert(n: int, m: int, seed: int) -> Edges:
    """networkx's Barabási–Albert graph: each new node attaches to ``m`` existing ones
    with probability proportional to their degree."""
    return from_networkx(_networkx().barabasi_albert_graph(n, m, seed=seed))[1]


def erdos_renyi(n: int, seed: int, mean_degree: float = 4.0) -> Edges:
    """G(n, p) for the given mean degree, its components then chained together so that
    the network is connected (the simulator measures one network)."""
    nx = _networkx()
    graph = nx.fast_gnp_random_graph(n, min(1.0, mean_degree / max(1, n - 1)), seed=seed)
    components = [min(c) for c in nx.connected_components(graph)]
    graph.add_edges_from(itertools.pairwise(sorted(components)))
    return from_networkx(graph)[1]


GENERATORS = ("ba", "grid", "line", "ring", "er", "star")


def generate(kind: str, n: int, seed: int) -> Edges:
    if kind == "ba":
        return barabasi_albert(n, 2, seed)
    if kind == "er":
        return erdos_renyi(n, seed)
    if kind in ("grid", "line", "ring", "star"):
        return {"grid": grid, "line": line, "ring": ring, "star": star}[kind](n)
    raise ValueError(f"unknown graph kind {kind!r} (one of {', '.join(GENERATORS)})")


def from_networkx(graph: Any) -> tuple[int, Edges]:
    index = {node: i for i, node in enumerate(graph.nodes())}
    return len(index), _norm({(index[a], index[b]) for a, b in graph.edges()})


def neighbours(n: int, edges: Edges) -> list[list[int]]:
    adjacency: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        adjacency[a].append(b)
        adjacency[b].append(a)
    return adjacency


def hops_from(source: int, adjacency: list[list[int]]) -> list[int]:
    """Breadth-first hop counts from ``source`` (-1 where unreachable)."""
    dist = [-1] * len(adjacency)
    dist[source] = 0
    queue = deque([source])
    while queue:
        node = queue.popleft()
        for other in adjacency[node]:
            if dist[other] < 0:
                dist[other] = dist[node] + 1
                queue.append(other)
    return dist
