"""A bounded slice of bench/fuzz.py's campaign, and the inputs its full runs found.

Every target of tests/fuzz_targets.py gets 2,000 seeded inputs (the same ones on every
run); any exception outside the entry point's documented errors, any error logged and any
broken harness promise fails the test with the input and its traceback.  The regression
tests below hold the inputs that once escaped, one per bug fixed.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

from twisted.internet.testing import StringTransport
from twisted.protocols import amp
from twisted.trial.unittest import SynchronousTestCase

from tests.fuzz_targets import BY_NAME, TARGETS, admin_node, amp_box, amp_boxes, settle
from tests.fuzzing import ErrorLog, fuzz
from tests.helpers import PYTHON, ROOT
from tests.processes import Process
from ygg.errors import ConfigError
from ygg.links.uri import LinkURIError

SLICE = 2000
SEED = 20261205


class SliceTests(SynchronousTestCase):
    """Each target's 2,000 inputs: none may raise what its entry point does not document."""

    def run_slice(self, name: str) -> None:
        target = BY_NAME[name]
        harness = target.build(random.Random(f"{SEED}/{name}"))
        result = fuzz(name, harness.generate, harness.feed, target.expected, count=SLICE)
        self.assertEqual(result.inputs, SLICE)
        report = "\n\n".join(
            f"input #{f.index} (hex) {f.data.hex()}\n{f.traceback}" for f in result.found
        )
        self.assertEqual(result.unexpected, 0, report)


def _slice_test(name: str) -> Any:
    def test(self: SliceTests) -> None:
        self.run_slice(name)

    test.__name__ = f"test_{name.replace('-', '_')}"
    test.__doc__ = f"{name}: {BY_NAME[name].entry}"
    return test


for _target in TARGETS:
    setattr(SliceTests, f"test_{_target.name.replace('-', '_')}", _slice_test(_target.name))


class BenchTests(SynchronousTestCase):
    def test_ctrl_c(self) -> None:
        """bench/fuzz.py stops its workers on Ctrl-C and says so in one line (exit 130)."""
        proc = Process(
            [PYTHON, "bench/fuzz.py", "--only", "wire04,uri", "--count", "1000000000"],
            cwd=str(ROOT),
        )
        self.addCleanup(proc.kill)
        proc.wait_for("job(s)", timeout=60)
        children = Path(f"/proc/{proc.proc.pid}/task/{proc.proc.pid}/children")
        deadline = time.monotonic() + 30
        while len(workers := children.read_text().split()) < 2:
            self.assertLess(time.monotonic(), deadline, proc.output)
            time.sleep(0.05)
        proc.proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.stop(sig=0, timeout=60), 130, proc.output)
        self.assertNotIn("Traceback", proc.output)
        self.assertEqual(proc.output.strip().splitlines()[-1], "bench/fuzz.py: interrupted")
        for pid in workers:
            self.assertFalse(_running(pid), f"worker {pid} left running")


def _running(pid: str) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


class DeterminismTests(SynchronousTestCase):
    def test_same_seed_same_inputs(self) -> None:
        """A seed names a campaign: the same inputs, in the same order, on every run."""
        runs = []
        for _ in range(2):
            harness = BY_NAME["wire05"].build(random.Random("same"))
            runs.append([harness.generate() for _ in range(200)])
        self.assertEqual(runs[0], runs[1])


# --------------------------------------------------------------------------- regressions


class DecoderRegressionTests(SynchronousTestCase):
    def test_v05_frame_over_the_limit_after_a_partial_frame(self) -> None:
        """frames05: a frame length over the limit while an incomplete frame was held
        raised BufferError (the buffer was cleared while a view of it was held)."""
        from ygg.v05.network.wire import FrameError, FrameReader

        reader = FrameReader(64)
        self.assertEqual(reader.feed(b"\x05ab"), [])
        with self.assertRaises(FrameError) as caught:
            reader.feed(b"cde\x41")  # the 5-byte frame ends, then a 65-byte length
        self.assertEqual(caught.exception.bodies, [b"abcde"])
        self.assertEqual(reader.pending(), 0)
        self.assertRaises(FrameError, reader.feed, b"\x01\x01")

    def test_uri_with_a_lone_surrogate(self) -> None:
        """uri: a JSON/HJSON ``"\\ud800"`` in a peer URI (addPeer, Peers) raised
        UnicodeEncodeError; Go reads it as U+FFFD, and so does the parser now."""
        from ygg.links.uri import parse_listen_uri, parse_peer_uri

        found = bytes.fromhex("746c733a2f2f34eda080342e3233342e3133342e3132343a343433")
        text = found.decode("utf-8", "surrogatepass")  # tls://4\ud8004.234.134.124:443
        self.assertRaises(LinkURIError, parse_peer_uri, text)
        self.assertRaises(LinkURIError, parse_listen_uri, text)
        uri = parse_peer_uri("tcp://[::1]:1?sni=\udcff#\ud800")
        self.assertEqual((uri.host, uri.sni), ("::1", "\ufffd"))
        self.assertEqual(uri.url, "tcp://[::1]:1?sni=\ufffd#%EF%BF%BD")

    def test_config_cut_short_in_a_comment_or_multiline_string(self) -> None:
        """config: hjson raised IndexError for an unclosed ``/*`` or ``'''``."""
        from ygg import config

        for found in (
            "4c697374656e3a2f2a205b0a2020746c733a2f2f5b3a3a5d3a300a5d0a4e6f6465496e666f3a207b"
            "6e616d653a20787d0a",
            "7b22416c6c6f7765645075626c69634b657973223a205b2230302227272722496e746572666163"
            "655065657273223a207b2265746830223a205b227463703a2f2f683a31225d7d7d",
        ):
            with self.assertRaises(ConfigError) as caught:
                config.parse(bytes.fromhex(found))
            self.assertIn("ends too early", str(caught.exception))

    def test_config_string_with_a_lone_surrogate(self) -> None:
        """config: ``IfName: "ygg0\\ud800"`` raised UnicodeEncodeError; every string of
        the file now reads as Go reads it, the surrogate as U+FFFD."""
        from ygg import config

        found = bytes.fromhex("efbbbf7b2249664e616d65223a2022796767305c7564383030227d")
        cfg, _ = config.parse(found)
        self.assertEqual(cfg.if_name, "ygg0\ufffd")
        cfg, _ = config.parse(
            '{"NodeInfo": {"\\udcff": ["\\ud800"]}, "Peers": ["tcp://h\\ud800:1"]}'
        )
        self.assertEqual(dict(cfg.node_info), {"\ufffd": ["\ufffd"]})
        self.assertEqual(cfg.peers, ("tcp://h\ufffd:1",))

    def test_config_regex_that_does_not_compile(self) -> None:
        """config: a MulticastInterfaces Regex with a repeat count over 2**32 raised
        OverflowError, one nested thousands deep RecursionError."""
        from ygg import config

        for regex in ("{99999999999}.*9}", "(" * 5000 + ")" * 5000):
            text = json.dumps({"MulticastInterfaces": [{"Regex": regex, "Port": 0}]})
            with self.assertRaises(ConfigError) as caught:
                config.parse(text)
            self.assertEqual(caught.exception.key, "MulticastInterfaces[0].Regex")

    def test_dns_name_longer_than_255_octets(self) -> None:
        """dns: a query for a 4,000-byte name was answered with a 4,067-byte UDP reply
        echoing it; such a name is malformed (FORMERR)."""
        from twisted.names import dns

        from tests.test_meshname import LABEL, ServerHarness, query_bytes
        from ygg.popura.meshname.wire import RequestError, read_request

        data = query_bytes(".".join(["a" * 63] * 4) + f".{LABEL}.meshname")
        self.assertRaises(RequestError, read_request, data)
        server = ServerHarness()
        server.send(data)
        ((reply, _),) = server.server.written
        self.assertEqual(len(reply), 12)
        message = dns.Message()
        message.fromStr(reply)
        self.assertEqual(message.rCode, dns.EFORMAT)
        self.assertRaises(ValueError, read_request, data[:5])  # no header: dropped


class RedialRegressionTests(SynchronousTestCase):
    def test_backoff_after_a_thousand_failed_dials(self) -> None:
        """admin-json (addPeer of a dead peer, then hours of simulated time): after 1,025
        failed dials the backoff 2.0 ** 1024 raised OverflowError in a Deferred, and the
        peer was never dialled again."""
        from ygg.links.manager import MAX_REDIAL_DELAY, PersistentPeer
        from ygg.links.uri import parse_peer_uri

        links = type("Links", (), {"jitter": lambda self: 0.5})()
        peer = PersistentPeer(links, parse_peer_uri("tcp://192.0.2.1:1"), "")  # type: ignore[arg-type]
        for failures, delay in ((1, 1.5), (3, 4.5), (7, MAX_REDIAL_DELAY + 0.5)):
            peer.failures = failures
            self.assertEqual(peer.delay(), delay)
        peer.failures = 100_000
        self.assertEqual(peer.delay(), MAX_REDIAL_DELAY + 0.5)


class AdminJSONRegressionTests(SynchronousTestCase):
    def setUp(self) -> None:
        from ygg.admin.json_socket import AdminFactory

        self.node = admin_node(random.Random(SEED))
        self.factory = AdminFactory(self.node, self.node.admin, self.node.reactor)

    def talk(self, *chunks: bytes, half_close: bool = False) -> list[dict[str, Any]]:
        transport = StringTransport()
        protocol = self.factory.buildProtocol(None)
        protocol.makeConnection(transport)
        for chunk in chunks:
            protocol.dataReceived(chunk)
        if half_close:
            protocol.readConnectionLost()
        settle(self.node.reactor, transport)
        text, replies, pos = transport.value().decode(), [], 0
        while pos < len(text):
            reply, pos = json.JSONDecoder().raw_decode(text, pos)
            replies.append(reply)
            pos += 1
        return replies

    def test_bad_utf8_then_end(self) -> None:
        """admin-json b"\\x9d{": a byte that is not UTF-8, then a half-close, got no reply
        and the connection stayed open until the idle timeout."""
        replies = self.talk(bytes.fromhex("9d7b"), half_close=True)
        self.assertEqual([r["error"] for r in replies], ["Failed to find request"])

    def test_requests_before_a_bad_byte_are_answered(self) -> None:
        request = b'{"request":"getSelf","keepalive":true}'
        replies = self.talk(request + b"\xff\xfe garbage")
        self.assertEqual([r["status"] for r in replies], ["success", "error"])
        self.assertEqual(replies[1]["error"], "Failed to find request")

    def test_a_request_cut_inside_an_escape_or_a_literal(self) -> None:
        """admin-json: a request split by TCP inside ``\\ud800``, ``true`` or ``1e+3`` was
        refused ("Failed to find request") instead of awaiting the rest."""
        request = json.dumps(
            {
                "request": "getSelf",
                "arguments": {"a": [True, False, None, -1.5e3, "\ud800\udc00\u00e9\ud800"]},
                "keepalive": True,
            }
        ).encode()
        data = request + b'\n{"request":"getTUN"}'
        for cut in range(1, len(data)):
            replies = self.talk(data[:cut], data[cut:])
            self.assertEqual([r["status"] for r in replies], ["success"] * 2, data[:cut])


class AdminAMPRegressionTests(SynchronousTestCase):
    """admin-amp: boxes that AMP answers by raising out of dataReceived or by logging a
    traceback (either one per connection, for anyone who can connect)."""

    def setUp(self) -> None:
        from ygg.admin.amp import AdminAMP

        self.node = admin_node(random.Random(SEED))
        self.transport = StringTransport()
        self.protocol = AdminAMP(self.node, self.node.admin, self.node.reactor)
        self.protocol.makeConnection(self.transport)
        self.errors = ErrorLog().__enter__()
        self.addCleanup(self.errors.__exit__)

    def send(self, *boxes: dict[bytes, bytes]) -> list[amp.AmpBox]:
        for box in boxes:
            self.protocol.dataReceived(amp_box(box))
        settle(self.node.reactor, self.transport)
        self.errors.check()
        return amp_boxes(self.transport.value())

    def test_boxes_that_are_not_commands_close_quietly(self) -> None:
        for box in (
            {b"_ask": b"2"},  # NoEmptyBoxes
            {b"_answer": b"3", b"x": b"y"},  # KeyError: nothing was asked
            {b"_error": b"2", b"_error_code": b"X", b"_error_description": b"d"},
        ):
            self.setUp()
            self.send({b"_command": b"getTUN", b"_ask": b"1"}, box, {b"_command": b"getTUN"})
            self.assertTrue(self.transport.disconnecting)

    def test_a_command_name_that_is_not_ascii(self) -> None:
        """UnicodeDecodeError from AMP's own lookup; now an unknown command."""
        (reply,) = self.send({b"_ask": b"3", b"_command": bytes.fromhex("67657454f74e")})
        self.assertEqual(reply[b"_error_code"], b"UNHANDLED")
        self.assertFalse(self.transport.disconnecting)

    def test_arguments_that_do_not_parse(self) -> None:
        """A missing argument, bad UTF-8, a bad bool or number: ADMIN_ERROR, no traceback
        logged, the connection kept (AMP logged and closed it)."""
        replies = self.send(
            {b"_command": b"Next", b"_ask": b"1"},
            {b"_command": b"Call", b"_ask": b"2", b"method": b"\xff\xfe"},
            {b"_command": b"fuzzArgs", b"_ask": b"3", b"b": b"yes"},
            {b"_command": b"fuzzArgs", b"_ask": b"4", b"n": b"\xff"},
            {b"_command": b"fuzzArgs", b"_ask": b"5", b"n": b"1e999", b"s": b"\xed\xa0\x80"},
            {b"_command": b"fuzzArgs", b"_ask": b"6", b"n": b"-2.5", b"b": b"True"},
        )
        by_tag = {r.get(b"_answer", r.get(b"_error")): r for r in replies}
        for tag in (b"1", b"2", b"3", b"4", b"5"):
            self.assertEqual(by_tag[tag][b"_error_code"], b"ADMIN_ERROR", tag)
            self.assertEqual(by_tag[tag][b"_error_description"], b"Failed to unmarshal request")
        self.assertEqual(json.loads(by_tag[b"6"][b"page"]), {"n": -2.5, "b": True})
        self.assertFalse(self.transport.disconnecting)

    def test_errors_of_commands_sent_without_ask(self) -> None:
        """An unknown command, or a failing one, without ``_ask``: nothing to answer, and
        nothing logged (AMP logged "unhandled by client application" and closed)."""
        replies = self.send(
            {b"_command": b"2"},
            {b"_command": b"Call", b"method": b"nosuch"},
            {b"_command": b"Next"},
            {b"_command": b"getTUN", b"_ask": b"9"},
        )
        self.assertEqual([r[b"_answer"] for r in replies], [b"9"])
        self.assertFalse(self.transport.disconnecting)
