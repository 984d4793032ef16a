"""The JSON admin socket under bad input: it keeps its limits and the node keeps going.

A request may be at most 1 MiB; at most 128 connections are served at once, 32 from one
user, and a newcomer takes the place of the longest-idle one.  Each test runs ours as a
process, feeds its socket something hostile, and checks from /proc that its memory and
file descriptors come back near where they were and that it still answers.
"""

from __future__ import annotations

import os
import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import require_go
from tests.nodes import GoNode, Node, YggNode, remove_tree, short_tempdir, wait_until

MiB = 1 << 20
#: How much the node's RSS may grow over a test (it stays within ~2 MiB in practice).
RSS_SLACK = 8 * MiB


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def connect(node: Node) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(node.admin[7:])  # blocking: waits while the listen backlog is full
    sock.settimeout(10)
    return sock


def flood(sock: socket.socket, prefix: bytes, chunk: bytes, total: int) -> int:
    """Send ``prefix`` then ``chunk`` until ``total`` bytes went or the node hung up."""
    sent = 0
    try:
        sock.sendall(prefix)
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
        sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def read_all(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


class LimitCase(SynchronousTestCase):
    def setUp(self) -> None:
        require_go()  # the harness drives the node with yggdrasilctl
        self.dir = short_tempdir("yal")
        self.addCleanup(remove_tree, self.dir)
        self.node = YggNode(f"{self.dir}/ours")
        self.node.start()
        self.addCleanup(self.node.stop)
        self.pid = self.node.process.proc.pid  # type: ignore[union-attr]
        for _ in range(5):  # warm up: the first replies allocate what later ones reuse
            self.node.ctl("getSelf")
        self.rss = rss(self.pid)
        self.fds = open_fds(self.pid)

    def assert_unharmed(self) -> None:
        self.assertEqual(self.node.ctl("getSelf")["key"], self.node.key)
        self.assertLess(rss(self.pid) - self.rss, RSS_SLACK)
        wait_until(lambda: open_fds(self.pid) <= self.fds, 20, "connections to close")
        self.assertIsNone(self.node.process.proc.poll())  # type: ignore[union-attr]


class OversizedRequestTests(LimitCase):
    def test_ten_megabytes_of_one_string(self) -> None:
        """An unterminated request: refused after 1 MiB with Go's error, connection
        closed; the rest of the 10 MB is never buffered."""
        started = time.monotonic()
        sock = connect(self.node)
        with sock:
            sent = flood(sock, b'{"request":"', b"a" * 65536, 10_000_000)
            reply = read_all(sock)
        self.assertLess(sent, 4 * MiB)
        self.assertIn(b'"error": "Failed to find request"', reply)
        self.assertLess(time.monotonic() - started, 5)
        self.assert_unharmed()

    def test_ten_megabytes_of_whitespace(self) -> None:
        """Whitespace between requests is skipped as it comes: nothing accumulates."""
        sock = connect(self.node)
        with sock:
            sent = flood(sock, b"", b" \n\t" * 21846, 10_000_000)
            read_all(sock)
        self.assertGreaterEqual(sent, 10_000_000)
        self.assert_unharmed()

    def test_many_clients_each_near_the_limit(self) -> None:
        """Twenty clients each holding just under 1 MiB of an unfinished request."""
        socks = [connect(self.node) for _ in range(20)]
        try:
            for sock in socks:
                sock.sendall(b'{"request":"' + b"b" * (MiB - 64))
            self.assertEqual(self.node.ctl("getTUN"), {"enabled": False})
            self.assertLess(rss(self.pid) - self.rss, 20 * 3 * MiB)
        finally:
            for sock in socks:
                sock.close()
        time.sleep(0.5)
        self.assertEqual(self.node.ctl("getSelf")["key"], self.node.key)
        wait_until(lambda: open_fds(self.pid) <= self.fds, 5, "connections to close")

    def test_hostile_json(self) -> None:
        """Deep nesting and a 64 KiB number: the connection ends, the node goes on."""
        for prefix, chunk in ((b"", b"[" * 65536), (b'{"request":', b"1" * 65536)):
            sock = connect(self.node)
            with sock:
                flood(sock, prefix, chunk, 2 * MiB)
                read_all(sock)
        self.assert_unharmed()

    def test_hostile_json_answered_as_go_does(self) -> None:
        """Absurd nesting and a 64 KiB number get Go's error reply, and nothing logged."""
        for prefix, chunk in ((b"", b"[" * 65536), (b'{"request":', b"1" * 65536)):
            sock = connect(self.node)
            with sock:
                flood(sock, prefix, chunk, 2 * MiB)
                self.assertIn(b"Failed to", read_all(sock))
        self.assertNotIn("Unhandled Error", self.node.log)


class ConnectionFloodTests(LimitCase):
    def test_five_hundred_connections(self) -> None:
        """One user's 500 idle connections: it holds 32 places at most, each newcomer
        closing its longest idle; yggdrasilctl (the same user) is still answered."""
        socks = []
        try:
            for _ in range(500):
                socks.append(connect(self.node))
            closed: set[int] = set()

            def count_closed() -> int:
                for i, sock in enumerate(socks):
                    if i in closed:
                        continue
                    sock.setblocking(False)
                    try:
                        if sock.recv(1) == b"":
                            closed.add(i)
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed.add(i)
                return len(closed)

            wait_until(lambda: count_closed() >= 500 - 32, 10, "the extra connections to close")
            time.sleep(0.3)
            self.assertEqual(count_closed(), 500 - 32)  # the newest 32 stay open
            self.assertEqual(closed, set(range(500 - 32)))
            self.assertLessEqual(open_fds(self.pid), self.fds + 32)
            self.assertLess(rss(self.pid) - self.rss, RSS_SLACK)
            self.assertEqual(self.node.ctl("getSelf")["key"], self.node.key)
        finally:
            for sock in socks:
                sock.close()
        wait_until(lambda: open_fds(self.pid) <= self.fds, 5, "connections to close")
        self.assert_unharmed()

    def test_connections_that_come_and_go(self) -> None:
        """2000 short connections, half of them cut mid-request.  Those the node has not
        yet seen close cannot crowd out the next yggdrasilctl call: a newcomer drops
        connections whose peer is gone, else closes the longest idle one, and is refused
        only if every one of its user's connections is busy answering — which getSelf
        never is, as it answers at once."""
        for i in range(2000):
            with connect(self.node) as sock:
                sock.sendall(b'{"request":"getSelf"' + (b"}" if i % 2 else b""))
        self.assert_unharmed()


class PipelineTests(LimitCase):
    def test_thousands_of_pipelined_requests(self) -> None:
        """Attack 2 over the real socket: 2000 keepalive requests in one write, then a
        half-close: 2000 replies in order, then Go's 'Failed to find request'."""
        sock = connect(self.node)
        with sock:
            sock.sendall(b'{"request":"getSelf","keepalive":true}' * 2000)
            sock.shutdown(socket.SHUT_WR)
            reply = read_all(sock)
        self.assertEqual(reply.count(f'"key": "{self.node.key}"'.encode()), 2000)
        # (the node runs v0.5 too: 0.5.12's envelope, the unread request echoed as "")
        self.assertTrue(
            reply.endswith(
                b'"error": "Failed to find request",\n  "request": {\n    "request": ""\n  },\n'
                b'  "response": null\n}\n'
            )
        )
        self.assertNotIn("Unhandled", self.node.log)
        self.assertNotIn("RecursionError", self.node.log)
        self.assert_unharmed()


class HalfCloseTests(SynchronousTestCase):
    """A client that half-closes after writing (``socat``, ``nc -N``)."""

    def test_half_close_as_go(self) -> None:
        """Every request written before the half-close is answered, then
        'Failed to find request', as Go answers."""
        require_go()
        directory = short_tempdir("yah")
        self.addCleanup(remove_tree, directory)
        got = []
        for node in (GoNode(f"{directory}/go"), YggNode(f"{directory}/ours")):
            node.start()
            self.addCleanup(node.stop)
            with connect(node) as sock:
                sock.sendall(b'{"request":"getTUN","keepalive":true}')
                sock.shutdown(socket.SHUT_WR)
                got.append(read_all(sock).count(b'"status"'))
        self.assertEqual(got, [2, 2])
