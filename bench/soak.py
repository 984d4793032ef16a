"""Soak benchmarks against the Go node: a flood of made-up sessions, and flapping peers.

(a) flood — an attacker process links to the target over a real v0.4 link (ygg's own
    handshake and frame code) and sends --packets path-traffic frames addressed to the
    target from fresh random source keys, each a session packet the target cannot know.
    Run against ours and against Debian's yggdrasil 0.4.7 in the same run: CPU seconds
    per bogus packet (/proc/PID/stat utime+stime), peak RSS, and how long a genuine
    session takes meanwhile: a Go node peered with the target asks it for its NodeInfo
    (``yggdrasilctl getNodeInfo``), once before the flood (node A) and once while it runs
    (node B, so that the session is new).
(b) flap — for --seconds, links to our node that come and go: raw clients doing real
    handshakes and closing with FIN or TCP reset (SO_LINGER 0), some before the
    handshake ends, and Go nodes restarted in a loop.  RSS and open fds of our node are
    sampled every 10 s, then every second after the flapping stops until the fds are
    back to the baseline.

Everything runs on loopback, in a temporary directory removed afterwards.  Ctrl-C stops
it with one line.

    python bench/soak.py [--packets 100000] [--seconds 120] [--only flood|flap]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet.task import Clock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import PYTHON, YGGDRASILCTL  # noqa: E402
from tests.nodes import GoNode, Node, YggNode, remove_tree  # noqa: E402
from tests.processes import cpu_seconds, status_kb  # noqa: E402
from ygg.keys import NodeKey  # noqa: E402
from ygg.links.handshake import META_SIZE, decode_meta, encode_meta  # noqa: E402
from ygg.network import wire  # noqa: E402
from ygg.network.router import Router  # noqa: E402
from ygg.session.wire import encode_traffic_header  # noqa: E402

LOOPBACK = "tcp://127.0.0.1:0"
RSS_BACK = 1.05  # RSS within 5% of the baseline counts as back
GENUINE_AFTER = 0.5  # seconds into the flood when the genuine node asks
_U16 = struct.Struct(">H")
_LINGER_RESET = struct.pack("ii", 1, 0)


# -- /proc ------------------------------------------------------------------------------


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def pid_of(node: Node) -> int:
    assert node.process is not None
    return node.process.proc.pid


class RssSampler(threading.Thread):
    """The largest VmRSS of ``pid`` seen while running (sampled every 50 ms)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = status_kb(pid, "VmRSS")
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.peak_kb = max(self.peak_kb, status_kb(self.pid, "VmRSS"))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak_kb, status_kb(self.pid, "VmRSS"))


class Drain(threading.Thread):
    """Keep reading a node's log pipe: a node that logs every link would otherwise fill
    it and block on its next line."""

    def __init__(self, node: Node) -> None:
        super().__init__(daemon=True)
        self.node = node
        self._done = threading.Event()

    def run(self) -> None:
        process = self.node.process
        assert process is not None
        while not self._done.is_set() and process._read(0.2) != "eof":
            process.output = process.output[-100_000:]

    def stop(self) -> None:
        self._done.set()
        self.join()


def wait_idle(pid: int, limit: float = 180.0) -> float:
    """Wait until ``pid`` uses under 2% of a core over half a second; its CPU seconds."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - last < 0.01:
            return now
        last = now
    return last


def frame(body: bytes) -> bytes:
    return _U16.pack(len(body)) + body


def handshake(sock: socket.socket, key: bytes) -> bytes:
    """Our 38 bytes out, theirs in: the remote key."""
    sock.sendall(encode_meta(key))
    meta = b""
    while len(meta) < META_SIZE:
        chunk = sock.recv(META_SIZE - len(meta))
        if not chunk:
            raise ConnectionError("closed during the handshake")
        meta += chunk
    return decode_meta(meta)


def discard_input(sock: socket.socket) -> None:
    """Read and forget whatever the target sends, so that its writes never block."""
    try:
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass


# -- (a) the attacker -------------------------------------------------------------------


def attack(host: str, port: int, target: bytes, packets: int) -> int:
    """The attacker process: link, send the flood, report progress, hold the link until
    stdin closes (keepalives every 2 s)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up
    payload = encode_traffic_header(0, 0, 1)
    bodies = [
        frame(wire.path_traffic([0], os.urandom(32), target, 1, payload + os.urandom(60)))
        for _ in range(packets)
    ]
    sock = socket.create_connection((host, port))
    handshake(sock, NodeKey.generate().public)
    threading.Thread(target=discard_input, args=(sock,), daemon=True).start()
    print(f"linked, {sum(map(len, bodies))} bytes to send", flush=True)
    quarter = max(1, packets // 4)
    for start in range(0, packets, 512):
        sock.sendall(b"".join(bodies[start : start + 512]))
        sent = min(packets, start + 512)
        if sent // quarter != start // quarter or sent == packets:
            print(f"sent {sent}", flush=True)
    print("done", flush=True)
    while not select.select([sys.stdin], [], [], 2.0)[0]:
        sock.sendall(frame(wire.KEEPALIVE))
    sock.close()
    return 0


@dataclass
class FloodResult:
    target: str
    packets: int
    cpu_s: float = 0.0
    wall_s: float = 0.0
    rss_before_kb: int = 0
    rss_peak_kb: int = 0
    rss_after_kb: int = 0
    genuine_before_s: float | None = None
    genuine_during_s: float | None = None
    genuine_asked_at: float = 0.0  # seconds into the flood
    ctl_s: float = 0.0

    @property
    def us_per_packet(self) -> float:
        return 1e6 * self.cpu_s / self.packets


def timed_nodeinfo(asker: Node, key: str, limit: float = 60.0) -> float | None:
    """Seconds until ``asker`` has the NodeInfo of ``key`` (retrying failures), or None."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        done = subprocess.run(
            [YGGDRASILCTL, "-endpoint", asker.admin, "-json", "getNodeInfo", f"key={key}"],
            capture_output=True,
            text=True,
            timeout=limit,
        )
        try:
            if key in json.loads(done.stdout):
                return time.monotonic() - started
        except ValueError:
            pass  # "timeout" or another error text: ask again
    return None


def ctl_seconds(node: Node) -> float:
    started = time.monotonic()
    node.ctl("getSelf")
    return time.monotonic() - started


def flood(kind: type[Node], work: str, packets: int, nodes: list[Node]) -> FloodResult:
    name = "ours" if kind is YggNode else "Go 0.4.7"
    result = FloodResult(name, packets)
    tag = kind.__name__.lower()
    target = kind(f"{work}/{tag}-target", listen=[LOOPBACK])
    nodes.append(target.start())
    drain = Drain(target)
    drain.start()
    uri = target.listen_uri("tcp")
    genuine = [GoNode(f"{work}/{tag}-genuine{i}", peers=[uri]) for i in range(2)]
    for node in genuine:
        nodes.append(node.start())
        target.wait_peer(node.key)
        node.wait_peer(target.key)
    pid = pid_of(target)
    time.sleep(3.0)  # the tree and the DHT settle
    result.ctl_s = ctl_seconds(genuine[1])
    result.genuine_before_s = timed_nodeinfo(genuine[0], target.key)
    time.sleep(2.0)
    idle_start, idle_cpu = time.monotonic(), cpu_seconds(pid)
    time.sleep(2.0)
    idle_rate = (cpu_seconds(pid) - idle_cpu) / (time.monotonic() - idle_start)
    result.rss_before_kb = status_kb(pid, "VmRSS")
    sampler = RssSampler(pid)
    sampler.start()
    host, port = uri.removeprefix("tcp://").rsplit(":", 1)
    cpu0, spawned = cpu_seconds(pid), time.monotonic()
    wall0 = spawned  # reset when the attacker has its frames ready and is linked
    attacker = subprocess.Popen(
        [PYTHON, __file__, "--attack", host, port, target.key, str(packets)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C reaches only us; we stop it
    )
    try:
        lines = []
        assert attacker.stdout is not None
        for line in attacker.stdout:
            lines.append(line.strip())
            if line.startswith("linked"):
                wall0 = time.monotonic()
            if line.startswith("sent ") and result.genuine_during_s is None:
                # The socket takes the first quarter at once: let the target get going.
                time.sleep(max(0.0, wall0 + GENUINE_AFTER - time.monotonic()))
                result.genuine_asked_at = time.monotonic() - wall0
                result.genuine_during_s = timed_nodeinfo(genuine[1], target.key)
            if line.strip() == "done":
                break
        else:
            raise SystemExit(f"the attacker stopped: {' / '.join(lines[-3:])}")
        cpu1 = wait_idle(pid)
        result.wall_s = time.monotonic() - wall0
        idle = idle_rate * (time.monotonic() - spawned)
        result.cpu_s = max(0.0, cpu1 - cpu0 - idle)
        result.rss_peak_kb = sampler.stop()
        result.rss_after_kb = status_kb(pid, "VmRSS")
    finally:
        if attacker.poll() is None:
            attacker.stdin.close()  # type: ignore[union-attr]
            try:
                attacker.wait(10)
            except subprocess.TimeoutExpired:
                attacker.kill()
                attacker.wait()
        drain.stop()
        for node in [*genuine, target]:
            node.stop()
            nodes.remove(node)
    return result


# -- (b) flapping peers -----------------------------------------------------------------


def link_start(key: NodeKey, remote: bytes) -> bytes:
    """The frames a node writes first on a new link (its tree announcement), made by
    ygg's own routing core."""
    bodies: list[bytes] = []

    class Collect:
        def write_body(self, body: bytes) -> None:
            bodies.append(body)

        def close(self, reason: str) -> None:
            pass

    router = Router(key, Clock(), deliver=lambda source, payload: None)
    router.add_peer(remote, Collect())
    router.close()
    return b"".join(map(frame, bodies))


def flapper(host: str, port: int, stop: threading.Event, stats: Counter, seed: int) -> None:
    """Links that come and go: a fresh or a reused key, a real handshake (or a reset
    before it ends) and the link-start frames, then FIN or TCP reset."""
    rng = random.Random(seed)
    reused = NodeKey.generate()
    while not stop.is_set():
        mode = rng.choice(("fin", "reset", "reset", "reset-mid-handshake"))
        key = reused if rng.random() < 0.5 else NodeKey.generate()
        try:
            sock = socket.create_connection((host, port), timeout=5)
        except OSError:
            stats["connect-failed"] += 1
            stop.wait(0.5)
            continue
        try:
            if mode == "reset-mid-handshake":
                sock.sendall(encode_meta(key.public)[: rng.randrange(1, META_SIZE)])
            else:
                remote = handshake(sock, key.public)
                stats["handshakes"] += 1
                sock.sendall(link_start(key, remote))
                until = time.monotonic() + rng.uniform(0.05, 2.0)
                while time.monotonic() < until and not stop.is_set():
                    if select.select([sock], [], [], 0.1)[0] and not sock.recv(1 << 16):
                        break
        except OSError:
            stats["errors"] += 1
        if mode != "fin":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        sock.close()
        stats[mode] += 1
        stop.wait(rng.uniform(0.0, 0.2))


def restarter(nodes: list[GoNode], stop: threading.Event, stats: Counter, every: float) -> None:
    """Restart the Go nodes one after another, by SIGTERM and by SIGKILL in turn."""
    turn = 0
    while not stop.wait(every):
        node = nodes[turn % len(nodes)]
        try:
            node.stop(signal.SIGKILL if turn % 2 else signal.SIGTERM)
            if stop.is_set():
                return
            node.start()
        except (AssertionError, OSError) as e:
            stats["go-restart-failed"] += 1
            print(f"restarting {node}: {str(e).splitlines()[0]}", file=sys.stderr)
        else:
            stats["go-restarts"] += 1
        turn += 1


@dataclass
class Sample:
    t: float
    rss_kb: int
    fds: int
    links: int


@dataclass
class FlapResult:
    seconds: float
    baseline: Sample
    during: list[Sample] = field(default_factory=list)
    after: list[Sample] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)
    fds_back_s: float | None = None
    rss_back_s: float | None = None


def sample(node: Node, started: float) -> Sample:
    pid = pid_of(node)
    t, rss, fds = round(time.monotonic() - started, 1), status_kb(pid, "VmRSS"), open_fds(pid)
    try:
        links = len(node.peers())  # after counting fds: the admin connection is one
    except (AssertionError, subprocess.SubprocessError, ValueError):
        links = -1
    return Sample(t, rss, fds, links)


def flap(work: str, seconds: float, flappers: int, nodes: list[Node]) -> FlapResult:
    target = YggNode(f"{work}/flap-target", listen=[LOOPBACK])
    nodes.append(target.start())
    drain = Drain(target)
    drain.start()
    uri = target.listen_uri("tcp")
    host, port = uri.removeprefix("tcp://").rsplit(":", 1)
    time.sleep(3.0)
    result = FlapResult(seconds, sample(target, time.monotonic()))
    go = [GoNode(f"{work}/flap-go{i}", peers=[uri]) for i in range(2)]
    for node in go:
        nodes.append(node.start())
    stop = threading.Event()
    stats: Counter = result.stats
    threads = [
        threading.Thread(
            target=flapper, args=(host, int(port), stop, stats, i), daemon=True, name=f"flap{i}"
        )
        for i in range(flappers)
    ]
    threads.append(threading.Thread(target=restarter, args=(go, stop, stats, 7.0), daemon=True))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() - started < seconds:
            time.sleep(min(10.0, max(0.0, seconds - (time.monotonic() - started))))
            result.during.append(sample(target, started))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        for node in go:
            node.stop()
            nodes.remove(node)
    ended = time.monotonic()
    while time.monotonic() - ended < 60:
        time.sleep(1.0)
        row = sample(target, ended)
        result.after.append(row)
        if result.rss_back_s is None and row.rss_kb <= RSS_BACK * result.baseline.rss_kb:
            result.rss_back_s = row.t
        if row.fds <= result.baseline.fds and row.links == 0:
            if result.fds_back_s is None:
                result.fds_back_s = row.t
            if row.t - result.fds_back_s >= 10:
                break
    drain.stop()
    target.stop()
    nodes.remove(target)
    return result


# -- reports ----------------------------------------------------------------------------


def mib(kb: int) -> str:
    return f"{kb / 1024:.1f}"


def seconds_text(value: float | None) -> str:
    return "failed" if value is None else f"{value:.2f} s"


def print_flood(results: list[FloodResult]) -> None:
    print(f"\n(a) flood: {results[0].packets} path-traffic frames from fresh random keys")
    print(
        "| target | CPU s | µs per bogus packet | RSS before → peak MiB | "
        "genuine session before / during flood |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        during = (
            f"{seconds_text(r.genuine_during_s)} (asked {r.genuine_asked_at:.1f} s into "
            f"{r.wall_s:.1f} s of flood)"
        )
        growth = mib(r.rss_peak_kb - r.rss_before_kb)
        print(
            f"| {r.target} | {r.cpu_s:.2f} | {r.us_per_packet:.1f} | "
            f"{mib(r.rss_before_kb)} → {mib(r.rss_peak_kb)} (+{growth}) | "
            f"{seconds_text(r.genuine_before_s)} / {during} |"
        )
    by_name = {r.target: r for r in results}
    ours, go = by_name.get("ours"), by_name.get("Go 0.4.7")
    if ours and go and go.us_per_packet:
        print(
            f"ours/Go: CPU per bogus packet {ours.us_per_packet / go.us_per_packet:.3f}, "
            f"peak RSS {ours.rss_peak_kb / max(1, go.rss_peak_kb):.2f}, RSS growth "
            f"+{mib(ours.rss_peak_kb - ours.rss_before_kb)} vs "
            f"+{mib(go.rss_peak_kb - go.rss_before_kb)} MiB"
        )
    print(
        "(genuine session: a fresh Go node's getNodeInfo of the target through yggdrasilctl, "
        f"which alone takes ~{1000 * results[0].ctl_s:.0f} ms)"
    )


def print_flap(result: FlapResult) -> None:
    base = result.baseline
    stats = result.stats
    print(
        f"\n(b) flapping peers for {result.seconds:.0f} s: {stats['handshakes']} handshakes, "
        f"{stats['reset']} reset after it, {stats['reset-mid-handshake']} reset during it, "
        f"{stats['fin']} closed with FIN, {stats['go-restarts']} Go restarts, "
        f"{stats['errors']} link errors seen by the clients"
    )
    print("| phase | t s | RSS MiB | open fds | peers listed |")
    print("|---|---|---|---|---|")
    print(f"| baseline | 0 | {mib(base.rss_kb)} | {base.fds} | {base.links} |")
    for row in result.during:
        print(f"| flapping | {row.t:.0f} | {mib(row.rss_kb)} | {row.fds} | {row.links} |")
    shown = result.after[:3] + result.after[-1:] if len(result.after) > 4 else result.after
    for row in shown:
        print(f"| after | {row.t:.0f} | {mib(row.rss_kb)} | {row.fds} | {row.links} |")
    last = result.after[-1] if result.after else base
    if result.fds_back_s is None:
        print(f"fds did not come back to the baseline ({base.fds}) within 60 s: {last.fds}")
    else:
        print(f"fds back to the baseline ({base.fds}) {result.fds_back_s:.0f} s after the end")
    peak = max(row.rss_kb for row in [*result.during, *result.after])
    back = (
        f"back within 5% of the baseline {result.rss_back_s:.0f} s after the end"
        if result.rss_back_s is not None
        else "not back within 5% of the baseline"
    )
    print(
        f"RSS: baseline {mib(base.rss_kb)}, peak {mib(peak)}, {last.t:.0f} s after the end "
        f"{mib(last.rss_kb)} MiB ({last.rss_kb / base.rss_kb:.2f}x): {back}"
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--flappers", type=int, default=8)
    parser.add_argument("--only", choices=("flood", "flap"))
    parser.add_argument("--attack", nargs=4, metavar=("HOST", "PORT", "KEY", "N"), help="internal")
    args = parser.parse_args()
    if args.attack:
        host, port, key, count = args.attack
        return attack(host, int(port), bytes.fromhex(key), int(count))
    if os.geteuid() != 0:
        raise SystemExit("bench/soak.py runs as root (as the other benchmarks do)")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    signal.signal(signal.SIGTERM, _interrupt)
    work = tempfile.mkdtemp(prefix="ysoak", dir="/tmp")
    nodes: list[Node] = []
    try:
        if args.only != "flap":
            results = []
            for kind in (YggNode, GoNode):
                print(f"flooding {kind.__name__} …", file=sys.stderr, flush=True)
                results.append(flood(kind, work, args.packets, nodes))
            print_flood(results)
        if args.only != "flood":
            print(f"flapping for {args.seconds:.0f} s …", file=sys.stderr, flush=True)
            print_flap(flap(work, args.seconds, args.flappers, nodes))
    except KeyboardInterrupt:
        print("soak: interrupted; nodes stopped, temporary files removed", file=sys.stderr)
        return 130
    finally:
        for node in nodes:
            try:
                node.stop()
            except (AssertionError, OSError, KeyboardInterrupt):
                if node.process is not None:
                    node.process.kill()
        remove_tree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
