"""What Linux does with IPv6 packets written into a TUN, for tests/test_ipv6_kernel.py.

Run as root in a network namespace of its own (``unshare --net python -m tests.tun_probe``):
reads a JSON list of packets (hex; from ``SOURCE`` to ``DEST``, UDP inside, directly or after
a Hop-by-Hop header) on stdin, writes each into a TUN holding ``DEST``, and prints a JSON
list: for each packet, how many bytes a raw UDP socket received (the kernel's IPv6 input
took it, trimmed or whole), or null (it dropped it).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import time

SOURCE = "fd59:7979::2"
DEST = "fd59:7979::1"
NAME = b"probe0"
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


def main() -> int:
    packets = [bytes.fromhex(text) for text in json.load(sys.stdin)]
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", NAME, IFF_TUN | IFF_NO_PI))
    name = NAME.decode()
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "set", name, "up"],
        ["ip", "-6", "addr", "add", f"{DEST}/64", "dev", name, "nodad"],
    ):
        subprocess.run(command, check=True)
    raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
    raw.bind((DEST, 0))
    raw.settimeout(0.5)
    time.sleep(0.2)  # the address usable
    received = []
    for packet in packets:
        os.write(tun, packet)
        try:
            received.append(len(raw.recv(70000)))
        except TimeoutError:
            received.append(None)
    print(json.dumps(received))
    return 0


if __name__ == "__main__":
    sys.exit(main())
