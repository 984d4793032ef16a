"""``python -m ygg.sim``: run the simulator once and print what it measured."""

from __future__ import annotations

import argparse
import json
import sys

from ygg.sim import graphs
from ygg.sim.measure import run_experiment
from ygg.sim.network import PROTOCOLS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ygg.sim",
        description="Simulate a network of ygg routers on one clock and measure it.",
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument(
        "--graph",
        choices=graphs.GENERATORS,
        default="ba",
        help="ba = Barabási–Albert (m=2), er = Erdős–Rényi (mean degree 4)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=100, help="random pairs to send traffic")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="0.4",
        help="which routing core the nodes run (default 0.4)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.nodes < 2:
        parser.error("--nodes must be at least 2")
    result = run_experiment(args.nodes, args.graph, args.seed, args.pairs, protocol=args.protocol)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        for key, value in result.as_dict().items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
