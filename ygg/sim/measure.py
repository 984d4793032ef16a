"""One simulator experiment: build a graph, converge, send traffic, measure.

The same experiment runs either protocol (``protocol="0.4"`` or ``"0.5"``); the fields
that only one of them has (v0.4's DHT table, v0.5's tree infos and bloom filters) are
null for the other or left out.
"""

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
_IDLE = 10.0  # simulated seconds of quiet after the traffic, to count upkeep frames


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
    dht_entries_mean: float | None
    dht_entries_max: int | None
    root_agreed: bool
    protocol: str = "0.4"
    #: Frames written per node: in all, per simulated second; before convergence; and per
    #: second in a quiet window after the traffic (upkeep: keepalives, refreshes).
    frames_per_node_second: float = 0.0
    converge_frames_per_node: float = 0.0
    idle_frames_per_node_second: float = 0.0
    # v0.5 only: infos held per node, and the share of the 8192 bits set in the filters
    # sent on tree links.
    tree_entries_mean: float | None = None
    tree_entries_max: int | None = None
    bloom_occupancy_mean: float | None = None
    bloom_occupancy_max: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.protocol == "0.4":
            for key in _V05_ONLY:
                del out[key]
        return out


_V05_ONLY = (
    "tree_entries_mean",
    "tree_entries_max",
    "bloom_occupancy_mean",
    "bloom_occupancy_max",
)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_experiment(
    nodes: int,
    graph: str,
    seed: int,
    pairs: int,
    timeout: float = 3600.0,
    protocol: str = "0.4",
) -> Result:
    started = time.perf_counter()
    edges = graphs.generate(graph, nodes, seed)
    net = SimNetwork.from_edges(nodes, edges, seed=seed, protocol=protocol)
    start_time = net.clock.seconds()
    converge = net.run_until(net.converged, timeout=timeout, step=0.1, settle=1.0)
    converge_frames = net.frames_sent()
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
            routed += net.has_path(a, b)
            probes.append((a, b, net.send_probe(a, b)))
        net.run(1.0)
        for a, b, probe in probes:
            if not net.delivered(b, probe):
                continue
            delivered += 1
            if a not in distances:
                distances[a] = graphs.hops_from(a, adjacency)
            stretches.append(net.hops[probe] / distances[a][b])

    idle_from, idle_frames = net.clock.seconds(), net.frames_sent()
    net.run(_IDLE)
    idle_frames = net.frames_sent() - idle_frames
    elapsed = net.clock.seconds() - start_time
    v05 = protocol == "0.5"
    sizes = None if v05 else net.dht_sizes()
    trees = net.tree_sizes() if v05 else None
    occupancy = (net.bloom_occupancy() or [0.0]) if v05 else None
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
        dht_entries_mean=round(statistics.mean(sizes), 2) if sizes else None,
        dht_entries_max=max(sizes) if sizes else None,
        root_agreed=net.root_agreed(),
        protocol=protocol,
        frames_per_node_second=round(net.frames_sent() / nodes / elapsed, 3),
        converge_frames_per_node=round(converge_frames / nodes, 1),
        idle_frames_per_node_second=round(
            idle_frames / nodes / (net.clock.seconds() - idle_from), 3
        ),
        tree_entries_mean=round(statistics.mean(trees), 2) if trees else None,
        tree_entries_max=max(trees) if trees else None,
        bloom_occupancy_mean=round(statistics.mean(occupancy), 4) if occupancy else None,
        bloom_occupancy_max=round(max(occupancy), 4) if occupancy else None,
    )
