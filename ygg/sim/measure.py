"""One simulator experiment: build a graph, converge, send traffic, measure."""

from __future__ import annotations

import random
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from ygg.sim import graphs
from ygg.sim.network import SimNetwork

#: Traffic between a pair until both have a source route: A→B, B→A, A→B, B→A, then A→B
#: measured.  The gaps let notifies, lookups and responses complete (1 s lookup throttle).
_WARMUP = ((0, 1), (1, 0), (0, 1), (1, 0))
_WARMUP_GAP = 0.3
_SETTLE = 1.5
_BATCH = 100


@dataclass
class Result:
    nodes: int
    edges: int
    graph: str
    seed: int
    pairs: int
    delivered: int
    stretch_mean: float
    stretch_p95: float
    source_routed: int
    converge_sim_seconds: float
    wall_seconds: float
    peak_rss_kb: int
    dht_entries_mean: float
    dht_entries_max: int
    root_agreed: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_experiment(
    nodes: int, graph: str, seed: int, pairs: int, timeout: float = 3600.0
) -> Result:
    started = time.perf_counter()
    edges = graphs.generate(graph, nodes, seed)
    net = SimNetwork.from_edges(nodes, edges, seed=seed)
    converge = net.run_until(net.converged, timeout=timeout, step=0.1, settle=1.0)
    adjacency = graphs.neighbours(nodes, edges)
    rng = random.Random(seed + 1)
    chosen = [tuple(rng.sample(range(nodes), 2)) for _ in range(pairs)]

    delivered = 0
    routed = 0
    stretches: list[float] = []
    distances: dict[int, list[int]] = {}
    for start in range(0, len(chosen), _BATCH):
        batch = chosen[start : start + _BATCH]
        for first, second in _WARMUP:
            for pair in batch:
                net.send_probe(pair[first], pair[second])
            net.run(_WARMUP_GAP)
        net.run(_SETTLE)
        probes = []
        for a, b in batch:
            routed += net.nodes[a].router.pathfinder.get_path(net.nodes[b].public) is not None
            probes.append((a, b, net.send_probe(a, b)))
        net.run(1.0)
        for a, b, probe in probes:
            if not net.delivered(b, probe):
                continue
            delivered += 1
            if a not in distances:
                distances[a] = graphs.hops_from(a, adjacency)
            stretches.append(net.hops[probe] / distances[a][b])

    sizes = net.dht_sizes()
    return Result(
        nodes=nodes,
        edges=len(edges),
        graph=graph,
        seed=seed,
        pairs=pairs,
        delivered=delivered,
        stretch_mean=round(statistics.mean(stretches), 4) if stretches else 0.0,
        stretch_p95=round(_percentile(stretches, 0.95), 4) if stretches else 0.0,
        source_routed=routed,
        converge_sim_seconds=round(converge, 3),
        wall_seconds=round(time.perf_counter() - started, 2),
        peak_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        dht_entries_mean=round(statistics.mean(sizes), 2),
        dht_entries_max=max(sizes),
        root_agreed=net.root_agreed(),
    )
