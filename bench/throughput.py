"""Throughput of IPv6 over the mesh, ours against the Go node, in one run (needs root).

Network namespaces joined by veth pairs carry the links; each node has its TUN.  iperf3
sends TCP for --seconds through:

* pairs (two namespaces):   Go→Go, Go→ours, ours→Go
* chains (three namespaces, the middle node forwards):  Go→ours→Go, Go→Go→Go

For each run it prints Mbit/s, the ratio to the Go-only run of the same shape, and the CPU
(% of one core) and peak RSS of every node; then the idle RSS of ours and of Go.

    python bench/throughput.py [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nodes import GoNode, Node, YggNode, remove_tree  # noqa: E402

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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def node_pid(node: Node) -> int:
    """The node process itself (``ip netns exec`` replaces itself with it)."""
    assert node.process is not None
    return node.process.proc.pid


def start(kind: type[Node], directory: str, ns: str, **kwargs: object) -> Node:
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


def measure(name: str, chain: Chain, kinds: list[type[Node]], seconds: int, work: str) -> Run:
    """Nodes of ``kinds`` along the chain (each peers with the next); iperf3 end to end."""
    nodes: list[Node] = []
    try:
        for i, kind in enumerate(kinds):
            # Node i listens on the right-hand end of the link to its left neighbour.
            listen = [f"tcp://[{chain.ip(i - 1, 2)}]:{PORT}"] if i > 0 else []
            peers = []
            nodes.append(
                start(kind, f"{work}/{name}{i}", chain.names[i], listen=listen, peers=peers)
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
            f"{i}:{type(n).__name__}": Usage(
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
    for kind in (GoNode, YggNode):
        node = start(kind, f"{work}/idle{kind.__name__}", chain.names[0])
        time.sleep(5)
        rss[kind.__name__] = status_kb(node_pid(node), "VmRSS")
        node.stop()
    return rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/throughput.py needs root (namespaces and TUN devices)")
    work = tempfile.mkdtemp(prefix="ygb", dir="/tmp")
    chain = Chain(3).up()
    try:
        plan = [
            ("go->go", [GoNode, GoNode], None),
            ("go->ours", [GoNode, YggNode], "go->go"),
            ("ours->go", [YggNode, GoNode], "go->go"),
            ("go->go->go", [GoNode, GoNode, GoNode], None),
            ("go->ours->go", [GoNode, YggNode, GoNode], "go->go->go"),
        ]
        runs: dict[str, Run] = {}
        for name, kinds, reference in plan:
            print(f"running {name} …", file=sys.stderr, flush=True)
            run = measure(name.replace("->", "_"), chain, kinds, args.seconds, work)
            run.name = name
            if reference is not None and runs[reference].mbit_s:
                run.ratio = round(run.mbit_s / runs[reference].mbit_s, 2)
            runs[name] = run
        idle = idle_rss(chain, work)
    finally:
        chain.down()
        remove_tree(work)
    if args.json:
        print(json.dumps({"runs": [asdict(r) for r in runs.values()], "idle_rss_kb": idle}))
        return 0
    print(f"iperf3 TCP, {args.seconds} s per run, {os.cpu_count()} cores")
    print("| run | Mbit/s | ratio to Go | nodes: CPU % / peak RSS MiB |")
    print("|---|---|---|---|")
    for run in runs.values():
        nodes = ", ".join(
            f"{name.split(':')[1].replace('Node', '')} {u.cpu_percent}% / "
            f"{u.peak_rss_kb / 1024:.0f}"
            for name, u in run.nodes.items()
        )
        ratio = "—" if run.ratio is None else f"{run.ratio:.2f}"
        print(f"| {run.name} | {run.mbit_s:.0f} | {ratio} | {nodes} |")
    print(
        f"idle RSS: ours {idle['YggNode'] / 1024:.1f} MiB, Go {idle['GoNode'] / 1024:.1f} MiB "
        f"(ratio {idle['YggNode'] / max(1, idle['GoNode']):.1f})"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: cleaned up on the way out; one line, no traceback
        print("bench/throughput.py: interrupted", file=sys.stderr)
        sys.exit(130)
