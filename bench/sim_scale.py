"""How the routing cores scale: v0.4 and v0.5 side by side at 100, 1000 and 10,000 nodes.

Each size and protocol runs in its own process (`python -m ygg.sim --json`) on the same
graph, so peak RSS is that run's.  A run is given a time limit and reported as not
finished past it (v0.5 at 10,000 nodes gets 20 minutes; `--sizes` picks others).

    python bench/sim_scale.py [--graph ba] [--seed 1] [--pairs 2000] [--sizes 100,1000]
                              [--protocols 0.4,0.5] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (100, 1000, 10000)
PROTOCOLS = ("0.4", "0.5")
LIMITS = {10000: 1200.0}  # seconds a run may take; 600 unless listed
COLUMNS = (
    ("nodes", "nodes"),
    ("protocol", "proto"),
    ("edges", "edges"),
    ("delivered", "delivered"),
    ("stretch_mean", "stretch"),
    ("stretch_p95", "p95"),
    ("converge_sim_seconds", "converge s (sim)"),
    ("wall_seconds", "wall s"),
    ("peak_rss_kb", "peak RSS KiB"),
    ("state", "state per node mean / max"),
    ("frames_per_node_second", "frames/node/s"),
    ("converge_frames_per_node", "frames/node to converge"),
    ("idle_frames_per_node_second", "idle frames/node/s"),
    ("root_agreed", "root agreed"),
)


def state(result: dict) -> str:
    """What each node holds: DHT entries (v0.4); tree infos and bloom occupancy (v0.5)."""
    if result.get("protocol") == "0.5":
        return (
            f"{result['tree_entries_mean']} / {result['tree_entries_max']} infos, "
            f"bloom {100 * result['bloom_occupancy_mean']:.1f}% / "
            f"{100 * result['bloom_occupancy_max']:.1f}% full"
        )
    return f"{result['dht_entries_mean']} / {result['dht_entries_max']} DHT"


def run(nodes: int, protocol: str, args: argparse.Namespace) -> dict:
    limit = LIMITS.get(nodes, 600.0)
    command = [
        sys.executable,
        "-m",
        "ygg.sim",
        "--protocol",
        protocol,
        "--nodes",
        str(nodes),
        "--graph",
        args.graph,
        "--seed",
        str(args.seed),
        "--pairs",
        str(args.pairs),
        "--json",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"nodes": nodes, "protocol": protocol, "error": f"did not finish in {limit:.0f} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["failed"]
        return {"nodes": nodes, "protocol": protocol, "error": lines[-1]}
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default="ba")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for nodes in (int(n) for n in args.sizes.split(",")):
        for protocol in args.protocols.split(","):
            results.append(run(nodes, protocol, args))
            print(f"{nodes} nodes, v{protocol} done", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"graph {args.graph}, seed {args.seed}, {args.pairs} pairs")
    print("| " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for result in results:
        if "error" in result:
            print(f"| {result['nodes']} | {result['protocol']} | {result['error']} |")
            continue
        result = {**result, "state": state(result)}
        print("| " + " | ".join(str(result[key]) for key, _ in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: cleaned up on the way out; one line, no traceback
        print("bench/sim_scale.py: interrupted", file=sys.stderr)
        sys.exit(130)
