"""The AMP admin door: commands from the registry, paged replies, errors, the client.

In memory first (iosim, a Clock), then on real sockets with a node in this process:
every method the registry has, through the client, compared with what the JSON socket
answers for it, including a reply of about 200 KiB.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.protocols import amp
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.nodes import remove_tree, short_tempdir
from ygg import config, features, gojson
from ygg.admin import amp as admin_amp
from ygg.admin.json_socket import AdminListenError, AdminSocketService
from ygg.admin.registry import AdminError, Arg, Method, Registry
from ygg.service import Node

BIG_ROWS = 2000  # rows of ~100 bytes: ~200 KiB of JSON


def big(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"rows": [{"i": i, "text": f"{i:06d} " + "é" * 40} for i in range(BIG_ROWS)]}


def echo(node: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"args": args}


def broken(node: Any, args: dict[str, Any]) -> None:
    raise RuntimeError("a bug")


def refuse(node: Any, args: dict[str, Any]) -> None:
    raise AdminError("not today")


def later(node: Any, args: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
    d: defer.Deferred[dict[str, Any]] = defer.Deferred()
    node.clock.callLater(3, d.callback, {"done": True})
    return d


TEST_METHODS = (
    Method("testBig", "About 200 KiB", big, table="rows"),
    Method(
        "testEcho",
        "Echo the arguments",
        echo,
        (Arg("text"), Arg("flag", "bool"), Arg("count", "number"), Arg("dash-name")),
    ),
    Method("testBroken", "Raises", broken),
    Method("testRefuse", "Refuses", refuse),
    Method("testLater", "Answers in 3 s", later),
)


class FakeNode:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock


def registry() -> Registry:
    r = Registry()
    for method in TEST_METHODS:
        r.register(method)
    return r


class InMemoryTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.registry = registry()
        self.server: admin_amp.AdminAMP | None = None

        def server() -> admin_amp.AdminAMP:
            self.server = admin_amp.AdminAMP(FakeNode(self.clock), self.registry, self.clock)
            return self.server

        client, _, self.pump = iosim.connectedServerAndClient(
            server, admin_amp.ClientAMP, clock=self.clock
        )
        self.client = admin_amp.AdminClient(client)
        self.calls: list[bytes] = []
        send = client._sendBoxCommand

        def counting(command: bytes, *a: Any, **kw: Any) -> Any:
            self.calls.append(command)
            return send(command, *a, **kw)

        client._sendBoxCommand = counting  # type: ignore[method-assign]

    def remote(self, command: type[amp.Command], **arguments: Any) -> defer.Deferred[Any]:
        """callRemote, its outcome kept for whenever the test looks at it."""
        outcome: defer.Deferred[Any] = defer.Deferred()
        self.client.protocol.callRemote(command, **arguments).addCallbacks(
            outcome.callback, outcome.errback
        )
        return outcome

    def result(self, d: defer.Deferred[Any]) -> Any:
        self.pump.flush()
        return self.successResultOf(d)

    def error(self, d: defer.Deferred[Any]) -> str:
        self.pump.flush()
        return str(self.failureResultOf(d, AdminError).value)

    def test_paged_reply(self) -> None:
        """~200 KiB comes in pages of at most 60 KiB, reassembled to the same data."""
        expected = json.loads(gojson.dumps(big(None, {})))
        size = len(gojson.dumps(expected).encode())
        self.assertGreater(size, 3 * 65535)
        self.assertEqual(self.result(self.client.call("testBig")), expected)
        pages = -(-size // admin_amp.PAGE_SIZE)
        self.assertEqual(self.calls, [b"Call"] + [b"Next"] * (pages - 1))
        self.assertEqual(self.server.pending, {})  # type: ignore[union-attr]
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # the idle timer alone

    def test_first_page_box(self) -> None:
        box = self.result(self.remote(admin_amp.Call, method="TESTBIG"))
        self.assertEqual(len(box["page"]), admin_amp.PAGE_SIZE)
        self.assertGreater(box["size"], 65535)
        self.assertTrue(box["more"])
        small = self.result(self.remote(admin_amp.Call, method="testEcho"))
        self.assertEqual(small, {"page": b'{"args":{}}', "size": 11, "more": None})

    def test_cursor_expires(self) -> None:
        box = self.result(self.remote(admin_amp.Call, method="testBig"))
        self.clock.advance(admin_amp.PENDING_TIMEOUT - 1)
        d = self.remote(admin_amp.Next, cursor=box["more"])
        self.assertTrue(self.result(d)["more"])  # asking again restarts the timer
        self.clock.advance(admin_amp.PENDING_TIMEOUT - 1)
        self.assertTrue(self.result(self.remote(admin_amp.Next, cursor=box["more"]))["more"])
        self.clock.advance(admin_amp.PENDING_TIMEOUT + 1)
        self.assertIn(
            "expired",
            self.error(self.remote(admin_amp.Next, cursor=box["more"])),
        )
        self.assertIn("expired", self.error(self.remote(admin_amp.Next, cursor="nope")))

    def test_unfinished_replies_are_bounded(self) -> None:
        for _ in range(admin_amp.MAX_PENDING + 5):
            self.result(self.remote(admin_amp.Call, method="testBig"))
        self.assertEqual(len(self.server.pending), admin_amp.MAX_PENDING)  # type: ignore[union-attr]
        self.assertEqual(len(self.clock.getDelayedCalls()), admin_amp.MAX_PENDING + 1)  # + idle
        self.client.close()
        self.pump.flush()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_errors(self) -> None:
        """The JSON socket's texts, as AdminError; the connection stays usable."""
        self.assertEqual(
            self.error(self.client.call("noSuchThing")),
            "Unknown action 'nosuchthing', try 'list' for help",
        )
        self.assertEqual(self.error(self.client.call("testRefuse")), "not today")
        self.assertEqual(
            self.error(self.client.call("testBroken")), "Check your syntax and input types"
        )
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(
            self.error(self.client.call("testEcho", flag="yes")),
            "json: cannot unmarshal string into Go struct field TestEchoRequest.flag of type bool",
        )
        d = self.remote(admin_amp.Call, method="testEcho", arguments="[1")
        self.assertEqual(self.error(d), "Failed to unmarshal request")
        d = self.remote(admin_amp.Call, method="testEcho", arguments="[1]")
        self.assertIn("cannot unmarshal array", self.error(d))
        self.assertEqual(self.result(self.client.call("testEcho")), {"args": {}})

    def test_arguments_through_call(self) -> None:
        self.assertEqual(
            self.result(self.client.call("testEcho", text="é", flag=True, count=2.5, other=1)),
            {"args": {"text": "é", "flag": True, "count": 2.5}},
        )

    def test_method_commands(self) -> None:
        """Each method is also its own AMP command with typed arguments."""
        command = admin_amp.command_for(self.registry.lookup("testEcho"))
        self.assertIs(command, admin_amp.command_for(self.registry.lookup("TESTECHO")))
        self.assertEqual(command.commandName, b"testEcho")
        d = self.client.call_command(command, text="x", flag=False, count=7, dash_name="d")
        self.assertEqual(
            self.result(d), {"args": {"text": "x", "flag": False, "count": 7, "dash-name": "d"}}
        )
        self.assertEqual(self.result(self.client.call_command(command)), {"args": {}})
        big_command = admin_amp.command_for(self.registry.lookup("testBig"))
        self.assertEqual(len(self.result(self.client.call_command(big_command))["rows"]), BIG_ROWS)
        refuse_command = admin_amp.command_for(self.registry.lookup("testRefuse"))
        self.assertEqual(self.error(self.client.call_command(refuse_command)), "not today")

    def test_methods_registered_later(self) -> None:
        later_method = Method("testNew", "Registered after connecting", echo, (Arg("a"),))
        self.registry.register(later_method)
        self.assertEqual(self.result(self.client.call("testnew", a="1")), {"args": {"a": "1"}})
        d = self.client.call_command(admin_amp.command_for(later_method), a="2")
        self.assertEqual(self.result(d), {"args": {"a": "2"}})
        self.registry.unregister("testNew")
        d = self.client.call_command(admin_amp.command_for(later_method), a="2")
        self.pump.flush()
        self.failureResultOf(d, amp.UnhandledCommand)

    def test_slow_method(self) -> None:
        d = self.client.call("testLater")
        self.pump.flush()
        self.assertNoResult(d)
        self.clock.advance(3)
        self.assertEqual(self.result(d), {"done": True})


class ServiceTests(SynchronousTestCase):
    def test_off_when_empty(self) -> None:
        service = admin_amp.AdminAMPService(None, registry(), "", Clock())
        service.startService()
        self.assertIsNone(service.port)
        self.assertIsNone(service.stopService())

    def test_bad_endpoint_or_port_in_use(self) -> None:
        for listen in ("nonsense:1", "tcp:notaport"):
            service = admin_amp.AdminAMPService(None, registry(), listen, reactor)
            self.assertRaises(AdminListenError, service.startService)
        with socket.socket(socket.AF_INET6) as busy:
            busy.bind(("::1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            service = admin_amp.AdminAMPService(
                None, registry(), rf"tcp:{port}:interface=\:\:1", reactor
            )
            error = self.assertRaises(AdminListenError, service.startService)
            self.assertIn("AMP admin failed to listen", str(error))


def in_process_node() -> Node:
    cfg = dataclasses.replace(
        config.parse("{}")[0],
        admin_listen="none",
        multicast_interfaces=(),
        if_name="none",
        node_info={"name": "amp-test"},
    )
    node = Node(cfg, reactor, discovery=features.NONE)
    node.register_admin_method(TEST_METHODS[0])
    return node


def json_socket_call(path: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The JSON socket's reply, read with a blocking client in a thread."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(json.dumps({"request": name, "arguments": arguments}).encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data)


class RealSocketTests(TestCase):
    """A node in this process with both doors open, on the real reactor."""

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self) -> Any:
        self.dir = short_tempdir("yaa")
        self.addCleanup(remove_tree, self.dir)
        self.node = in_process_node()
        self.node.startService()
        self.addCleanup(self.node.stopService)
        self.json_path = f"{self.dir}/admin.sock"
        self.json_socket = AdminSocketService(
            self.node, self.node.admin, f"unix://{self.json_path}", reactor
        )
        self.json_socket.startService()
        self.addCleanup(self.json_socket.stopService)
        self.service = admin_amp.AdminAMPService(
            self.node, self.node.admin, r"tcp:0:interface=\:\:1", reactor
        )
        self.service.startService()
        self.addCleanup(self.service.stopService)
        port = yield self.service.when_listening()
        self.client = yield admin_amp.connect(rf"tcp:host=\:\:1:port={port.getHost().port}")
        self.addCleanup(self.client.close)  # a Deferred: trial waits for it

    def arguments_for(self, method: Method) -> list[dict[str, Any]]:
        if method.key in ("addpeer", "removepeer"):
            return [{"uri": "x://"}, {"uri": "tcp://h:1?priority=x"}, {}]
        if any(arg.name == "key" for arg in method.args):
            # (a debug_ call with no key asks an all-zero key and times out after 6 s)
            return [{"key": "zz"}, {"key": "abc"}, *([{}] if method.key == "getnodeinfo" else [])]
        return [{}]

    @defer.inlineCallbacks
    def test_every_method_as_the_json_socket(self) -> Any:
        """Each registered method, through the client, gives the JSON socket's
        ``response`` (or its error text)."""
        listed = yield self.client.list()
        self.assertEqual(
            sorted(e["command"] for e in listed["list"]),
            sorted(m.key for m in self.node.admin.for_node(self.node)),
        )
        for method in self.node.admin.for_node(self.node):
            for arguments in self.arguments_for(method):
                expected = yield deferToThread(
                    json_socket_call, self.json_path, method.name, arguments
                )
                try:
                    got = yield self.client.call(method.name, **arguments)
                except AdminError as e:
                    self.assertEqual(expected["status"], "error", (method.name, arguments))
                    self.assertEqual(str(e), expected["error"])
                else:
                    self.assertEqual(expected["status"], "success", (method.name, arguments, got))
                    self.assertEqual(got, expected["response"], method.name)

    @defer.inlineCallbacks
    def test_add_and_remove_peer_as_the_json_socket(self) -> Any:
        """The same outcomes in the same state, through either door."""
        uri = {"uri": "tcp://127.0.0.1:1", "interface": "lo"}
        for name in ("addPeer", "removePeer"):
            got = yield self.client.call(name, **uri)
            self.assertEqual(got, {})
            with self.assertRaises(AdminError) as caught:
                yield self.client.call(name, **uri)
            expected = yield deferToThread(json_socket_call, self.json_path, name, uri)
            self.assertEqual(str(caught.exception), expected["error"])

    @defer.inlineCallbacks
    def test_named_methods(self) -> Any:
        self.assertEqual((yield self.client.get_self())["key"], self.node.public_key.hex())
        self.assertEqual((yield self.client.get_peers()), {"peers": []})
        self.assertEqual((yield self.client.get_dht()), (yield self.client.call("getdht")))
        self.assertEqual((yield self.client.get_paths()), {"paths": []})
        self.assertEqual((yield self.client.get_sessions()), {"sessions": []})
        self.assertEqual((yield self.client.get_tun()), {"enabled": False})
        self.assertEqual(
            (yield self.client.get_multicast_interfaces()), {"multicast_interfaces": []}
        )
        self.assertEqual((yield self.client.add_peer("tcp://127.0.0.1:1")), {})
        self.assertEqual(self.node.configured_peers(), [("tcp://127.0.0.1:1", "")])
        self.assertEqual((yield self.client.remove_peer("tcp://127.0.0.1:1")), {})
        for call in (
            self.client.get_node_info,
            self.client.debug_remote_get_self,
            self.client.debug_remote_get_peers,
            self.client.debug_remote_get_dht,
        ):
            with self.assertRaises(AdminError):
                yield call("zz")

    @defer.inlineCallbacks
    def test_big_reply(self) -> Any:
        """~200 KiB through real sockets, in pages, equal to the JSON socket's reply."""
        got = yield self.client.call("testBig")
        expected = yield deferToThread(json_socket_call, self.json_path, "testBig", {})
        self.assertEqual(got, expected["response"])
        self.assertGreater(len(json.dumps(got)), 3 * 65535)

    @defer.inlineCallbacks
    def test_stop_closes_connections(self) -> Any:
        yield self.service.stopService()
        yield self.client.protocol.when_lost()
        self.assertIsNone(self.service.port)

    @defer.inlineCallbacks
    def test_connection_limit(self) -> Any:
        """Full: a newcomer takes the place of the longest-idle connection."""
        self.patch(admin_amp, "MAX_CONNECTIONS", 2)
        service = admin_amp.AdminAMPService(
            self.node, self.node.admin, r"tcp:0:interface=\:\:1", reactor
        )
        service.startService()
        self.addCleanup(service.stopService)
        port = (yield service.when_listening()).getHost().port
        clients = []
        for _ in range(2):
            client = yield admin_amp.connect(rf"tcp:host=\:\:1:port={port}")
            self.addCleanup(client.close)
            clients.append(client)
        self.assertEqual((yield clients[1].get_tun()), {"enabled": False})
        client = yield admin_amp.connect(rf"tcp:host=\:\:1:port={port}")
        self.addCleanup(client.close)
        yield clients[0].protocol.when_lost()  # idle the longest: closed to make room
        self.assertEqual((yield client.get_tun()), {"enabled": False})
        self.assertEqual((yield clients[1].get_tun()), {"enabled": False})

    @defer.inlineCallbacks
    def test_unix_endpoint(self) -> Any:
        service = admin_amp.AdminAMPService(
            self.node, self.node.admin, f"unix:{self.dir}/amp.sock", reactor
        )
        service.startService()
        self.addCleanup(service.stopService)
        yield service.when_listening()
        client = yield admin_amp.connect(f"unix:{self.dir}/amp.sock")
        self.addCleanup(client.close)
        self.assertEqual(
            (yield client.get_self())["address"], (yield self.client.get_self())["address"]
        )
