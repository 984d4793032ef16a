"""Our admin socket next to a Go 0.5.12 node's, driven by the real yggdrasilctl 0.5.12
(and 0.4.7), as tests/test_admin_interop.py does for 0.4.7.

The network: a Go 0.5.12 node, a Go 0.4.7 node, one of ours running v0.5 only (peered with
the 0.5.12 node; admin on unix) and one running both versions (peered with both Go nodes,
and with a configured peer that is down; admin on tcp).  Against our v0.5 node every
command of 0.5.12's yggdrasilctl must print what it prints against the Go node (same
columns and value forms, same keys and types in -json, same error texts); against our
dual node both yggdrasilctl versions must render every command, and getPeers must show the
links of both networks.
"""

from __future__ import annotations

import io
import json
import subprocess
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import DATA, YGGDRASILCTL, YGGDRASILCTL05, load_json, require_go, require_go05
from tests.nodes import GoNode, GoNode05, Node, YggNode, remove_tree, short_tempdir, wait_until
from tests.test_admin_interop import (
    COLUMN,
    LABELS,
    cells,
    free_port,
    keys_filled,
    raw_request,
    replies,
    same_shape,
    shape,
)
from ygg.admin import ctl

NODEINFO = {"name": "v05 <&>", "n": 1.5}
DOWN_PEER = "tcp://127.0.0.1:1"
SIZE = r"\d+B|\d+\.\d[KMGT]B"
COLUMN05 = {
    "URI": r"(tcp|tls|unix)://\S+",
    "State": r"Up|Down",
    "Dir": r"In|Out",
    "IP Address": r"(2[0-9a-f]{2}:[0-9a-f:]+)?",
    "Uptime": r"(\d+h)?(\d+m)?\d+s",
    "RTT": r"-|\d+\.\d\dms",
    "RX": SIZE,
    "TX": SIZE,
    "Down": rf"-|({SIZE})/s",
    "Up": rf"-|({SIZE})/s",
    "Pr": r"\d+",
    "Cost": r"\d+",
    "Last Error": r"-|\S+ ago: .+",
    "Public Key": r"[0-9a-f]{64}",
    "Parent": r"[0-9a-f]{64}",
    "Sequence": r"\d+",
    "Seq": r"\d+",
    "Path": r"\[[\d ]*\]",
    "Name": r"\S+",
    "Listen Address": r"\S+",
    "Beacon": r"Yes|-",
    "Listen": r"Yes|-",
    "Password": r"Yes|-",
    "Command": r"[a-z_]+",
    "Arguments": r"(\w+=\.\.\.)?(, \w+=\.\.\.)*",
    "Description": r".+",
}
LABELS05 = {
    **{k: v for k, v in LABELS.items() if k != "Coordinates:"},
    "Routing table size:": r"\d+",
}
VOLATILE_KEYS = {
    "uptime", "bytes_recvd", "bytes_sent", "rate_recvd", "rate_sent", "latency", "last_error_time"
}  # fmt: skip
VOLATILE_COLUMNS = {"Uptime", "RX", "TX", "RTT", "Down", "Up", "Last Error"}
#: Members Go leaves out when they are zero at that moment (no traffic in the last second,
#: no round trip measured yet).
NOW_AND_THEN = {"rate_recvd", "rate_sent", "latency", "last_error", "last_error_time"}


def run_ctl(binary: str, node: Node, *argv: str, table: bool = True) -> tuple[int, str]:
    done = subprocess.run(
        [binary, "-endpoint", node.admin, *([] if table else ["-json"]), *argv],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return done.returncode, done.stdout


def ctl05(node: Node, *argv: str, table: bool = True) -> tuple[int, str]:
    return run_ctl(YGGDRASILCTL05, node, *argv, table=table)


def ctl04(node: Node, *argv: str, table: bool = True) -> tuple[int, str]:
    return run_ctl(YGGDRASILCTL, node, *argv, table=table)


def ygg_ctl(node: Node, *argv: str, table: bool = True) -> tuple[int, str]:
    out = io.StringIO()
    flags = ["-endpoint", node.admin, *([] if table else ["-json"])]
    code = ctl.run([*flags, *argv], out, io.StringIO(), config_file="/nonexistent")
    return code, out.getvalue()


def steady(value: Any) -> Any:
    """The value less the members that come and go (``NOW_AND_THEN``)."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in NOW_AND_THEN}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def masked(table: str) -> str:
    header, rows = cells(table)
    keep = [i for i, name in enumerate(header) if name not in VOLATILE_COLUMNS]
    return "\n".join(
        "|".join(row[i] if i < len(row) else "" for i in keep) for row in [header, *rows]
    )


def masked_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE_KEYS else masked_json(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [masked_json(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


def types_within(test: SynchronousTestCase, ours: Any, theirs: Any, where: str) -> None:
    """Every member the Go reply has that ours has too is of the same JSON type (ours may
    have more: a dual node's union; a Go member left out as empty is read as zero)."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in theirs:
            if key in ours:
                types_within(test, ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list) and isinstance(ours, list):
        for mine in ours:
            if theirs:
                types_within(test, mine, theirs[0], f"{where}[]")
    else:
        test.assertEqual(shape(ours), shape(theirs), where)


class AdminInteropV05Case(SynchronousTestCase):
    go05: ClassVar[GoNode05]
    go04: ClassVar[GoNode]
    ours: ClassVar[YggNode]
    dual: ClassVar[YggNode]

    @classmethod
    def setUpClass(cls) -> None:
        require_go()
        require_go05()
        cls.dir = short_tempdir("yai5")
        cls.nodes: list[Node] = []
        try:
            cls.go05 = cls._start(
                GoNode05(f"{cls.dir}/go05", listen=["tcp://127.0.0.1:0"], nodeinfo=NODEINFO)
            )
            cls.go04 = cls._start(
                GoNode(f"{cls.dir}/go04", listen=["tcp://127.0.0.1:0"], nodeinfo=NODEINFO)
            )
            go05_uri, go04_uri = cls.go05.listen_uri("tcp"), cls.go04.listen_uri("tcp")
            cls.ours = cls._start(
                YggNode(f"{cls.dir}/ours", versions=("0.5",), peers=[go05_uri], nodeinfo=NODEINFO)
            )
            cls.dual = cls._start(
                YggNode(
                    f"{cls.dir}/dual",
                    versions=("0.4", "0.5"),
                    peers=[go05_uri, go04_uri, DOWN_PEER],
                    admin=f"tcp://127.0.0.1:{free_port()}",
                    nodeinfo=NODEINFO,
                )
            )
            for node in (cls.ours, cls.dual):
                cls.go05.wait_peer(node.key)
            cls.go04.wait_peer(cls.dual.key)
            # Sessions and paths both ways, for getSessions and getPaths to show.
            for asker, asked in (
                (cls.ours, cls.go05),
                (cls.go05, cls.ours),
                (cls.dual, cls.go05),
                (cls.dual, cls.go04),
                (cls.go05, cls.dual),
            ):
                wait_until(
                    lambda a=asker, b=asked: a.ctl("getNodeInfo", f"key={b.key}"),
                    30,
                    f"{asker} to reach {asked}",
                )
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls, node: Node) -> Any:
        cls.nodes.append(node)
        return node.start()

    @classmethod
    def tearDownClass(cls) -> None:
        for node in reversed(cls.nodes):
            node.stop()
        remove_tree(cls.dir)

    def other(self, node: Node) -> Node:
        """A node this one has a session with, for the commands that take a key."""
        return self.ours if node is self.go05 else self.go05

    def commands(self, names: list[str], node: Node) -> list[list[str]]:
        """Each command with the arguments it takes; addPeer/removePeer aside."""
        argv = []
        for name in names:
            if name in ("addpeer", "removepeer"):
                continue
            if name.startswith(("getnodeinfo", "debug")):
                peer = self.go04 if name.endswith("dht") else self.other(node)
                argv.append([name, f"key={peer.key}"])
            else:
                argv.append([name])
        return argv

    def assert_table_like(self, ours: str, theirs: str, where: str) -> None:
        """Same labels or columns, every cell of its column's form."""
        self.assert_table_form(ours, theirs, COLUMN05, LABELS05, where)

    def assert_table_form(
        self, ours: str, theirs: str, columns: dict, labels: dict, where: str
    ) -> None:
        our_header, our_rows = cells(ours)
        go_header, _ = cells(theirs)
        if go_header and go_header[0] in labels:  # getSelf, getTUN: label, value rows
            rows = [[c.strip() for c in line.split("\t")[:-1]] for line in ours.splitlines()]
            go_rows = [[c.strip() for c in line.split("\t")[:-1]] for line in theirs.splitlines()]
            self.assertEqual([r[0] for r in rows], [r[0] for r in go_rows], where)
            for label, value in rows:
                self.assertRegex(value, f"^(?:{labels[label]})$", f"{where} {label}")
            return
        self.assertEqual(our_header, go_header, where)
        for row in our_rows:
            self.assertEqual(len(row), len(go_header), f"{where}: {row}")
            for name, value in zip(go_header, row, strict=True):
                self.assertRegex(value, f"^(?:{columns[name]})$", f"{where} {name}")


class Yggdrasilctl05Tests(AdminInteropV05Case):
    def test_every_command_parses_as_against_go(self) -> None:
        """yggdrasilctl 0.5.12 against our v0.5 node: for every command of the Go node's
        list, the tables have its columns and -json its keys and types."""
        names = [e["command"] for e in self.go05.ctl("list")["list"]]
        for argv in self.commands(names, self.ours):
            where = f"ours {argv[0]}"
            go_argv = [argv[0], *(f"key={self.ours.key}" for _ in argv[1:])]
            code, ours = ctl05(self.ours, *argv, table=False)
            go_code, theirs = ctl05(self.go05, *go_argv, table=False)
            self.assertEqual((code, go_code), (0, 0), f"{where}: {ours}{theirs}")
            same_shape(
                self,
                shape(steady(keys_filled(json.loads(ours)))),
                shape(steady(keys_filled(json.loads(theirs)))),
                where,
            )
            code, ours = ctl05(self.ours, *argv)
            go_code, theirs = ctl05(self.go05, *go_argv)
            self.assertEqual((code, go_code), (0, 0), where)
            if argv[0] == "getnodeinfo" or argv[0].startswith("debug"):
                same_shape(
                    self,
                    shape(keys_filled(json.loads(ours))),
                    shape(keys_filled(json.loads(theirs))),
                    where,
                )
                continue
            self.assert_table_like(ours, theirs, where)

    def test_list_of_a_v05_node_is_the_go_nodes(self) -> None:
        self.assertEqual(self.ours.ctl("list"), self.go05.ctl("list"))
        self.assertEqual(ctl05(self.ours, "list"), ctl05(self.go05, "list"))

    def test_errors_are_the_go_nodes(self) -> None:
        """The same bad requests get the same texts from ours (v0.5, and both versions)."""
        for argv in (
            ["getNodeInfo"],
            ["getNodeInfo", "key=zz"],
            ["getNodeInfo", "key=abc"],
            ["debug_remoteGetSelf"],
            ["debug_remoteGetSelf", "key=zz"],
            ["debug_remoteGetPeers", "key=abc"],
            ["debug_remoteGetTree", "key=00"],
            ["noSuchThing"],
            ["removePeer", "uri=tcp://127.0.0.1:2"],
            ["addPeer", "uri=tcp://127.0.0.1:2?key=zz"],
            ["addPeer", "uri=tcp://127.0.0.1:2?priority=x"],
            ["addPeer", "uri=tcp://127.0.0.1:2?password=" + "x" * 65],
            ["addPeer", "uri=tcp://127.0.0.1:2?maxbackoff=1ms"],
            ["addPeer", "uri=%zz"],
            ["addPeer", "uri=tcp://[::1"],
        ):
            expected = ctl05(self.go05, *argv)
            self.assertEqual(expected[0], 1, (argv, expected))
            for node in (self.ours, self.dual):
                self.assertEqual(ctl05(node, *argv), expected, (node, argv))
                self.assertEqual(ctl05(node, *argv, table=False), expected, (node, argv))
        self.assertEqual(ctl05(self.ours, "getDHT"), ctl05(self.go05, "getDHT"))

    def test_add_and_remove_peer(self) -> None:
        """0.5.12's texts, and its peer identity: the URI less its query."""
        uri = "tcp://127.0.0.1:2"
        for node in (self.go05, self.ours, self.dual):
            self.assertEqual(ctl05(node, "addPeer", f"uri={uri}?priority=3"), (0, ""), node)
            self.assertEqual(
                ctl05(node, "addPeer", f"uri={uri}"),
                (1, "Admin socket returned an error: peer is already configured\n"),
                node,
            )
            self.assertEqual(ctl05(node, "removePeer", f"uri={uri}"), (0, ""), node)
            self.assertEqual(
                ctl05(node, "removePeer", f"uri={uri}", table=False),
                (1, "Admin socket returned an error: peer is not configured\n"),
                node,
            )

    def test_down_peer_shown_as_go_shows_it(self) -> None:
        """A configured peer that does not answer: listed Down with its last error."""
        code, text = ctl05(self.dual, "getPeers")
        self.assertEqual(code, 0)
        _, rows = cells(text)
        down = [r for r in rows if r[0] == DOWN_PEER]
        self.assertEqual(len(down), 1, text)
        self.assertEqual(down[0][1], "Down")
        self.assertRegex(down[0][-1], r"^\d+s ago: .*connection refused")


class RawRequestV05Tests(AdminInteropV05Case):
    def request_for(self, entry: dict[str, Any], node: Node) -> bytes:
        index = load_json("v05/index.json")
        text = entry["request_text"]
        for key in index["public_keys"].values():
            text = text.replace(key, self.other(node).key)
        return text.encode()

    def test_same_replies_as_go(self) -> None:
        """The captured requests: errors byte for byte as captured, the others with the
        Go node's envelope (the request echoed as it echoes it) and response shape."""
        for entry in load_json("v05/index.json")["replies"]:
            if entry["node"] not in "ABC":
                continue  # the TUN and multicast nodes
            where = f"{entry['node']}.{entry['name']}"
            captured = (DATA / "v05" / "admin" / entry["reply_file"]).read_bytes()
            go_reply = raw_request(self.go05, self.request_for(entry, self.go05))
            theirs = replies(go_reply)
            reply = raw_request(self.ours, self.request_for(entry, self.ours))
            ours = replies(reply)
            self.assertEqual(len(ours), len(theirs), where)
            for mine, go in zip(ours, theirs, strict=True):
                self.assertEqual(list(mine), list(go), where)
                self.assertEqual(mine["status"], go["status"], where)
                self.assertEqual(mine.get("error"), go.get("error"), where)
                if "key" not in entry["request_text"]:
                    self.assertEqual(mine["request"], go["request"], where)
                same_shape(
                    self,
                    shape(steady(keys_filled(mine["response"]))),
                    shape(steady(keys_filled(go["response"]))),
                    where,
                )
            if entry["name"].startswith("error"):
                self.assertEqual(reply, captured, where)
                dual = raw_request(self.dual, self.request_for(entry, self.dual))
                self.assertEqual(dual, captured, f"{where} (dual)")

    def test_keepalive_connection(self) -> None:
        text = (
            b'{"request":"getTUN","keepalive":true}{"request":"getself","keepalive":true}\n'
            b'  {"request":"nope","keepalive":true}{"request":"getMulticastInterfaces"}'
        )
        expected = replies(raw_request(self.go05, text))
        for node in (self.ours, self.dual):
            got = replies(raw_request(node, text))
            self.assertEqual(
                [(r["status"], r.get("error"), r["request"]) for r in got],
                [(r["status"], r.get("error"), r["request"]) for r in expected],
            )


class DualNodeTests(AdminInteropV05Case):
    """Both yggdrasilctl versions against the node running both versions."""

    def test_every_command_renders_with_either_client(self) -> None:
        names = [e["command"] for e in self.dual.ctl("list")["list"]]
        go_names = {
            YGGDRASILCTL: {e["command"] for e in self.go04.ctl("list")["list"]},
            YGGDRASILCTL05: {e["command"] for e in self.go05.ctl("list")["list"]},
        }
        go_node = {YGGDRASILCTL: self.go04, YGGDRASILCTL05: self.go05}
        # 0.4.7's columns, but for a configured peer that is down: no key, no address.
        column04 = {
            **COLUMN,
            "Public Key": r"([0-9a-f]{64})?",
            "IP Address": COLUMN05["IP Address"],
        }
        forms = {YGGDRASILCTL: (column04, LABELS), YGGDRASILCTL05: (COLUMN05, LABELS05)}
        for binary in (YGGDRASILCTL, YGGDRASILCTL05):
            go = go_node[binary]
            for argv in self.commands(names, self.dual):
                where = f"{binary} {argv}"
                code, ours = run_ctl(binary, self.dual, *argv, table=False)
                self.assertEqual(code, 0, f"{where}: {ours}")
                json.loads(ours)
                code, ours = run_ctl(binary, self.dual, *argv)
                self.assertEqual(code, 0, f"{where}: {ours}")
                if argv[0] not in go_names[binary]:
                    continue  # the other version's method: printed as JSON by this client
                go_argv = [argv[0], *(f"key={self.dual.key}" for _ in argv[1:])]
                go_code, theirs = run_ctl(binary, go, *go_argv)
                self.assertEqual(go_code, 0, where)
                if argv[0] == "getnodeinfo" or argv[0].startswith("debug"):
                    json.loads(ours)
                    continue
                code, ours_json = run_ctl(binary, self.dual, *argv, table=False)
                _, theirs_json = run_ctl(binary, go, *go_argv, table=False)
                types_within(self, json.loads(ours_json), json.loads(theirs_json), where)
                self.assert_table_form(ours, theirs, *forms[binary], where)

    def test_get_peers_shows_both_networks(self) -> None:
        peers = {p["key"]: p for p in self.dual.peers()}
        self.assertEqual(peers[self.go04.key]["version"], "0.4")
        self.assertEqual(peers[self.go05.key]["version"], "0.5")
        self.assertIsInstance(peers[self.go04.key]["coords"], list)
        for binary, key_column in ((YGGDRASILCTL, "Public Key"), (YGGDRASILCTL05, "IP Address")):
            code, text = run_ctl(binary, self.dual, "getPeers")
            self.assertEqual(code, 0, text)
            header, rows = cells(text)
            shown = {row[header.index(key_column)] for row in rows}
            for go in (self.go04, self.go05):
                wanted = go.key if key_column == "Public Key" else go.address_text()
                self.assertIn(wanted, shown, (binary, text))

    def test_multicast_interfaces_of_either_version_on_request(self) -> None:
        self.assertEqual(ctl04(self.dual, "getMulticastInterfaces", "version=0.4")[0], 0)
        self.assertEqual(
            ctl04(self.dual, "-json", "getMulticastInterfaces", "version=0.4"),
            (0, '{\n  "multicast_interfaces": []\n}\n'),
        )

    def test_ygg_ctl_shows_the_version_of_each_peer(self) -> None:
        """ygg ctl against the dual node: 0.5.12's table and a Version column."""
        code, text = ygg_ctl(self.dual, "getPeers")
        self.assertEqual(code, 0)
        header, rows = cells(text)
        self.assertEqual(header[:4], ["URI", "State", "Dir", "Version"])
        versions = {row[4]: row[3] for row in rows if row[1] == "Up"}
        self.assertEqual(
            versions, {self.go04.address_text(): "0.4", self.go05.address_text(): "0.5"}
        )
        # version=0.4: 0.4.7's reply of the v0.4 network, and 0.4.7's table
        code, text = ygg_ctl(self.dual, "getPeers", "version=0.4")
        go_code, go_text = ctl04(self.dual, "getPeers", "version=0.4")
        self.assertEqual((code, masked(text)), (go_code, masked(go_text)))
        header, rows = cells(text)
        self.assertEqual((header[0], [row[1] for row in rows]), ("Port", [self.go04.key]))


class YggCtlV05Tests(AdminInteropV05Case):
    def test_same_output_as_yggdrasilctl_05(self) -> None:
        """ygg ctl and yggdrasilctl 0.5.12 on the same v0.5 node (Go's and ours) print
        the same, volatile columns and members aside."""
        names = [e["command"] for e in self.go05.ctl("list")["list"]]
        for node in (self.go05, self.ours):
            for argv in [*self.commands(names, node), ["noSuchThing"], ["getNodeInfo", "key=zz"]]:
                for table in (True, False):
                    code, expected = ctl05(node, *argv, table=table)
                    got_code, got = ygg_ctl(node, *argv, table=table)
                    where = f"{node} {argv} table={table}"
                    self.assertEqual(got_code, code, where)
                    if table and argv[0] in ("getpeers", "getsessions"):
                        self.assertEqual(masked(got), masked(expected), where)
                    elif (table and argv[0].startswith("debug")) or (not table and code == 0):
                        self.assertEqual(
                            masked_json(json.loads(got)), masked_json(json.loads(expected)), where
                        )
                    else:
                        self.assertEqual(got, expected, where)
