"""Memory of a node at rest and under load, ours against the Go nodes, in one run (needs root).

Two network namespaces joined by a veth pair.  In one runs the peer, a Go node: 0.4.7 for
the v0.4 rows, 0.5.12 for the rows where ours runs both versions (a config without
ProtocolVersions).  In the other runs the node measured — the Go node of that version,
then ours — with the everyday config: a TUN, the admin socket, one peer, multicast on lo.
For each: the RSS after --idle seconds (20) with the peer up, then the peak RSS (VmHWM,
reset first) while iperf3 sends TCP through the TUNs for --seconds (10).  The "tls+shell"
rows peer over tls://, listen on tls:// too and, for ours, run the SSH admin shell.

Beside each of ours: whether pyOpenSSL/cryptography (``_rust``/``_openssl``), libssl and
libcrypto are mapped into the process (read from /proc/PID/maps).

    python bench/memory.py [--idle 20] [--seconds 10] [--only everyday-0.4 …] [--json]
    python bench/memory.py --imports     # what each import costs (RSS and time), no root
    python bench/memory.py --verify-traces DIR   # signature-cache hit rates by size
    python bench/memory.py --verify-sim 1000     # the same per node of a simulated network

``--imports`` measures in fresh interpreters: the node's start-up imports step by step, then
each optional piece on top of a started node's imports (TLS links, the SSH shell, AMP,
meshname's DNS server, pyroute2 for RAdv, hjson, importlib.metadata, asyncio, hashlib,
decimal, ssl), and
stock Twisted's reactor against ygg's lean import of it.

``--verify-traces DIR`` replays the signature-cache lookups recorded by nodes run with
``YGG_VERIFY_TRACE=DIR`` (e.g. ``YGG_VERIFY_TRACE=DIR python bench/soak.py``) against caches
of other sizes: the hit rate each size would have had.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import PYTHON  # noqa: E402
from tests.nodes import GoNode, GoNode05, NetnsPair, Node, YggNode, remove_tree  # noqa: E402
from tests.processes import child_env, status_kb  # noqa: E402

PORT = 14101
TLS_PORT = 14102
MIB = 1024.0


@dataclass
class Row:
    name: str
    version: str  # "0.4": ours runs v0.4 only, against 0.4.7; "both": against 0.5.12
    tls_shell: bool


ROWS = [
    Row("everyday-0.4", "0.4", False),
    Row("everyday-both", "both", False),
    Row("tls+shell-0.4", "0.4", True),
    Row("tls+shell-both", "both", True),
]


@dataclass
class Sample:
    node: str
    idle_kb: int
    peak_kb: int
    mbit_s: float
    mapped: dict[str, bool] = field(default_factory=dict)


@dataclass
class Result:
    row: str
    go: Sample
    ours: Sample

    @property
    def idle_ratio(self) -> float:
        return self.ours.idle_kb / max(1, self.go.idle_kb)

    @property
    def peak_ratio(self) -> float:
        return self.ours.peak_kb / max(1, self.go.peak_kb)


# -- /proc ------------------------------------------------------------------------------


def reset_peak(pid: int) -> None:
    """VmHWM back to the current RSS (Linux ≥ 4.0: ``5`` in clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


#: Libraries whose mapping shows what a node loaded.
LIBRARIES = {
    "pyOpenSSL/cryptography": ("_rust.abi3.so", "_openssl.abi3.so"),
    "libssl": ("libssl.so",),
    "libcrypto": ("libcrypto.so",),
}


def mapped(pid: int) -> dict[str, bool]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {name: any(f in maps for f in files) for name, files in LIBRARIES.items()}


def compile_bytecode() -> None:
    """Bytecode for the checkout's ygg, as an install has (``pip`` compiles it): without it
    every node compiles its modules at start, which costs time and memory an installed node
    does not pay (this environment may set PYTHONDONTWRITEBYTECODE).  The files go to the
    usual, git-ignored ``__pycache__`` directories."""
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(ROOT / "ygg"), str(ROOT / "twisted")],
        check=True,
        capture_output=True,
    )


# -- nodes ------------------------------------------------------------------------------


def shell_config(directory: str) -> dict[str, Any]:
    """The SSH admin shell on loopback (its host key is made at start)."""
    Path(directory, "authorized_keys").write_text("")
    return {
        "AdminShell": {
            "Listen": r"tcp:port=0:interface=\:\:1",
            "HostKeyFile": f"{directory}/ssh_host_key",
            "AuthorizedKeysFile": f"{directory}/authorized_keys",
        }
    }


def peer_node(row: Row, pair: NetnsPair, work: str) -> Node:
    kind = GoNode if row.version == "0.4" else GoNode05
    listen = [f"tcp://[{pair.IP_B}]:{PORT}"]
    if row.tls_shell:
        listen.append(f"tls://[{pair.IP_B}]:{TLS_PORT}")
    node = kind(f"{work}/{row.name}-peer", netns=pair.b, tun="ygg0", listen=listen)
    return node.start()


def subject(kind: str, row: Row, pair: NetnsPair, work: str) -> Node:
    """The node measured, in namespace a: the everyday config (or its tls+shell form)."""
    directory = f"{work}/{row.name}-{kind}"
    os.makedirs(directory, exist_ok=True)
    peer = f"tls://[{pair.IP_B}]:{TLS_PORT}" if row.tls_shell else f"tcp://[{pair.IP_B}]:{PORT}"
    common: dict[str, Any] = {
        "netns": pair.a,
        "tun": "ygg0",
        "peers": [peer],
        "multicast": "^lo$",
        "listen": [f"tls://[{pair.IP_A}]:0"] if row.tls_shell else [],
    }
    if kind == "go":
        node: Node = (GoNode if row.version == "0.4" else GoNode05)(directory, **common)
    else:
        versions = ("0.4",) if row.version == "0.4" else ("0.4", "0.5")
        extra = shell_config(directory) if row.tls_shell else None
        node = YggNode(directory, versions=versions, extra=extra, **common)
    return node.start()


def iperf(pair: NetnsPair, target: str, seconds: int) -> float:
    server = subprocess.Popen(
        ["ip", "netns", "exec", pair.b, "iperf3", "-s", "-1", "-B", target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", pair.a, "iperf3", "-c", target, "-t", str(seconds), "-J"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        result = json.loads(done.stdout)
        return round(result["end"]["sum_received"]["bits_per_second"] / 1e6, 1)
    except (ValueError, KeyError):
        return 0.0
    finally:
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def measure(kind: str, row: Row, pair: NetnsPair, peer: Node, work: str, args: Any) -> Sample:
    node = subject(kind, row, pair, work)
    try:
        assert node.process is not None
        pid = node.process.proc.pid  # ``ip netns exec`` became the node
        node.wait_peer(peer.key, timeout=30)
        time.sleep(args.idle)
        idle = status_kb(pid, "VmRSS")
        libraries = mapped(pid)
        target = peer.ctl("getSelf")["address"]
        subprocess.run(  # sessions and routes before iperf3 starts
            ["ip", "netns", "exec", pair.a, "ping", "-6", "-c", "3", "-i", "0.3", target],
            capture_output=True,
        )
        reset_peak(pid)
        mbit = iperf(pair, target, args.seconds)
        peak = status_kb(pid, "VmHWM")
        return Sample(kind, idle, peak, mbit, libraries if kind == "ours" else {})
    finally:
        node.stop()


def run_rows(rows: list[Row], args: Any, work: str) -> list[Result]:
    results = []
    pair = NetnsPair("ybm").up()
    try:
        for row in rows:
            print(f"measuring {row.name} …", file=sys.stderr, flush=True)
            peer = peer_node(row, pair, work)
            try:
                go = measure("go", row, pair, peer, work, args)
                ours = measure("ours", row, pair, peer, work, args)
            finally:
                peer.stop()
            results.append(Result(row.name, go, ours))
    finally:
        pair.down()
    return results


def print_rows(results: list[Result], args: Any) -> None:
    print(f"RSS after {args.idle} s idle, and peak RSS during {args.seconds} s of iperf3 (MiB)")
    print(
        "| row | Go idle | ours idle | ratio | Go peak | ours peak | ratio "
        "| iperf3 Mbit/s Go / ours |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        go_name = "0.4.7" if r.row.endswith("0.4") else "0.5.12"
        print(
            f"| {r.row} (Go {go_name}) | {r.go.idle_kb / MIB:.1f} | {r.ours.idle_kb / MIB:.1f} "
            f"| {r.idle_ratio:.2f} | {r.go.peak_kb / MIB:.1f} | {r.ours.peak_kb / MIB:.1f} "
            f"| {r.peak_ratio:.2f} | {r.go.mbit_s:.0f} / {r.ours.mbit_s:.0f} |"
        )
    print()
    for r in results:
        loaded = ", ".join(name for name, yes in r.ours.mapped.items() if yes) or "none"
        print(f"{r.row}: ours has mapped: {loaded}")


# -- imports ----------------------------------------------------------------------------

#: The node's start-up imports, in the order ``ygg run`` makes them, each step on the last.
STEPS = [
    ("Python", ""),
    ("ygg (its lean import set up)", "import ygg"),
    (
        "Twisted: reactor, application, logger, endpoints, usage, tuntap",
        "from twisted.internet import reactor; import twisted.application.internet, "
        "twisted.logger, twisted.internet.endpoints, twisted.python.usage, twisted.pair.tuntap",
    ),
    ("PyNaCl", "import nacl.bindings"),
    ("config, features (discovery)", "import ygg.config, ygg.features; ygg.features.discover()"),
    (
        "v0.4 core: router, sessions",
        "import ygg.network.router, ygg.session.manager, ygg.core.core",
    ),
    ("v0.5 core, IPv6 layer", "import ygg.v05.core, ygg.v05.proto, ygg.ipv6.layer"),
    ("links, multicast, TUN", "import ygg.links.manager, ygg.links.multicast, ygg.tun.device"),
    ("admin socket and methods", "import ygg.admin.json_socket, ygg.admin.methods"),
    ("service, runner", "import ygg.service, ygg.runner"),
]

#: Optional pieces, each measured on top of all of STEPS.
OPTIONAL = [
    (
        "tls:// links: pyOpenSSL, cryptography, Twisted's TLS",
        "import ygg.links.tls, ygg.keys; "
        "ygg.links.tls.server_context_factory(ygg.keys.NodeKey.generate())",
    ),
    ("SSH admin shell (conch)", "import ygg.admin.shell"),
    ("AMP admin (twisted.protocols.amp)", "import ygg.admin.amp"),
    ("ws:// and wss:// links (autobahn)", "import ygg.links.websocket"),
    ("quic:// links (aioquic)", "import ygg.links.quic"),
    ("meshname (twisted.names, dnspython)", "import ygg.popura.meshname.service"),
    ("pyroute2 (RAdv)", "from pyroute2 import IPRoute"),
    ("hjson (a config that is not JSON; dropped after)", "import hjson"),
    ("importlib.metadata", "import importlib.metadata"),
    ("asyncio (quic:// links; stock Twisted imports it)", "import asyncio"),
    ("hashlib (libcrypto)", "import hashlib"),
    ("decimal (admin replies with floats ≥ 1e16)", "import decimal"),
    ("ssl (libssl, libcrypto)", "import ssl"),
]

_PROBE = """
import sys, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * {page} // 1024
base = {base!r}
step = {step!r}
exec(base)
before, started = rss(), time.perf_counter()
exec(step)
print(rss() - before, round((time.perf_counter() - started) * 1000, 1), rss())
"""


def probe(base: str, step: str) -> tuple[int, float, int]:
    """RSS KiB and milliseconds of ``step`` after ``base``, in a fresh interpreter; and the
    RSS after it (the median of three runs)."""
    code = _PROBE.format(page=os.sysconf("SC_PAGE_SIZE"), base=base, step=step)
    runs = []
    for _ in range(3):
        done = subprocess.run(
            [PYTHON, "-c", code],
            capture_output=True,
            text=True,
            env=child_env(),
            cwd=str(ROOT),
            timeout=120,
        )
        if done.returncode != 0:
            raise SystemExit(f"bench/memory.py: {step!r} failed:\n{done.stderr.strip()}")
        kb, ms, total = done.stdout.split()
        runs.append((int(kb), float(ms), int(total)))
    runs.sort()
    return runs[1]


def imports() -> dict[str, Any]:
    steps, base = [], ""
    for name, step in STEPS:
        kb, ms, total = probe(base, step)
        steps.append({"what": name, "kib": kb, "ms": ms, "total_kib": total})
        base = f"{base}\n{step}"
    optional = []
    for name, step in OPTIONAL:
        kb, ms, _ = probe(base, step)
        optional.append({"what": name, "kib": kb, "ms": ms})
    stock = probe("", "import twisted.internet.reactor")
    lean = probe("import ygg", "import twisted.internet.reactor")
    return {
        "steps": steps,
        "optional": optional,
        "reactor": {
            "stock_kib": stock[0],
            "stock_ms": stock[1],
            "lean_kib": lean[0],
            "lean_ms": lean[1],
        },
    }


def print_imports(found: dict[str, Any]) -> None:
    print("Start-up imports, each on the ones above (fresh interpreter, median of 3):")
    print("| step | + MiB | + ms | RSS MiB |")
    print("|---|---|---|---|")
    for s in found["steps"]:
        total = s["total_kib"] / MIB
        print(f"| {s['what']} | {s['kib'] / MIB:.1f} | {s['ms']:.0f} | {total:.1f} |")
    print()
    print("Imported only when used, each on top of all of the above:")
    print("| piece | + MiB | + ms |")
    print("|---|---|---|")
    for s in found["optional"]:
        print(f"| {s['what']} | {s['kib'] / MIB:.1f} | {s['ms']:.0f} |")
    r = found["reactor"]
    print()
    print(
        f"twisted.internet.reactor: stock {r['stock_kib'] / MIB:.1f} MiB "
        f"({r['stock_ms']:.0f} ms), after `import ygg` {r['lean_kib'] / MIB:.1f} MiB "
        f"({r['lean_ms']:.0f} ms)"
    )


# -- the signature cache ---------------------------------------------------------------

CACHE_SIZES = (64, 256, 1024, 4096, 16384, 65536)


def replay(lookups: list[int], size: int | None) -> int:
    """Hits of a FIFO cache of ``size`` (None: unbounded) over a recorded lookup sequence
    (a triple's hash << 1 | verified), caching successes only, as VerifyCache does."""
    cache: dict[int, None] = {}
    hits = 0
    for lookup in lookups:
        entry, ok = lookup >> 1, lookup & 1
        if entry in cache:
            hits += 1
        elif ok:
            if size is not None and len(cache) >= size:
                del cache[next(iter(cache))]
            cache[entry] = None
    return hits


def verify_traces(directory: str) -> list[dict[str, Any]]:
    """Each trace written by a node run with YGG_VERIFY_TRACE (ygg/keys.py), replayed."""
    rows = []
    for path in sorted(Path(directory).glob("verify-*.json")):
        record = json.loads(path.read_text())
        lookups = record["lookups"]
        rows.append(
            {
                "trace": path.name,
                "lookups": len(lookups),
                "distinct": len({x >> 1 for x in lookups}),
                "hits": {str(size): replay(lookups, size) for size in CACHE_SIZES}
                | {"unbounded": replay(lookups, None)},
            }
        )
    return rows


#: The simulator with a cache per router (it shares one between all its routers), traced.
_SIM = """
import sys
from ygg.keys import VerifyCache
from ygg.network import router as router04
from ygg.v05.network import router as router05
from ygg.sim.measure import run_experiment

for module in (router04, router05):
    def make(init):
        def per_router(self, *args, verifier=None, **kwargs):
            init(self, *args, verifier=verifier or VerifyCache(), **kwargs)
        return per_router
    module.Router.__init__ = make(module.Router.__init__)
run_experiment(int(sys.argv[1]), "ba", 1, 100, protocol=sys.argv[2])
"""


def verify_sim(nodes: int) -> list[dict[str, Any]]:
    """Per-node hit rates of caches of each size in simulated networks (one cache per
    node, as in a real node): the median node's and the busiest node's."""
    rows = []
    for protocol in ("0.4", "0.5"):
        directory = tempfile.mkdtemp(prefix="ybmv", dir="/tmp")
        try:
            subprocess.run(
                [PYTHON, "-c", _SIM, str(nodes), protocol],
                check=True,
                env=child_env({"YGG_VERIFY_TRACE": directory}),
                cwd=str(ROOT),
                timeout=1800,
            )
            per_node = verify_traces(directory)
        finally:
            remove_tree(directory)
        busiest = max(per_node, key=lambda r: r["lookups"])
        rates: dict[str, Any] = {}
        for size in [*map(str, CACHE_SIZES), "unbounded"]:
            node_rates = sorted(r["hits"][size] / max(1, r["lookups"]) for r in per_node)
            rates[size] = {
                "median": node_rates[len(node_rates) // 2],
                "busiest": busiest["hits"][size] / max(1, busiest["lookups"]),
            }
        rows.append(
            {
                "protocol": protocol,
                "nodes": nodes,
                "busiest_lookups": busiest["lookups"],
                "busiest_distinct": busiest["distinct"],
                "rates": rates,
            }
        )
    return rows


def print_sim(rows: list[dict[str, Any]]) -> None:
    sizes = [*map(str, CACHE_SIZES), "unbounded"]
    print("Simulated network (Barabási–Albert), one cache per node: hit rate, median node /")
    print("busiest node (most lookups)")
    print(f"| protocol | nodes | busiest: lookups, distinct | {' | '.join(sizes)} |")
    print(f"|---|---|---|{'---|' * len(sizes)}")
    for row in rows:
        rates = " | ".join(
            f"{100 * row['rates'][s]['median']:.0f}% / {100 * row['rates'][s]['busiest']:.0f}%"
            for s in sizes
        )
        print(
            f"| {row['protocol']} | {row['nodes']} | {row['busiest_lookups']}, "
            f"{row['busiest_distinct']} | {rates} |"
        )


def print_traces(rows: list[dict[str, Any]]) -> None:
    sizes = [*map(str, CACHE_SIZES), "unbounded"]
    print("Signature cache hit rate by size (FIFO, successes cached), per recorded cache:")
    print(f"| trace | lookups | distinct | {' | '.join(sizes)} |")
    print(f"|---|---|---|{'---|' * len(sizes)}")
    for row in rows:
        rates = " | ".join(f"{100 * row['hits'][s] / max(1, row['lookups']):.1f}%" for s in sizes)
        print(f"| {row['trace']} | {row['lookups']} | {row['distinct']} | {rates} |")


# -- main -------------------------------------------------------------------------------


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=20, help="seconds idle before the RSS")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of iperf3")
    parser.add_argument("--only", nargs="+", choices=[r.name for r in ROWS])
    parser.add_argument("--imports", action="store_true", help="the per-import table")
    parser.add_argument(
        "--verify-sim",
        metavar="NODES",
        type=int,
        help="signature-cache hit rates by size per node of a simulated network",
    )
    parser.add_argument(
        "--verify-traces",
        metavar="DIR",
        help="replay signature-cache traces (a node run with YGG_VERIFY_TRACE=DIR)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.verify_sim:
        found = verify_sim(args.verify_sim)
        print(json.dumps(found)) if args.json else print_sim(found)
        return 0
    if args.verify_traces:
        rows = verify_traces(args.verify_traces)
        print(json.dumps(rows) if args.json else "", end="")
        if not args.json:
            print_traces(rows)
        return 0
    compile_bytecode()
    if args.imports:
        found = imports()
        if args.json:
            print(json.dumps(found))
        else:
            print_imports(found)
        return 0
    if os.geteuid() != 0:
        raise SystemExit("bench/memory.py needs root (namespaces and TUN devices)")
    rows = [r for r in ROWS if not args.only or r.name in args.only]
    work = tempfile.mkdtemp(prefix="ybm", dir="/tmp")
    try:
        results = run_rows(rows, args, work)
    finally:
        remove_tree(work)
    if args.json:
        print(
            json.dumps(
                [
                    {**asdict(r), "idle_ratio": r.idle_ratio, "peak_ratio": r.peak_ratio}
                    for r in results
                ]
            )
        )
    else:
        print_rows(results, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: cleaned up on the way out; one line, no traceback
        print("bench/memory.py: interrupted", file=sys.stderr)
        sys.exit(130)
