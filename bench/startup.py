"""Start-up time, ours against the Go nodes (needs root).

Two network namespaces joined by a veth pair; in one a Go node listens (0.4.7 for the v0.4
row, 0.5.12 for the row where ours runs both versions), in the other the node measured
starts with the everyday config (a TUN, the admin socket, that peer, multicast on lo).
From the moment the process is started: the time to its "Your IPv6 address" line, to its
first "Connected" line (the peer up), and the CPU it has used by then.  --runs starts
(5) after one to warm the page cache; medians.

    python bench/startup.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import PYTHON  # noqa: E402
from tests.nodes import GoNode, GoNode05, NetnsPair, Node, YggNode, remove_tree  # noqa: E402
from tests.processes import child_env, cpu_seconds  # noqa: E402

PORT = 14201
ADDRESS_LINE = "Your IPv6 address is"
PEER_LINE = "Connected "


@dataclass
class Start:
    address_s: float
    peer_s: float
    cpu_s: float  # at the address line


@dataclass
class Row:
    name: str
    go: list[Start]
    ours: list[Start]


def timed_start(node: Node, timeout: float = 30.0) -> Start:
    """Start ``node``'s process as Node.start would, timing the lines as they arrive."""
    node.write_config()
    argv = node.wrap(node.argv())
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child_env(),
        cwd=node.dir,
    )
    address = peer = cpu = None
    output, pending = "", b""
    try:
        os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            while (peer is None or address is None) and time.monotonic() - started < timeout:
                if not sel.select(0.5):
                    continue
                chunk = proc.stdout.read()  # type: ignore[union-attr]
                now = time.monotonic() - started
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    line = raw.decode(errors="replace")
                    output += line + "\n"
                    if address is None and ADDRESS_LINE in line:
                        address, cpu = now, cpu_seconds(proc.pid)
                    if peer is None and PEER_LINE in line:
                        peer = now
        if address is None or peer is None or cpu is None:
            raise SystemExit(f"bench/startup.py: {node} did not come up:\n{output}")
        return Start(round(address, 3), round(peer, 3), round(cpu, 3))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(kind: type[Node], directory: str, pair: NetnsPair, runs: int, **kw: Any) -> list[Start]:
    node = kind(
        directory,
        netns=pair.a,
        tun="ygg0",
        peers=[f"tcp://[{pair.IP_B}]:{PORT}"],
        multicast="^lo$",
        **kw,
    )
    timed_start(node)  # warm the page cache
    return [timed_start(node) for _ in range(runs)]


def median(starts: list[Start], field: str) -> float:
    return statistics.median(getattr(s, field) for s in starts)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/startup.py needs root (namespaces and TUN devices)")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    # Bytecode, as an install has it (see bench/memory.py).
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "ygg")], check=True)
    work = tempfile.mkdtemp(prefix="ybs", dir="/tmp")
    pair = NetnsPair("ybs").up()
    rows = []
    try:
        for name, go_kind, versions in (
            ("v0.4 (Go 0.4.7)", GoNode, ("0.4",)),
            ("both (Go 0.5.12)", GoNode05, ("0.4", "0.5")),
        ):
            print(f"measuring {name} …", file=sys.stderr, flush=True)
            peer = go_kind(
                f"{work}/{name[:4]}peer", netns=pair.b, listen=[f"tcp://[{pair.IP_B}]:{PORT}"]
            )
            peer.start()
            try:
                go = measure(go_kind, f"{work}/{name[:4]}go", pair, args.runs)
                ours = measure(
                    YggNode, f"{work}/{name[:4]}ours", pair, args.runs, versions=versions
                )
            finally:
                peer.stop()
            rows.append(Row(name, go, ours))
    finally:
        pair.down()
        remove_tree(work)
    if args.json:
        print(json.dumps([asdict(r) for r in rows]))
        return 0
    print(f"Start-up, median of {args.runs} (s): from exec to the line, and CPU by the address")
    print('| row | node | "Your IPv6 address" | first peer up | CPU s |')
    print("|---|---|---|---|---|")
    for row in rows:
        for label, starts in (("Go", row.go), ("ours", row.ours)):
            print(
                f"| {row.name} | {label} | {median(starts, 'address_s'):.3f} "
                f"| {median(starts, 'peer_s'):.3f} | {median(starts, 'cpu_s'):.2f} |"
            )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: cleaned up on the way out; one line, no traceback
        print("bench/startup.py: interrupted", file=sys.stderr)
        sys.exit(130)
