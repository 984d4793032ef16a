"""Throughput of IPv6 over the mesh, ours against the Go nodes, in one run (needs root).

Network namespaces joined by veth pairs carry the links; each node has its TUN.  iperf3
sends TCP for --seconds through, against Go 0.4.7 (v0.4 links) and Go 0.5.12 (v0.5 links):

* pairs (two namespaces):   Go→Go, Go→ours, ours→Go
* chains (three namespaces, the middle node forwards):  Go→Go→Go, Go→ours→Go

The v0.4 rows run at the default IfMTU (65535, which 0.4.7 caps at 53049); the v0.5 rows
run at the default and again at IfMTU 1280, where the per-packet cost shows.  Ours runs
both versions, as a config without ProtocolVersions does.  For each run it prints Mbit/s,
the ratio to the Go-only run of the same shape, version and MTU, and the CPU (% of one
core) and peak RSS of every node; then the idle RSS of ours and of each Go node.  The
machine is shared, so ``--rounds N`` runs every row N times over and prints the median
and the spread (min–max) of Mbit/s and of the ratios (each taken within its round), the
median CPU and the largest peak RSS.

    python bench/throughput.py [--seconds 10] [--rounds 3] [--only v04 v05 v05-1280] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nodes import GoNode, GoNode05, Node, YggNode, remove_tree  # noqa: E402
from tests.processes import cpu_seconds, status_kb  # noqa: E402

PORT = 14001


def sh(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


class Chain:
    """Namespaces n0 — n1 — … joined by veth pairs; link i has fd59:6800:i::1 and ::2."""

    def __init__(self, count: int) -> None:
        tag = f"yb{os.getpid() % 10000}"
        self.names = [f"{tag}n{i}" for i in range(count)]

    def up(self) -> Chain:
        for ns in self.names:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for i in range(len(self.names) - 1):
            left, right = self.names[i], self.names[i + 1]
            sh(
                "ip",
                "link",
                "add",
                f"l{i}",
                "netns",
                left,
                "type",
                "veth",
                "peer",
                "name",
                f"r{i}",
                "netns",
                right,
            )
            sh("ip", "-n", left, "addr", "add", f"{self.ip(i, 1)}/64", "dev", f"l{i}", "nodad")
            sh("ip", "-n", right, "addr", "add", f"{self.ip(i, 2)}/64", "dev", f"r{i}", "nodad")
            sh("ip", "-n", left, "link", "set", f"l{i}", "up")
            sh("ip", "-n", right, "link", "set", f"r{i}", "up")
        time.sleep(1)
        return self

    @staticmethod
    def ip(link: int, side: int) -> str:
        return f"fd59:6800:{link}::{side}"

    def down(self) -> None:
        for ns in self.names:
            for pid in subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True
            ).stdout.split():
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@dataclass
class Usage:
    cpu_percent: float
    peak_rss_kb: int


@dataclass
class Run:
    name: str
    mbit_s: float
    nodes: dict[str, Usage] = field(default_factory=dict)
    ratio: float | None = None


def node_pid(node: Node) -> int:
    """The node process itself (``ip netns exec`` replaces itself with it)."""
    assert node.process is not None
    return node.process.proc.pid


def start(kind: type[Node], directory: str, ns: str, **kwargs: Any) -> Node:
    node = kind(directory, netns=ns, tun="ygg0", **kwargs)
    node.start()
    return node


def iperf(server_ns: str, client_ns: str, target: str, seconds: int) -> float:
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-B", target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", client_ns, "iperf3", "-c", target, "-t", str(seconds), "-J"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        result = json.loads(done.stdout)
        return result["end"]["sum_received"]["bits_per_second"] / 1e6
    finally:
        server.wait(timeout=30)


def measure(
    name: str, chain: Chain, kinds: list[type[Node]], seconds: int, work: str, mtu: int
) -> Run:
    """Nodes of ``kinds`` along the chain (each peers with the next), each with IfMTU
    ``mtu``; iperf3 end to end."""
    nodes: list[Node] = []
    try:
        for i, kind in enumerate(kinds):
            # Node i listens on the right-hand end of the link to its left neighbour.
            listen = [f"tcp://[{chain.ip(i - 1, 2)}]:{PORT}"] if i > 0 else []
            peers = []
            nodes.append(
                start(
                    kind, f"{work}/{name}{i}", chain.names[i], listen=listen, peers=peers, mtu=mtu
                )
            )
        for i in range(len(nodes) - 1):
            nodes[i].ctl("addPeer", f"uri=tcp://[{chain.ip(i, 2)}]:{PORT}")
        for i in range(len(nodes) - 1):
            nodes[i].wait_peer(nodes[i + 1].key, timeout=30)
        target = nodes[-1].ctl("getSelf")["address"]
        # Warm up: sessions, source routes and the key lookup.
        subprocess.run(
            ["ip", "netns", "exec", chain.names[0], "ping", "-6", "-c", "3", "-i", "0.3", target],
            capture_output=True,
        )
        pids = [node_pid(n) for n in nodes]
        before = [cpu_seconds(p) for p in pids]
        started = time.monotonic()
        mbit = iperf(chain.names[len(nodes) - 1], chain.names[0], target, seconds)
        wall = time.monotonic() - started
        usage = {
            f"{i}:{NAMES[type(n)]}": Usage(
                round(100 * (cpu_seconds(p) - b) / wall, 1), status_kb(p, "VmHWM")
            )
            for i, (n, p, b) in enumerate(zip(nodes, pids, before, strict=True))
        }
        return Run(name, round(mbit, 1), usage)
    finally:
        for node in nodes:
            node.stop()


def idle_rss(chain: Chain, work: str) -> dict[str, int]:
    rss = {}
    for kind in (GoNode, GoNode05, YggNode):
        node = start(kind, f"{work}/idle{kind.__name__}", chain.names[0])
        time.sleep(5)
        rss[NAMES[kind]] = status_kb(node_pid(node), "VmRSS")
        node.stop()
    return rss


NAMES: dict[type[Node], str] = {GoNode: "go", GoNode05: "go05", YggNode: "ours"}
DEFAULT_MTU = 65535  # the default IfMTU (0.4.7 caps it at 53049)


@dataclass(frozen=True)
class Row:
    name: str
    group: str  # what --only picks: v04, v05, v05-1280
    kinds: list[type[Node]]
    reference: str | None  # the Go-only row of the same shape, version and MTU
    mtu: int = DEFAULT_MTU


def plan() -> list[Row]:
    """Each group: the Go-only pair, ours at either end, the Go-only chain, ours in the
    middle (a reference row runs before the rows compared to it)."""
    rows = []
    groups = (("v04", GoNode, "go", DEFAULT_MTU), ("v05", GoNode05, "go05", DEFAULT_MTU))
    groups += (("v05-1280", GoNode05, "go05", 1280),)
    for group, go, g, mtu in groups:
        at = "" if mtu == DEFAULT_MTU else f" @{mtu}"
        pair, chain = f"{g}->{g}{at}", f"{g}->{g}->{g}{at}"
        rows += [
            Row(pair, group, [go, go], None, mtu),
            Row(f"{g}->ours{at}", group, [go, YggNode], pair, mtu),
            Row(f"ours->{g}{at}", group, [YggNode, go], pair, mtu),
            Row(chain, group, [go, go, go], None, mtu),
            Row(f"{g}->ours->{g}{at}", group, [go, YggNode, go], chain, mtu),
        ]
    return rows


def spread(values: list[float], digits: int = 0) -> str:
    """``median`` or, over several rounds, ``median (min–max)``."""
    mid = statistics.median(values)
    if len(values) == 1:
        return f"{mid:.{digits}f}"
    return f"{mid:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the rows this many times over (the machine is shared: medians and spread)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("v04", "v05", "v05-1280"),
        help="run these groups of rows only (default: all)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/throughput.py needs root (namespaces and TUN devices)")
    rows = [row for row in plan() if not args.only or row.group in args.only]
    work = tempfile.mkdtemp(prefix="ygb", dir="/tmp")
    chain = Chain(3).up()
    # Per row, one Run a round; a ratio compares rows of the same round.
    runs: dict[str, list[Run]] = {row.name: [] for row in rows}
    try:
        for round_ in range(args.rounds):
            done: dict[str, Run] = {}
            for row in rows:
                print(
                    f"round {round_ + 1}/{args.rounds}: {row.name} …", file=sys.stderr, flush=True
                )
                tag = row.name.replace("->", "_").replace(" @", "_")
                run = measure(f"{tag}_{round_}", chain, row.kinds, args.seconds, work, row.mtu)
                run.name = row.name
                reference = done.get(row.reference) if row.reference else None
                if reference is not None and reference.mbit_s:
                    run.ratio = round(run.mbit_s / reference.mbit_s, 2)
                done[row.name] = run
                runs[row.name].append(run)
        idle = idle_rss(chain, work)
    finally:
        chain.down()
        remove_tree(work)
    if args.json:
        out = {name: [asdict(r) for r in rounds] for name, rounds in runs.items()}
        print(json.dumps({"rounds": args.rounds, "runs": out, "idle_rss_kb": idle}))
        return 0
    print(
        f"iperf3 TCP, {args.seconds} s per run, {args.rounds} round(s), "
        f"{os.cpu_count()} cores" + ("; median (min–max)" if args.rounds > 1 else "")
    )
    print("| run | Mbit/s | ratio to Go | nodes: CPU % / peak RSS MiB |")
    print("|---|---|---|---|")
    for name, rounds in runs.items():
        nodes = ", ".join(
            f"{key.split(':')[1]} "
            f"{statistics.median(r.nodes[key].cpu_percent for r in rounds):.0f}% / "
            f"{max(r.nodes[key].peak_rss_kb for r in rounds) / 1024:.0f}"
            for key in rounds[0].nodes
        )
        ratios = [r.ratio for r in rounds if r.ratio is not None]
        ratio = spread(ratios, 2) if ratios else "—"
        print(f"| {name} | {spread([r.mbit_s for r in rounds])} | {ratio} | {nodes} |")
    ours = idle["ours"]
    print(
        f"idle RSS: ours {ours / 1024:.1f} MiB, Go 0.4.7 {idle['go'] / 1024:.1f} MiB "
        f"(ratio {ours / max(1, idle['go']):.1f}), Go 0.5.12 {idle['go05'] / 1024:.1f} MiB "
        f"(ratio {ours / max(1, idle['go05']):.1f})"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: cleaned up on the way out; one line, no traceback
        print("bench/throughput.py: interrupted", file=sys.stderr)
        sys.exit(130)
