"""A LAN host's view of Router Advertisements, for the RAdv namespace tests.

Run inside a namespace (``ip netns exec NS python -m tests.ndp_probe …``): sends the given
ICMPv6 messages (hex, each optionally ``@HOPLIMIT``; 255 by default) to all-routers on an
interface, and prints as JSON the Router Advertisements heard within ``--listen`` seconds
of sending (or the first ``--count`` of them)::

    python -m tests.ndp_probe --interface veth0 --listen 2 8500000000000000 8501000000000000@64
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import struct
import sys
import time

from ygg.popura.radv import ndp

ALL_ROUTERS = "ff02::2"


def _only(kind: int) -> bytes:
    words = [0xFFFFFFFF] * 8
    words[kind >> 5] &= ~(1 << (kind & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interface", required=True)
    parser.add_argument("--listen", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0: no)")
    parser.add_argument("messages", nargs="*", help="ICMPv6 messages in hex[@hop limit]")
    args = parser.parse_args(argv)
    index = socket.if_nametoindex(args.interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    sock.setsockopt(socket.IPPROTO_ICMPV6, 1, _only(ndp.ROUTER_ADVERTISEMENT))
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    start = time.monotonic()
    for message in args.messages:
        data, _, hops = message.partition("@")
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, int(hops or 255))
        sock.sendto(bytes.fromhex(data), (ALL_ROUTERS, 0, 0, index))
    heard = []
    deadline = start + args.listen
    while (left := deadline - time.monotonic()) > 0 and not 0 < args.count <= len(heard):
        if not select.select([sock], [], [], left)[0]:
            break
        data, ancillary, _, source = sock.recvmsg(4096, socket.CMSG_SPACE(4))
        hop_limit = next(
            (
                int.from_bytes(v[:4], sys.byteorder)
                for level, kind, v in ancillary
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT
            ),
            None,
        )
        ra = ndp.decode_router_advertisement(data)
        heard.append(
            {
                "after": round(time.monotonic() - start, 3),
                "source": source[0].split("%", 1)[0],
                "hop_limit": hop_limit,
                "router_lifetime": ra.router_lifetime,
                "hex": data.hex(),
            }
        )
    print(json.dumps(heard))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
