"""The admin API of a node running v0.4, v0.5 or both, without sockets (ygg.admin.forms).

A node running one version answers as that version's Go node (the lists and replies
captured in data/admin and data/v05/admin); one running both answers the union, each row
with the network it is of, and takes ``version=`` where a reply must be one version's.
Fake nodes stand in for the real one: routers, sessions, links and multicast as plain
objects with what the admin methods read.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.testing import StringTransport
from twisted.protocols import amp
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import DATA, load_json
from ygg import address as addr
from ygg.admin import amp as admin_amp
from ygg.admin import tables
from ygg.admin.json_socket import AdminFactory
from ygg.admin.methods import builtin_registry
from ygg.admin.registry import AdminError, Method, MethodTaken
from ygg.admin.shell.commands import ShellCommands
from ygg.config import MulticastInterface
from ygg.errors import YggError
from ygg.keys import NodeKey
from ygg.links.interfaces import Interface
from ygg.links.multicast import Multicast, _Selected
from ygg.links.uri import URLParseError
from ygg.network.peers import LinkStats
from ygg.network.router import PathInfo, PeerInfo, SelfInfo
from ygg.session.manager import SessionInfo
from ygg.v05.network import router as router05

V04, V05, BOTH = ("0.4",), ("0.5",), ("0.4", "0.5")
KEYS = [bytes([i]) * 32 for i in (0x11, 0x22, 0x33, 0x44)]
NOW = 1_000.0
#: 0.5.12's PeerEntry members, in its order.
GO_PEER_ORDER = [
    "remote", "up", "inbound", "address", "key", "port", "priority", "cost", "bytes_recvd",
    "bytes_sent", "rate_recvd", "rate_sent", "uptime", "latency", "last_error_time",
    "last_error",
]  # fmt: skip


class FakeLink:
    def __init__(self, stats: LinkStats) -> None:
        self._stats = stats

    def stats(self) -> LinkStats:
        return self._stats


def link(
    remote: str,
    inbound: bool = False,
    rx: int = 2000,
    tx: int = 1000,
    up: float = 9.5,
    rates: tuple[int, int] = (0, 0),
) -> FakeLink:
    return FakeLink(LinkStats(remote, inbound, up, rx, tx, *rates))


class FakeRouter04:
    def __init__(self, peers: list[PeerInfo] = (), paths: list[PathInfo] = ()) -> None:
        self.peers, self.paths = list(peers), list(paths)

    def get_self(self) -> SelfInfo:
        return SelfInfo(KEYS[0], KEYS[0], (1, 2), 0.0)

    def get_peers(self) -> list[PeerInfo]:
        return self.peers

    def get_paths(self) -> list[PathInfo]:
        return self.paths

    def get_dht(self) -> list[Any]:
        return []


class FakeRouter05:
    def __init__(self, peers=(), tree=(), paths=()) -> None:  # type: ignore[no-untyped-def]
        self.peers, self.tree, self.paths = list(peers), list(tree), list(paths)

    def get_self(self) -> router05.SelfInfo:
        return router05.SelfInfo(KEYS[0], KEYS[0], (), 7)

    def get_peers(self) -> list[router05.PeerInfo]:
        return self.peers

    def get_tree(self) -> list[router05.TreeInfo]:
        return self.tree

    def get_paths(self) -> list[router05.PathInfo]:
        return self.paths


class FakeLinks:
    """Configured peers as the links layer keeps them, add/remove with its texts."""

    def __init__(self) -> None:
        self.persistent: dict[tuple[str, str], Any] = {}

    def add_peer(self, text: str, interface: str = "") -> None:
        if (text, interface) in self.persistent:
            raise YggError("peer already configured")
        if text.startswith("%"):
            raise URLParseError(f'parse "{text}": invalid URL escape "%zz"')
        if "key=zz" in text:
            raise YggError("pinned key contains invalid hex characters")
        if "priority=x" in text:
            raise YggError('priority invalid: strconv.ParseUint: parsing "x": invalid syntax')
        self.persistent[(text, interface)] = SimpleNamespace(
            uri=SimpleNamespace(url=text), link=None, last_error=None, last_error_time=None
        )

    def remove_peer(self, text: str, interface: str = "") -> None:
        if self.persistent.pop((text, interface), None) is None:
            raise YggError("peer not configured")


def fake_node(versions: tuple[str, ...] = BOTH, **parts: Any) -> Any:
    key = NodeKey.generate()
    clock = task.Clock()
    clock.advance(NOW)
    node = SimpleNamespace(
        config=SimpleNamespace(protocol_versions=versions),
        reactor=clock,
        public_key=key.public,
        address=addr.address_for_key(key.public),
        subnet=addr.subnet_for_key(key.public),
        admin=builtin_registry(),
        router=FakeRouter04(),
        router05=FakeRouter05() if "0.5" in versions else None,
        core=SimpleNamespace(sessions=SimpleNamespace(sessions=list)),
        core05=None,
        links=FakeLinks(),
        multicast=None,
        tun=SimpleNamespace(enabled=False),
    )
    for name, value in parts.items():
        setattr(node, name, value)
    return node


def call(test: SynchronousTestCase, node: Any, name: str, **arguments: Any) -> Any:
    return test.successResultOf(node.admin.call(node, name, arguments))


def error(test: SynchronousTestCase, node: Any, name: str, **arguments: Any) -> str:
    return str(test.failureResultOf(node.admin.call(node, name, arguments), AdminError).value)


class RegistryTests(SynchronousTestCase):
    def test_list_of_each_kind_of_node(self) -> None:
        """v0.4 only: 0.4.7's list; v0.5 only: 0.5.12's; both: the union, with version=
        on the methods whose reply differs."""
        go04 = load_json("admin/A.list.reply.json")["response"]["list"]
        go05 = load_json("v05/admin/A.list.reply.json")["response"]["list"]
        for versions, expected in ((V04, go04), (V05, go05)):
            node = fake_node(versions)
            self.assertEqual(call(self, node, "list"), {"list": expected})
        both = call(self, fake_node(BOTH), "list")["list"]
        commands = {e["command"] for e in go04} | {e["command"] for e in go05}
        self.assertEqual([e["command"] for e in both], sorted(commands))
        choosing = {e["command"] for e in both if e.get("fields") == ["version"]}
        self.assertEqual(
            choosing,
            {"getself", "getpeers", "getpaths", "getsessions", "getmulticastinterfaces"},
        )

    def test_a_method_of_the_other_version_is_unknown(self) -> None:
        self.assertEqual(
            error(self, fake_node(V04), "getTree"),
            "Unknown action 'gettree', try 'list' for help",
        )
        self.assertEqual(
            error(self, fake_node(V05), "getDHT"), "Unknown action 'getdht', try 'list' for help"
        )
        self.assertIsNone(fake_node(V05).admin.lookup("debug_remoteGetDHT", fake_node(V05)))
        # No node: as a node running v0.4 only (what every node was before v0.5).
        self.assertIsNotNone(builtin_registry().lookup("getDHT"))
        self.assertIsNone(builtin_registry().lookup("getTree"))

    def test_a_feature_cannot_take_a_builtin_of_either_version(self) -> None:
        registry = builtin_registry()
        for name in ("getTree", "getdht", "getPeers"):
            method = Method(name, "mine", lambda node, args: {})
            self.assertRaises(MethodTaken, registry.register, method, "feature")
        self.assertTrue(registry.unregister("getTree", "ygg"))
        self.assertIsNone(registry.lookup("getTree", fake_node(BOTH)))
        registry.register(Method("getTree", "mine", lambda node, args: {}), "feature")
        self.assertEqual(registry.owned_by("feature"), ["gettree"])

    def test_go_request_types_name_their_package(self) -> None:
        """As both Go versions say it: core.* for NodeInfo and debug, multicast.*, tun.*."""
        node = fake_node(V05)
        for name, text in (
            ("getSelf", "admin.GetSelfRequest"),
            ("getNodeInfo", "core.GetNodeInfoRequest"),
            ("debug_remoteGetTree", "core.DebugGetTreeRequest"),
            ("getMulticastInterfaces", "multicast.GetMulticastInterfacesRequest"),
            ("getTUN", "tun.GetTUNRequest"),
        ):
            got = str(self.failureResultOf(node.admin.call(node, name, 5), AdminError).value)
            self.assertEqual(got, f"json: cannot unmarshal number into Go value of type {text}")
        # list reads no arguments (both Go versions answer it whatever they are)
        self.assertIn("list", self.successResultOf(node.admin.call(node, "list", "x")))
        self.assertEqual(
            error(self, node, "debug_remoteGetTree", key=True),
            "json: cannot unmarshal bool into Go struct field DebugGetTreeRequest.key of type "
            "string",
        )


def peer04(key: bytes, port: int, remote: str, **kw: Any) -> PeerInfo:
    return PeerInfo(key, KEYS[0], (port,), port, 0.0, kw.pop("priority", 0), link(remote, **kw))


def peer05(
    key: bytes,
    port: int,
    remote: str,
    *,
    cost: int = 1,
    latency: float | None = 0.00094,
    priority: int = 0,
    **kw: Any,
) -> router05.PeerInfo:
    return router05.PeerInfo(
        key, KEYS[0], port, priority, cost, latency, 0, 0, 0.0, link(remote, **kw)
    )


class ReplyFormTests(SynchronousTestCase):
    def test_get_self(self) -> None:
        captured04 = load_json("admin/A.getSelf.reply.json")["response"]
        captured05 = load_json("v05/admin/A.getSelf.reply.json")["response"]
        only04 = call(self, fake_node(V04), "getSelf")
        only05 = call(self, fake_node(V05), "getSelf")
        self.assertEqual(list(only04), list(captured04))
        self.assertEqual(list(only05), list(captured05))
        self.assertEqual(only05["routing_entries"], 7)
        node = fake_node(BOTH)
        both = call(self, node, "getSelf")
        self.assertEqual(
            list(both),
            [
                "build_name",
                "build_version",
                "key",
                "address",
                "coords",
                "routing_entries",
                "subnet",
            ],
        )
        self.assertEqual((both["coords"], both["routing_entries"]), ([1, 2], 7))
        self.assertEqual(
            call(self, node, "getSelf", version="0.4"),
            only04 | {"key": both["key"], "address": both["address"], "subnet": both["subnet"]},
        )
        self.assertNotIn("coords", call(self, node, "getSelf", version="0.5"))
        self.assertEqual(
            error(self, node, "getSelf", version="0.6"), "version '0.6' unknown: 0.4 or 0.5"
        )
        # One version's node takes no version argument (Go's decoder ignores it).
        self.assertIn("coords", call(self, fake_node(V04), "getSelf", version="0.5"))

    def test_get_peers_of_both_networks(self) -> None:
        """Both: 0.5.12's rows for the links of both versions (a v0.4 one with coords and
        cost 0), each with its version, down configured peers with their last error,
        in 0.5.12's order (outbound first, then key)."""
        node = fake_node(
            BOTH,
            router=FakeRouter04([peer04(KEYS[3], 1, "tcp://127.0.0.1:9001")]),
            router05=FakeRouter05(
                [
                    peer05(KEYS[2], 1, "tls://h:2?key=ab&priority=3", rates=(1536, 10)),
                    peer05(KEYS[1], 2, "tcp://127.0.0.1:60348", inbound=True, latency=None),
                ]
            ),
        )
        call(self, node, "addPeer", uri="tcp://127.0.0.1:1?priority=3")
        down = node.links.persistent[("tcp://127.0.0.1:1?priority=3", "")]
        down.last_error, down.last_error_time = "connection refused", NOW - 2.5
        peers = call(self, node, "getPeers")["peers"]
        self.assertEqual(
            [(p["remote"], p["up"], p.get("version")) for p in peers],
            [
                ("tcp://127.0.0.1:1", False, None),
                ("tls://h:2", True, "0.5"),
                ("tcp://127.0.0.1:9001", True, "0.4"),
                ("tcp://127.0.0.1:60348", True, "0.5"),
            ],
        )
        self.assertEqual(
            peers[0],
            {
                "remote": "tcp://127.0.0.1:1",
                "up": False,
                "inbound": False,
                "key": "",
                "port": 0,
                "priority": 0,
                "cost": 0,
                "last_error_time": 2_500_000_000,
                "last_error": "connection refused",
            },
        )
        self.assertEqual(peers[1]["latency"], 940_000)
        self.assertEqual((peers[1]["rate_recvd"], peers[1]["rate_sent"]), (1536, 10))
        self.assertEqual((peers[2]["coords"], peers[2]["cost"]), ([1], 0))
        self.assertNotIn("latency", peers[3])
        for row in peers:
            members = [k for k in row if k not in ("coords", "version")]
            self.assertEqual(members, [k for k in GO_PEER_ORDER if k in row])

        # Each version's own form, of that network alone.
        only04 = call(self, node, "getPeers", version="0.4")["peers"]
        self.assertEqual(
            list(only04[0]), list(load_json("admin/A.getPeers.reply.json")["response"]["peers"][0])
        )
        self.assertEqual([p["remote"] for p in only04], ["tcp://127.0.0.1:9001"])
        only05 = call(self, node, "getPeers", version="0.5")["peers"]
        self.assertEqual(len(only05), 3)
        self.assertTrue(all("version" not in p for p in only05))

    def test_get_peers_of_a_v05_node_as_captured(self) -> None:
        """The captured A.getPeers: two inbound links, sorted by key."""
        node = fake_node(
            V05,
            router05=FakeRouter05(
                [
                    peer05(KEYS[2], 2, "tcp://127.0.0.1:56598", inbound=True, priority=3),
                    peer05(KEYS[1], 1, "tcp://127.0.0.1:60348", inbound=True),
                ]
            ),
        )
        peers = call(self, node, "getPeers")["peers"]
        self.assertEqual([p["port"] for p in peers], [1, 2])
        self.assertEqual(
            list(peers[0]),
            list(load_json("v05/admin/A.getPeers-after-C-left.reply.json")["response"]["peers"][0]),
        )

    def test_get_tree_paths_sessions(self) -> None:
        tree = [router05.TreeInfo(KEYS[2], KEYS[1], 2), router05.TreeInfo(KEYS[1], KEYS[1], 1)]
        paths05 = [router05.PathInfo(KEYS[1], (), 1796496041)]
        sessions = SimpleNamespace(sessions=lambda: [SessionInfo(KEYS[1], 110, 2, 1.5)])
        node = fake_node(
            BOTH,
            router=FakeRouter04(paths=[PathInfo(KEYS[2], (1, 0))]),
            router05=FakeRouter05(tree=tree, paths=paths05),
            core=SimpleNamespace(sessions=sessions),
            core05=SimpleNamespace(sessions=sessions),
        )
        tree_rows = call(self, node, "getTree")["tree"]
        self.assertEqual([r["key"] for r in tree_rows], [KEYS[1].hex(), KEYS[2].hex()])
        self.assertEqual(
            list(tree_rows[0]),
            list(load_json("v05/admin/A.getTree.reply.json")["response"]["tree"][0]),
        )
        paths = call(self, node, "getPaths")["paths"]
        self.assertEqual(
            [(p["key"][:2], p.get("sequence"), p["version"]) for p in paths],
            [("22", 1796496041, "0.5"), ("33", None, "0.4")],
        )
        self.assertEqual(
            call(self, node, "getPaths", version="0.5")["paths"],
            [
                load_json("v05/admin/A.getPaths.reply.json")["response"]["paths"][0]
                | {"key": KEYS[1].hex(), "address": paths[0]["address"]}
            ],
        )
        rows = call(self, node, "getSessions")["sessions"]
        self.assertEqual([r["version"] for r in rows], ["0.4", "0.5"])
        self.assertEqual(
            call(self, node, "getSessions", version="0.5")["sessions"],
            [{k: v for k, v in rows[1].items() if k != "version"}],
        )
        # v0.5's parts not there (yet): empty answers, not errors.
        bare = fake_node(V05, router05=None)
        self.assertEqual(call(self, bare, "getTree"), {"tree": []})
        self.assertEqual(call(self, bare, "getSessions"), {"sessions": []})
        self.assertEqual(call(self, bare, "getSelf")["routing_entries"], 0)

    def test_get_multicast_interfaces(self) -> None:
        """0.4.7's names or 0.5.12's objects: the one reply that cannot serve both
        clients; a node running both answers 0.5.12's unless asked version=0.4."""
        port = SimpleNamespace(getHost=lambda: SimpleNamespace(port=9100))
        links = SimpleNamespace(reactor=task.Clock(), public_key=KEYS[0], versions=frozenset(BOTH))
        lab0 = MulticastInterface("lab", True, True, 9100, 0, "sesame")
        eth1 = MulticastInterface("eth", False, True, 0, 0, "")
        multicast = Multicast(links, (lab0, eth1), list_interfaces=list)  # type: ignore[arg-type]
        multicast.selected = {
            "lab0": _Selected(Interface("lab0", 3, 0, ()), lab0, "fe80::34bd:dbff:fe98:ebf9"),
            "eth1": _Selected(Interface("eth1", 4, 0, ()), eth1, None),
        }
        multicast.listeners = {"lab0": SimpleNamespace(port=port)}  # type: ignore[dict-item]
        captured = load_json("v05/admin/M1.getMulticastInterfaces.reply.json")["response"]
        node = fake_node(BOTH, multicast=multicast)
        rows = call(self, node, "getMulticastInterfaces")["multicast_interfaces"]
        self.assertEqual(rows[1], captured["multicast_interfaces"][0])
        self.assertEqual(
            rows[0],
            {"name": "eth1", "address": "-", "beacon": False, "listen": True, "password": False},
        )
        self.assertEqual(
            call(self, node, "getMulticastInterfaces", version="0.4"),
            {"multicast_interfaces": ["eth1", "lab0"]},
        )
        self.assertEqual(
            call(self, fake_node(V04, multicast=multicast), "getMulticastInterfaces"),
            {"multicast_interfaces": ["eth1", "lab0"]},
        )
        self.assertEqual(
            call(self, fake_node(V05), "getMulticastInterfaces"), {"multicast_interfaces": []}
        )


class PeerListTests(SynchronousTestCase):
    def test_errors_as_each_go_version_words_them(self) -> None:
        """Seen from the binaries: 0.5.12 rewords 0.4.7's texts."""
        for versions, texts in (
            (
                V04,
                [
                    "peer already configured",
                    "peer not configured",
                    "pinned key contains invalid hex characters",
                    'priority invalid: strconv.ParseUint: parsing "x": invalid syntax',
                    'parse "%zz": invalid URL escape "%zz"',
                ],
            ),
            (
                V05,
                [
                    "peer is already configured",
                    "peer is not configured",
                    "pinned public key is invalid",
                    "priority value is invalid",
                    'unable to parse peering URI: parse "%zz": invalid URL escape "%zz"',
                ],
            ),
        ):
            node = fake_node(versions)
            self.assertEqual(call(self, node, "addPeer", uri="tcp://h:1"), {})
            got = [
                error(self, node, "addPeer", uri="tcp://h:1"),
                error(self, node, "removePeer", uri="tcp://h:2"),
                error(self, node, "addPeer", uri="tcp://h:3?key=zz"),
                error(self, node, "addPeer", uri="tcp://h:3?priority=x"),
                error(self, node, "addPeer", uri="%zz"),
            ]
            self.assertEqual(got, texts)

    def test_a_v05_node_knows_a_peer_by_its_uri_less_the_query(self) -> None:
        node = fake_node(BOTH)
        call(self, node, "addPeer", uri="tcp://h:1?priority=3")
        self.assertEqual(
            error(self, node, "addPeer", uri="tcp://h:1"), "peer is already configured"
        )
        self.assertEqual(call(self, node, "removePeer", uri="tcp://h:1"), {})
        self.assertEqual(node.links.persistent, {})
        # 0.4.7 knows it by the URI as written.
        node = fake_node(V04)
        call(self, node, "addPeer", uri="tcp://h:1?priority=3")
        self.assertEqual(call(self, node, "addPeer", uri="tcp://h:1"), {})


class RemoteTests(SynchronousTestCase):
    def test_key_length_once_v05_runs(self) -> None:
        """0.5.12 wants exactly 32 bytes for debug_remote*; 0.4.7 pads any length."""
        node = fake_node(BOTH, remote_get_self=lambda key: succeed({"key": key.hex()}))
        for name in ("debug_remoteGetSelf", "debug_remoteGetPeers", "debug_remoteGetTree"):
            self.assertEqual(error(self, node, name, key="00"), "invalid public key length")
            self.assertEqual(error(self, node, name), "invalid public key length")
            self.assertEqual(
                error(self, node, name, key="zz"), "encoding/hex: invalid byte: U+007A 'z'"
            )
        only04 = fake_node(V04, remote_get_self=lambda key: succeed({"key": key.hex()}))
        reply = call(self, only04, "debug_remoteGetSelf", key="00")
        self.assertEqual(list(reply.values()), [{"key": "00" * 32}])
        self.assertEqual(error(self, node, "getNodeInfo"), "No remote public key supplied")

    def test_get_tree_of_a_remote(self) -> None:
        """From the node's facade when it has one, else v0.5's proto handler (keys or
        the admin form); without either, 0.5.12's timeout text."""
        key = KEYS[1]
        ip = addr.format_address(addr.address_for_key(key))
        for ask in (lambda k: succeed([KEYS[2]]), lambda k: succeed({"keys": [KEYS[2].hex()]})):
            node = fake_node(V05, proto05=SimpleNamespace(remote_get_tree=ask))
            self.assertEqual(
                call(self, node, "debug_remoteGetTree", key=key.hex()),
                {ip: {"keys": [KEYS[2].hex()]}},
            )
        node = fake_node(BOTH, remote_get_tree=lambda k: succeed([]))
        self.assertEqual(call(self, node, "debug_remoteGetTree", key=key.hex()), {ip: {}})
        self.assertEqual(
            error(self, fake_node(V05, proto05=None), "debug_remoteGetTree", key=key.hex()),
            "timeout",
        )
        node = fake_node(V05, remote_get_peers=lambda k: fail(AdminError("timeout")))
        self.assertEqual(error(self, node, "debug_remoteGetPeers", key=key.hex()), "timeout")


# --------------------------------------------------------------------------- JSON socket


def exchange(node: Any, data: bytes) -> bytes:
    factory = AdminFactory(node, node.admin, node.reactor)
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    transport = StringTransport(peerAddress=address)
    protocol = factory.buildProtocol(address)
    protocol.makeConnection(transport)
    protocol.dataReceived(data)
    protocol.readConnectionLost()
    return transport.value()


#: Requests and what 0.5.12 answered (seen from the binary): the request echoed with its
#: arguments as sent (numbers and escapes kept, HTML escaped, the last "arguments").
ECHOES = [
    (
        b'{"request":"getTUN","arguments":{ "a" : [1, 2.50, "<&>\\u0041"] , "b":{}}}',
        '{\n    "request": "getTUN",\n    "arguments": {\n      "a": [\n        1,\n'
        '        2.50,\n        "\\u003c\\u0026\\u003e\\u0041"\n      ],\n      "b": {}\n'
        "    }\n  }",
    ),
    (
        b'{"request":"getTUN","arguments":null}',
        '{\n    "request": "getTUN",\n    "arguments": null\n  }',
    ),
    (
        b'{"request":"getTUN","arguments":{"a":1},"arguments":{"b":2}}',
        '{\n    "request": "getTUN",\n    "arguments": {\n      "b": 2\n    }\n  }',
    ),
    (
        b'{"request":"getTUN","keepalive":false}',
        '{\n    "request": "getTUN",\n    "arguments": {}\n  }',
    ),
    (b'{"request":5}', '{\n    "request": ""\n  }'),
    (b"null", '{\n    "request": "",\n    "arguments": {}\n  }'),
]


class EnvelopeTests(SynchronousTestCase):
    def test_error_replies_byte_for_byte_as_captured(self) -> None:
        """A node running v0.5 writes 0.5.12's errors exactly (the A.error-* captures)."""
        for entry in load_json("v05/index.json")["replies"]:
            if not entry["name"].startswith("error"):
                continue
            captured = (DATA / "v05" / "admin" / entry["reply_file"]).read_bytes()
            for versions in (V05, BOTH):
                got = exchange(fake_node(versions), entry["request_text"].encode())
                self.assertEqual(got, captured, (entry["name"], versions))

    def test_request_echoed_as_0512_does(self) -> None:
        for request, echo in ECHOES:
            reply = exchange(fake_node(V05), request).decode()
            self.assertIn(f'\n  "request": {echo},\n', reply, request)
            # 0.4.7 writes null, and a node running v0.4 only does too.
            self.assertIn('\n  "request": null,\n', exchange(fake_node(V04), request).decode())

    def test_keepalive_as_captured(self) -> None:
        text = (DATA / "v05/admin/A.keepalive-two-requests.reply.json").read_text()
        request = b'{"request":"getTUN","keepalive":true}{"request":"getSelf"}\n'
        got = exchange(fake_node(V05), request).decode()
        decoder = json.JSONDecoder()
        first, end = decoder.raw_decode(got)
        second, _ = decoder.raw_decode(got[end:].lstrip())
        want_first, end = decoder.raw_decode(text)
        want_second, _ = decoder.raw_decode(text[end:].lstrip())
        self.assertEqual(first, want_first)
        self.assertEqual(second["request"], want_second["request"])
        self.assertEqual(list(second["response"]), list(want_second["response"]))


# --------------------------------------------------------------------------- shell, AMP


def dual_node_with_peers() -> Any:
    return fake_node(
        BOTH,
        router=FakeRouter04([peer04(KEYS[3], 1, "tcp://127.0.0.1:9001")]),
        router05=FakeRouter05([peer05(KEYS[2], 1, "tls://h:2")]),
    )


class FrontDoorTests(SynchronousTestCase):
    """The shell and AMP show the peers of both networks, each with its version."""

    def test_shell_tables_have_a_version_column(self) -> None:
        node = dual_node_with_peers()
        shell = ShellCommands(node, node.admin)
        text = self.successResultOf(shell.run("getPeers")).text
        header, *rows = text.splitlines()
        self.assertEqual(
            [c.strip() for c in header.split("\t")][:5],
            ["URI", "State", "Dir", "Version", "IP Address"],
        )
        self.assertEqual(sorted(r.split("\t")[3].strip() for r in rows), ["0.4", "0.5"])
        # version=0.4: 0.4.7's reply, and 0.4.7's table
        text = self.successResultOf(shell.run("getPeers version=0.4")).text
        self.assertEqual(text.split("\t")[0], "Port")
        self.assertIn("version=", self.successResultOf(shell.run("help getPeers")).text)
        self.assertIn("getTree", self.successResultOf(shell.run("help")).text)
        self.assertEqual(shell.complete("getT"), ["getTUN", "getTree"])
        # A node running v0.4 only: 0.4.7's tables, no getTree.
        only04 = fake_node(V04)
        shell04 = ShellCommands(only04, only04.admin)
        self.assertEqual(self.successResultOf(shell04.run("getPeers")).text.split("\t")[0], "Port")
        self.assertEqual(shell04.complete("getT"), ["getTUN"])

    def test_amp_peers_with_their_version(self) -> None:
        node = dual_node_with_peers()
        server = admin_amp.AdminAMP(node, node.admin, node.reactor)
        client = admin_amp.ClientAMP()
        pump = iosim.connect(
            server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client)
        )
        amp_client = admin_amp.AdminClient(client)
        peers = amp_client.get_peers()
        tree = amp_client.get_tree()
        own = amp_client.call_command(
            admin_amp.command_for(node.admin.lookup("getPeers", node)), version="0.4"
        )
        pump.flush()
        rows = self.successResultOf(peers)["peers"]
        self.assertEqual(sorted(p["version"] for p in rows), ["0.4", "0.5"])
        self.assertEqual(self.successResultOf(tree), {"tree": []})
        self.assertEqual([p["port"] for p in self.successResultOf(own)["peers"]], [1])
        self.assertIsInstance(server, amp.AMP)


class TablesTests(SynchronousTestCase):
    def test_captured_tables_of_0512(self) -> None:
        """Every table 0.5.12's yggdrasilctl printed (data/v05/admin/*.ctl.txt), from
        its reply, byte for byte."""
        for entry in load_json("v05/index.json")["replies"]:
            args = entry.get("ctl_args")
            if not args or args.startswith("-json"):
                continue
            reply = load_json(f"v05/admin/{entry['reply_file']}")
            if reply["status"] != "success":
                continue
            text = tables.render(args.split()[0], reply["response"], "0.5")
            if text is None:  # printed as JSON
                continue
            expected = (DATA / "v05" / "admin" / entry["ctl_file"]).read_text()
            self.assertEqual(text, expected, entry["name"])

    def test_0512_units_and_durations(self) -> None:
        self.assertEqual(
            [tables.data_unit05(n) for n in (0, 99, 100, 1023, 1024, 1 << 20, 3 << 30, 1 << 40)],
            ["0B", "99B", "0.1KB", "1.0KB", "1.0KB", "1.0MB", "3.0GB", "1.0TB"],
        )
        self.assertEqual(
            [tables.go_round_seconds(n) for n in (0, 499_999_999, 500_000_000, 61_500_000_000)],
            ["0s", "0s", "1s", "1m2s"],
        )


class RealLinksTests(SynchronousTestCase):
    """Real routers and links in memory (tests.test_links_versions): a dual node peered
    over v0.5 with another dual node and over v0.4 with a v0.4-only one."""

    def setUp(self) -> None:
        from tests.test_links_versions import Side, advance, pair

        self.a, b, c = Side(), Side(), Side(("0.4",))
        self.v05, server = self.a.protocol(True, "198.51.100.7:1"), b.protocol(False)
        self.pump05 = pair(self.v05, server)
        self.v04, server04 = self.a.protocol(True, "198.51.100.8:1"), c.protocol(False)
        self.pump04 = pair(self.v04, server04)
        self.advance = lambda seconds: (
            advance(seconds, self.pump05, self.a, b),
            advance(0.01, self.pump04, self.a, c),
        )
        self.advance(2.5)
        self.assertEqual((self.v05.version, self.v04.version), ("0.5", "0.4"))

    def node(self) -> Any:
        a = self.a
        return fake_node(
            BOTH, router=a.router, router05=a.router05, links=a.links, reactor=a.reactor
        )

    def test_get_peers_lists_both_links_with_their_version(self) -> None:
        peers = call(self, self.node(), "getPeers")["peers"]
        self.assertEqual(
            sorted((p["remote"], p["version"], p["up"]) for p in peers),
            [("tcp://198.51.100.7:1", "0.5", True), ("tcp://198.51.100.8:1", "0.4", True)],
        )
        for row in peers:
            self.assertGreater(row["bytes_recvd"], 0)
            self.assertGreater(row["uptime"], 2)

    def test_rates_are_the_bytes_of_the_last_second(self) -> None:
        link = self.v05
        seen: list[tuple[int, int]] = []
        sample = link._rate_sampler.f

        def spy() -> None:
            sample()
            seen.append((link.bytes_recvd, link.bytes_sent))

        link._rate_sampler.f = spy
        self.advance(3)
        self.assertGreaterEqual(len(seen), 2)
        stats = link.stats()
        self.assertEqual(
            (stats.rate_recvd, stats.rate_sent),
            (seen[-1][0] - seen[-2][0], seen[-1][1] - seen[-2][1]),
        )
        link.transport.loseConnection()
        self.advance(0.1)
        self.assertFalse(link._rate_sampler.running)
        self.assertEqual((link.stats().rate_recvd, link.stats().rate_sent), (0, 0))
