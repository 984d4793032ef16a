"""The meshname DNS server on real sockets, in process, asked with ``dig``.

Remote names are forwarded to a fake upstream DNS server on ::1, through the forwarder's
``upstream`` seam: port 53 of a 200::/7 address needs the TUN (the two-node test over the
mesh lives with the TUN tests).  Also what bad input must not break: malformed packets,
oversize queries over UDP and TCP, a flood of a few thousand queries.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol, ServerFactory
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.names import dns
from twisted.protocols.basic import Int16StringReceiver
from twisted.trial.unittest import TestCase

from tests.helpers import require_tool
from tests.test_meshname import LABEL, RECORDS, REMOTE_LABEL, FakeNode, query_bytes
from ygg.popura.meshname import MeshnameConfig
from ygg.popura.meshname.service import MeshnameService

_HEADER = re.compile(r"status: (\w+)")
_FLAGS = re.compile(r";; flags: ([a-z ]*);")


def parse_dig(text: str) -> dict[str, Any]:
    """dig's output as status, flags and the answer section's (name, ttl, type, data)."""
    status = _HEADER.search(text)
    flags = _FLAGS.search(text)
    answers, section = [], None
    for line in text.splitlines():
        if line.startswith(";; ") and line.endswith("SECTION:"):
            section = line[3:-9].strip()
            continue
        if section == "ANSWER" and line and not line.startswith(";"):
            name, ttl, _cls, rtype, data = line.split(None, 4)
            answers.append((name, int(ttl), rtype, data))
        elif not line:
            section = None
    return {
        "status": status.group(1) if status else None,
        "flags": flags.group(1).split() if flags else [],
        "answers": answers,
        "text": text,
    }


def dig_args(port: int, name: str, rtype: str = "AAAA", *extra: str) -> list[str]:
    return ["@::1", "-p", str(port), "+tries=1", "+time=4", *extra, "-q", name, "-t", rtype]


def dig(port: int, name: str, rtype: str = "AAAA", *extra: str) -> defer.Deferred:
    """Run dig without blocking the reactor; fires with parse_dig's dict."""
    d = getProcessOutputAndValue(
        require_tool("dig"), dig_args(port, name, rtype, *extra), env=dict(os.environ)
    )
    return d.addCallback(lambda result: parse_dig(result[0].decode()))


class FakeUpstream(DatagramProtocol):
    """A remote node's DNS server, by the first label asked: www → AAAA 200::1, nx →
    NXDOMAIN with an SOA, big → a TXT too large for UDP (TC; whole over TCP), silent… →
    no reply at all."""

    def __init__(self) -> None:
        self.asked: list[dns.Query] = []

    def reply(self, data: bytes, stream: bool) -> bytes | None:
        request = dns.Message()
        request.fromStr(data)
        query = request.queries[0]
        self.asked.append(query)
        first = query.name.name.split(b".")[0].lower()
        reply = dns.Message(id=request.id, answer=1, auth=1, recDes=request.recDes, maxSize=0)
        reply.queries = request.queries
        name = query.name.name
        if first.startswith(b"silent"):
            return None
        if first == b"www":
            reply.answers = [dns.RRHeader(name, dns.AAAA, dns.IN, 60, dns.Record_AAAA("200::1"))]
        elif first == b"nx":
            reply.rCode = dns.ENAME
            soa = dns.Record_SOA(b"ns.remote", b"me.remote", 1, 1, 1, 1, 30)
            reply.authority = [dns.RRHeader(b"remote.meshname", dns.SOA, dns.IN, 30, soa)]
        elif first == b"big":
            if stream:
                reply.answers = [
                    dns.RRHeader(
                        name, dns.TXT, dns.IN, 60, dns.Record_TXT(b"%03d" % i + b"x" * 200)
                    )
                    for i in range(8)
                ]
            else:
                reply.trunc = 1
        return reply.toStr()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        out = self.reply(data, stream=False)
        if out is not None:
            self.transport.write(out, addr)


class FakeUpstreamStream(Int16StringReceiver):
    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream

    def stringReceived(self, data: bytes) -> None:
        out = self.upstream.reply(data, stream=True)
        if out is not None:
            self.sendString(out)


class ServerTestCase(TestCase):
    timeout = 60

    def setUp(self) -> None:
        require_tool("dig")
        self.upstream = FakeUpstream()
        self.upstream_udp = reactor.listenUDP(0, self.upstream, interface="::1")
        self.addCleanup(self.upstream_udp.stopListening)
        port = self.upstream_udp.getHost().port
        factory = ServerFactory.forProtocol(lambda: FakeUpstreamStream(self.upstream))
        factory.noisy = False
        self.upstream_tcp = reactor.listenTCP(port, factory, interface="::1")
        self.addCleanup(self.upstream_tcp.stopListening)
        self.upstream_address = ("::1", port)

    def start(self, listen: str = "[::1]:0", **kwargs: Any) -> MeshnameService:
        cfg = MeshnameConfig(enable=True, listen=listen, config={LABEL: tuple(RECORDS)})
        kwargs.setdefault("upstream", lambda address: self.upstream_address)
        kwargs.setdefault("timeout", 1.0)
        service = MeshnameService(FakeNode(reactor), cfg, **kwargs)
        service.startService()
        self.addCleanup(service.stopService)
        return service


class AnswerTests(ServerTestCase):
    @defer.inlineCallbacks
    def test_own_records_and_refusal(self):
        port = self.start().address[1]
        reply = yield dig(port, f"{LABEL}.meshname")
        self.assertEqual(reply["status"], "NOERROR")
        self.assertIn("aa", reply["flags"])
        self.assertEqual(
            reply["answers"],
            [(f"{LABEL}.meshname.", 3600, "AAAA", "201:1697:567c:1375:3fd1:3a2b:4b85:cd1e")],
        )
        reply = yield dig(port, f"_http._tcp.{LABEL}.meshname", "SRV")
        self.assertEqual([a[3] for a in reply["answers"]], [f"10 5 80 www.{LABEL}.meshname."])
        reply = yield dig(port, f"{LABEL}.meshname", "TXT", "+tcp")
        self.assertEqual([a[3] for a in reply["answers"]], ['"hello world" "v=1"'])
        reply = yield dig(port, f"nothing.{LABEL}.meshname")
        self.assertEqual(reply["status"], "NXDOMAIN")
        reply = yield dig(port, "example.com", "A")
        self.assertEqual((reply["status"], reply["answers"]), ("REFUSED", []))

    @defer.inlineCallbacks
    def test_forwarding(self):
        port = self.start().address[1]
        reply = yield dig(port, f"www.{REMOTE_LABEL}.meshname")
        self.assertEqual(reply["status"], "NOERROR")
        self.assertNotIn("aa", reply["flags"])
        self.assertEqual(
            reply["answers"], [(f"www.{REMOTE_LABEL}.meshname.", 60, "AAAA", "200::1")]
        )
        (asked,) = self.upstream.asked
        self.assertEqual(asked.name.name, f"www.{REMOTE_LABEL}.meshname".encode())
        reply = yield dig(port, f"nx.{REMOTE_LABEL}.ygg")
        self.assertEqual(reply["status"], "NXDOMAIN")
        self.assertIn("remote.meshname.", reply["text"])  # the remote SOA comes along
        reply = yield dig(port, f"silent.{REMOTE_LABEL}.popura")
        self.assertEqual(reply["status"], "SERVFAIL")
        # Too big for UDP: the forwarder asks over TCP; dig then gets TC and asks over TCP.
        reply = yield dig(port, f"big.{REMOTE_LABEL}.meshname", "TXT")
        self.assertEqual((reply["status"], len(reply["answers"])), ("NOERROR", 8))

    @defer.inlineCallbacks
    def test_unreachable_upstream_is_servfail(self):
        closed = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        closed.bind(("::1", 0))
        port_53 = closed.getsockname()[1]
        closed.close()
        port = self.start(upstream=lambda address: ("::1", port_53)).address[1]
        reply = yield dig(port, f"www.{REMOTE_LABEL}.meshname")
        self.assertEqual(reply["status"], "SERVFAIL")


class BindFailureTests(ServerTestCase):
    def capture(self) -> list[dict]:
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        return events

    def test_port_in_use_turns_only_the_feature_off(self):
        held = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        held.bind(("::1", 0))
        self.addCleanup(held.close)
        port = held.getsockname()[1]
        events = self.capture()
        service = self.start(f"[::1]:{port}")
        self.assertIsNone(service.address)
        errors = [formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(len(errors), 1, errors)
        self.assertRegex(
            errors[0],
            rf"^Meshname: cannot listen on \[::1\]:{port}: .*in use.*; "
            "the meshname DNS server is off$",
        )
        return service.stopService()

    @defer.inlineCallbacks
    def test_tcp_port_in_use_leaves_udp(self):
        held = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        held.bind(("::1", 0))
        held.listen(1)
        self.addCleanup(held.close)
        port = held.getsockname()[1]
        events = self.capture()
        service = self.start(f"[::1]:{port}")
        self.assertEqual(service.address, ("::1", port))
        warnings = [formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("serving UDP only", warnings[0])
        reply = yield dig(port, f"{LABEL}.meshname")
        self.assertEqual(reply["status"], "NOERROR")


class BadInputTests(ServerTestCase):
    def udp_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.addCleanup(sock.close)
        return sock

    def send(self, sock: socket.socket, data: bytes, port: int) -> None:
        try:
            sock.sendto(data, ("::1", port))
        except BlockingIOError:
            pass

    @defer.inlineCallbacks
    def test_malformed_and_oversize_packets(self):
        service = self.start()
        port = service.address[1]
        sock = self.udp_socket()
        good = query_bytes(f"{LABEL}.meshname")
        for data in (
            b"",
            b"\x00",
            b"\xff" * 12,
            good[:15],
            good[:12] + b"\xc0\x0c\x00\x01\x00\x01",
            good + os.urandom(10_000),  # oversize
            os.urandom(60_000),
            good[:2] + b"\x80" + good[3:],  # a response
        ):
            self.send(sock, data, port)
        # Over TCP: a message of the largest size, then garbage lengths.
        stream = socket.create_connection(("::1", port))
        self.addCleanup(stream.close)
        stream.sendall(struct.pack("!H", 65535) + os.urandom(65535))
        stream.sendall(b"\x00\x05hello\x00")
        reply = yield dig(port, f"{LABEL}.meshname")
        self.assertEqual(reply["status"], "NOERROR")
        reply = yield dig(port, f"{LABEL}.meshname", "AAAA", "+tcp")
        self.assertEqual(reply["status"], "NOERROR")
        self.assertGreater(service.stats["malformed"], 0)

    @defer.inlineCallbacks
    def test_flood(self):
        """A few thousand queries at once — remote ones beyond the cap, local ones, junk —
        and the server still answers, without a log line per packet."""
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        service = self.start(max_pending=64)
        port = service.address[1]
        sock = self.udp_socket()
        events.clear()
        for i in range(3000):
            if i % 3 == 0:
                data = query_bytes(f"silent{i}.{REMOTE_LABEL}.meshname", id=i)
            elif i % 3 == 1:
                data = query_bytes(f"{LABEL}.meshname", id=i)
            else:
                data = os.urandom(40)
            self.send(sock, data, port)
            if i % 200 == 199:  # in bursts the socket buffer holds: let the server read
                yield task.deferLater(reactor, 0.01, lambda: None)
        reply = yield dig(port, f"{LABEL}.meshname")
        self.assertEqual(reply["status"], "NOERROR")
        stats = service.stats
        self.assertGreater(stats["queries"] + stats["malformed"] + stats["dropped"], 2000)
        self.assertGreater(service.stats["busy"], 0)
        # Once the remote lookups in flight have timed out, remote names work again.
        yield task.deferLater(reactor, 1.5, lambda: None)
        reply = yield dig(port, f"www.{REMOTE_LABEL}.meshname")
        self.assertEqual(reply["status"], "NOERROR")
        # At most the line Twisted logs when the upstream socket opens.
        texts = [formatEvent(e) for e in events]
        self.assertLessEqual(len(texts), 1, texts)
