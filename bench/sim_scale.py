"""How the routing core scales: the simulator at 100, 1000 and 10,000 nodes.

Each size runs in its own process (`python -m ygg.sim --json`), so peak RSS is that run's.
The 10,000-node run is given 10 minutes and reported as not finished past that.

    python bench/sim_scale.py [--graph ba] [--seed 1] [--pairs 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((100, 600), (1000, 600), (10000, 600))  # nodes, time limit in seconds
COLUMNS = (
    ("nodes", "nodes"),
    ("edges", "edges"),
    ("pairs", "pairs"),
    ("delivered", "delivered"),
    ("stretch_mean", "stretch"),
    ("stretch_p95", "p95"),
    ("converge_sim_seconds", "converge s (sim)"),
    ("wall_seconds", "wall s"),
    ("peak_rss_kb", "peak RSS KiB"),
    ("dht_entries_mean", "DHT mean"),
    ("dht_entries_max", "DHT max"),
    ("root_agreed", "root agreed"),
)


def run(nodes: int, limit: float, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        "-m",
        "ygg.sim",
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
        return {"nodes": nodes, "error": f"did not finish in {limit:.0f} s"}
    if done.returncode != 0:
        return {"nodes": nodes, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", default="ba")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for nodes, limit in SIZES:
        results.append(run(nodes, limit, args))
        print(f"{nodes} nodes done", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"graph {args.graph}, seed {args.seed}, {args.pairs} pairs")
    print("| " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for result in results:
        if "error" in result:
            print(f"| {result['nodes']} | {result['error']} |")
            continue
        print("| " + " | ".join(str(result[key]) for key, _ in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
