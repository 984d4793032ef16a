"""Our admin socket next to the Go node's, driven by the real yggdrasilctl and by ygg ctl.

One Go 0.4.7 node and two of ours running v0.4 only, peered with it: one with its admin
socket on unix, one on tcp.  Every command yggdrasilctl knows runs against all three, as
tables and as -json; the outputs must parse the same way (same columns, same keys and
types; values such as keys and uptimes differ).  The raw requests of
``data/admin/index.json`` (errors, keep-alive, case, unknown fields) get replies of the
same shape and text.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import time
from typing import Any, ClassVar

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import YGGDRASILCTL, load_json, require_go
from tests.nodes import GoNode, Node, YggNode, remove_tree, short_tempdir, wait_until
from ygg import gojson
from ygg.admin import ctl

NODEINFO = {"name": "node <&>", "n": 1.5, "l": [1, 2]}
V04 = ("0.4",)
VOLATILE_KEYS = {"uptime", "bytes_recvd", "bytes_sent"}
VOLATILE_COLUMNS = {"Uptime", "RX", "TX"}

COLUMN = {
    "Port": r"\d+",
    "Public Key": r"[0-9a-f]{64}",
    "IP Address": r"2[0-9a-f]{2}:[0-9a-f:]+",
    "Uptime": r"(\d+h)?(\d+m)?\d+s",
    "RX": r" ?\d+[kmgt]b",
    "TX": r" ?\d+[kmgt]b",
    "Pr": r"\d+",
    "URI": r"(tcp|tls|unix)://\S+",
    "Rest": r"\d+",
    "Path": r"\[[\d ]*\]",
    "Interface": r"\S+",
    "Command": r"[a-z_]+",
    "Arguments": r"(\w+=\.\.\.)?(, \w+=\.\.\.)*",
    "Description": r".+",
}
LABELS = {
    "Build name:": r".+",
    "Build version:": r".+",
    "IPv6 address:": r"2[0-9a-f]{2}:[0-9a-f:]+",
    "IPv6 subnet:": r"3[0-9a-f]{2}:[0-9a-f:]+::/64",
    "Coordinates:": r"\[[\d ]*\]",
    "Public key:": r"[0-9a-f]{64}",
    "TUN enabled:": r"false",
}


def yggdrasilctl(node: Node, *argv: str, table: bool = True) -> tuple[int, str]:
    done = subprocess.run(
        [YGGDRASILCTL, "-endpoint", node.admin, *([] if table else ["-json"]), *argv],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return done.returncode, done.stdout


def ygg_ctl(node: Node, *argv: str, table: bool = True) -> tuple[int, str]:
    out = io.StringIO()
    flags = ["-endpoint", node.admin, *([] if table else ["-json"])]
    code = ctl.run([*flags, *argv], out, io.StringIO(), config_file="/nonexistent")
    return code, out.getvalue()


def shape(value: Any) -> Any:
    """What a value looks like, its scalars reduced to their JSON type; the keys of
    objects keyed by a node key or address reduced to one placeholder."""
    if isinstance(value, dict):
        if value and all(re.fullmatch(r"[0-9a-f]{64}|2[0-9a-f]{2}:[0-9a-f:]+", k) for k in value):
            return {"<node>": shape(next(iter(value.values())))}
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def same_shape(test: SynchronousTestCase, ours: Any, theirs: Any, where: str) -> None:
    """Equal shapes, where an empty list matches any list."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        test.assertEqual(list(ours), list(theirs), where)
        for key in theirs:
            same_shape(test, ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list) and isinstance(ours, list):
        if ours and theirs:
            same_shape(test, ours[0], theirs[0], f"{where}[0]")
    else:
        test.assertEqual(ours, theirs, where)


def cells(table: str) -> tuple[list[str], list[list[str]]]:
    """A yggdrasilctl table as its header and rows of stripped cells."""
    lines = table.splitlines()
    header = [c.strip() for c in lines[0].split("\t")] if lines else []
    rows = [[c.strip() for c in line.split("\t")[:-1]] for line in lines[1:]]
    return header, rows


def masked(table: str, headed: bool = True) -> str:
    """The table with the volatile columns blanked and padding dropped."""
    if not headed:
        return table
    header, rows = cells(table)
    keep = [i for i, name in enumerate(header) if name not in VOLATILE_COLUMNS]
    return "\n".join(
        "|".join(row[i] if i < len(row) else "" for i in keep) for row in [header, *rows]
    )


def masked_json(value: Any) -> Any:
    """Volatile members blanked; lists of keys sorted (the Go node lists a remote's peers
    in map order, which changes from one call to the next)."""
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE_KEYS else masked_json(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [masked_json(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_request(node: Node, text: bytes, timeout: float = 10.0) -> bytes:
    """Write ``text`` on the node's admin socket; everything it answers until it closes."""
    endpoint = node.admin
    if endpoint.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(timeout)
        sock.connect(endpoint[7:])
    else:
        host, port = endpoint[6:].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    with sock:
        sock.sendall(text)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def replies(data: bytes) -> list[Any]:
    text = data.decode()
    values, i = [], 0
    decoder = json.JSONDecoder()
    while text[i:].strip():
        while text[i] in " \n\t\r":
            i += 1
        value, i = decoder.raw_decode(text, i)
        values.append(value)
    return values


class AdminInteropCase(SynchronousTestCase):
    go: ClassVar[GoNode]
    unix: ClassVar[YggNode]
    tcp: ClassVar[YggNode]

    @classmethod
    def setUpClass(cls) -> None:
        require_go()
        cls.dir = short_tempdir("yai")
        cls.nodes: list[Node] = []
        try:
            cls.go = cls._start(
                GoNode(f"{cls.dir}/go", listen=["tcp://127.0.0.1:0"], nodeinfo=NODEINFO)
            )
            peer = cls.go.listen_uri("tcp")
            # Nodes running v0.4 only answer exactly as 0.4.7 (test_admin_interop_v05 has
            # the nodes running v0.5, and both).
            cls.unix = cls._start(
                YggNode(f"{cls.dir}/unix", versions=V04, peers=[peer], nodeinfo=NODEINFO)
            )
            cls.tcp = cls._start(
                YggNode(
                    f"{cls.dir}/tcp",
                    versions=V04,
                    peers=[peer],
                    admin=f"tcp://127.0.0.1:{free_port()}",
                    nodeinfo=NODEINFO,
                )
            )
            for node in (cls.unix, cls.tcp):
                node.wait_peer(cls.go.key)
                cls.go.wait_peer(node.key)
            root = min(n.key for n in cls.nodes)
            for node in cls.nodes:  # the tree has settled: coordinates stay put
                wait_until(
                    lambda n=node: (n.ctl("getSelf")["coords"] == []) == (n.key == root),
                    15,
                    f"{node} to agree on the root",
                )
            # Sessions and paths both ways, for getSessions and getPaths to show.
            for asker, asked in ((cls.unix, cls.go), (cls.go, cls.tcp), (cls.go, cls.unix)):
                wait_until(
                    lambda a=asker, b=asked: a.ctl("getNodeInfo", f"key={b.key}"),
                    20,
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

    def ours(self) -> list[YggNode]:
        return [self.unix, self.tcp]

    def other(self, node: Node) -> Node:
        """A node this one has a session with, for the commands that take a key."""
        return self.go if node is not self.go else self.unix

    def commands(self, node: Node) -> list[list[str]]:
        """Every command in the Go node's list, with arguments where it takes them."""
        names = [e["command"] for e in self.go.ctl("list")["list"]]
        argv = []
        for name in names:
            if name in ("addpeer", "removepeer"):
                continue  # changes state: test_add_and_remove_peer
            key = (
                [f"key={self.other(node).key}"] if name.startswith(("getnodeinfo", "debug")) else []
            )
            argv.append([name, *key])
        return argv


def keys_filled(reply: object) -> object:
    """debug_remoteGetPeers/DHT leave out "keys" when the remote has none at that moment
    (a young DHT often is empty): compare the shape as if it were there, empty."""
    if isinstance(reply, dict) and len(reply) == 1:
        ((address, inner),) = reply.items()
        if inner == {}:
            return {address: {"keys": []}}
    return reply


class YggdrasilctlTests(AdminInteropCase):
    def test_every_command_parses_as_against_go(self) -> None:
        """Tables and -json from both of our sockets (unix, tcp) have the columns, keys
        and value forms of the Go node's."""
        go_list = {e["command"] for e in self.go.ctl("list")["list"]}
        our_list = {e["command"] for e in self.unix.ctl("list")["list"]}
        self.assertEqual(go_list - our_list, set(), "methods the Go node has and we lack")
        for node in self.ours():
            for argv in self.commands(node):
                where = f"{node} {argv[0]}"
                go_argv = [argv[0], *(f"key={self.unix.key}" for _ in argv[1:])]
                code, ours = yggdrasilctl(node, *argv, table=False)
                go_code, theirs = yggdrasilctl(self.go, *go_argv, table=False)
                self.assertEqual((code, go_code), (0, 0), f"{where}: {ours}{theirs}")
                same_shape(
                    self,
                    shape(keys_filled(json.loads(ours))),
                    shape(keys_filled(json.loads(theirs))),
                    where,
                )

                code, ours = yggdrasilctl(node, *argv)
                go_code, theirs = yggdrasilctl(self.go, *go_argv)
                self.assertEqual((code, go_code), (0, 0), where)
                if argv[0] == "getnodeinfo" or argv[0].startswith("debug"):
                    # printed as the JSON text of the reply (its first value for nodeinfo)
                    same_shape(
                        self,
                        shape(keys_filled(json.loads(ours))),
                        shape(keys_filled(json.loads(theirs))),
                        where,
                    )
                    continue
                self.assert_table_like(ours, theirs, where)

    def assert_table_like(self, ours: str, theirs: str, where: str) -> None:
        our_header, our_rows = cells(ours)
        go_header, go_rows = cells(theirs)
        if go_header and go_header[0] in LABELS:  # getSelf, getTUN: label, value rows
            our_rows = [[c.strip() for c in line.split("\t")[:-1]] for line in ours.splitlines()]
            go_rows = [[c.strip() for c in line.split("\t")[:-1]] for line in theirs.splitlines()]
            self.assertEqual([r[0] for r in our_rows], [r[0] for r in go_rows], where)
            for label, value in our_rows:
                self.assertRegex(value, f"^(?:{LABELS[label]})$", f"{where} {label}")
            return
        self.assertEqual(our_header, go_header, where)
        for row in our_rows + go_rows:
            self.assertEqual(len(row), len(go_header), f"{where}: {row}")
            for name, value in zip(go_header, row, strict=True):
                self.assertRegex(value, f"^(?:{COLUMN[name]})$", f"{where} {name}")

    def test_list_is_the_go_nodes(self) -> None:
        """Same commands, descriptions and fields (when no plugin adds any), same table."""
        for node in self.ours():
            self.assertEqual(node.ctl("list"), self.go.ctl("list"))
            self.assertEqual(yggdrasilctl(node, "list"), yggdrasilctl(self.go, "list"))

    def test_errors_are_the_go_nodes(self) -> None:
        for argv in (
            ["getNodeInfo"],
            ["getNodeInfo", "key=zz"],
            ["getNodeInfo", "key=abc"],
            ["noSuchThing"],
            ["removePeer", "uri=tcp://127.0.0.1:1"],
            ["addPeer"],
            ["addPeer", "uri=foo://x"],
            ["addPeer", "uri=tcp://127.0.0.1:1?key=zz"],
            ["addPeer", "uri=tcp://127.0.0.1:1?priority=x"],
        ):
            expected = yggdrasilctl(self.go, *argv)
            self.assertEqual(expected[0], 1, expected)
            for node in self.ours():
                self.assertEqual(yggdrasilctl(node, *argv), expected, argv)
                self.assertEqual(yggdrasilctl(node, *argv, table=False), expected, argv)

    def test_add_and_remove_peer(self) -> None:
        uri = "tcp://127.0.0.1:1"
        for node in (self.go, *self.ours()):
            self.assertEqual(yggdrasilctl(node, "addPeer", f"uri={uri}"), (0, ""))
            self.assertEqual(
                yggdrasilctl(node, "addPeer", f"uri={uri}"),
                (1, "Admin socket returned an error: peer already configured\n"),
            )
            self.assertEqual(yggdrasilctl(node, "removePeer", f"uri={uri}"), (0, ""))
            self.assertEqual(
                yggdrasilctl(node, "removePeer", f"uri={uri}", table=False),
                (1, "Admin socket returned an error: peer not configured\n"),
            )
            self.assertEqual(yggdrasilctl(node, "addPeer", f"uri={uri}", table=False), (0, "{}\n"))
            self.assertEqual(yggdrasilctl(node, "removePeer", f"uri={uri}"), (0, ""))


class RawRequestTests(AdminInteropCase):
    """The requests of data/admin/index.json, written as they were captured."""

    def request_for(self, entry: dict[str, Any], node: Node) -> bytes:
        index = load_json("admin/index.json")
        text = entry["request_text"]
        text = text.replace(index["nodes"]["A"]["key"], node.key)
        return text.replace(index["nodes"]["B"]["key"], self.other(node).key).encode()

    def test_same_replies_as_go(self) -> None:
        from tests.helpers import DATA

        for entry in load_json("admin/index.json")["replies"]:
            where = f"{entry['node']}.{entry['name']}"
            captured = (DATA / "admin" / entry["reply_file"]).read_bytes()
            go_reply = raw_request(self.go, self.request_for(entry, self.go))
            for node in self.ours():
                reply = raw_request(node, self.request_for(entry, node))
                ours = replies(reply)
                theirs = replies(go_reply)
                self.assertEqual(len(ours), len(theirs), where)
                # Go's encoder, 2-space indent, newline after each reply
                self.assertEqual(
                    reply.decode(),
                    "".join(gojson.dumps(v, indent=2) + "\n" for v in ours),
                    where,
                )
                for mine, go in zip(ours, theirs, strict=True):
                    self.assertEqual(list(mine), list(go), where)
                    self.assertEqual(mine["status"], go["status"], where)
                    self.assertEqual(mine.get("error"), go.get("error"), where)
                    self.assertIsNone(mine["request"])
                    same_shape(self, shape(mine["response"]), shape(go["response"]), where)
                if entry["name"].startswith("error"):
                    self.assertEqual(reply, captured, where)  # no volatile values in these
                elif entry["node"] in "AB" and "NodeInfo" not in entry["name"]:
                    for mine, cap in zip(ours, replies(captured), strict=True):
                        same_shape(self, shape(mine), shape(cap), f"{where} (captured)")

    def test_keepalive_connection(self) -> None:
        """Requests answered in order on one connection while they ask to keep it."""
        text = (
            b'{"request":"getTUN","keepalive":true}{"request":"getself","keepalive":true}\n'
            b'  {"request":"nope","keepalive":true}{"request":"getMulticastInterfaces"}'
        )
        for node in (self.go, *self.ours()):
            got = replies(raw_request(node, text))
            self.assertEqual(
                [(r["status"], r.get("error")) for r in got],
                [
                    ("success", None),
                    ("success", None),
                    ("error", "Unknown action 'nope', try 'list' for help"),
                    ("success", None),
                ],
            )

    def test_split_writes(self) -> None:
        """A request that arrives a byte at a time is one request."""
        for node in self.ours():
            sock = socket.socket(socket.AF_UNIX)
            if node.admin.startswith("unix://"):
                sock.connect(node.admin[7:])
            else:
                sock.close()
                host, port = node.admin[6:].rsplit(":", 1)
                sock = socket.create_connection((host, int(port)))
            with sock:
                sock.settimeout(10)
                for byte in b'{"request": "getSelf", "arguments": {"x": "\xc3\xa9"}}':
                    sock.sendall(bytes([byte]))
                    time.sleep(0.001)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            self.assertEqual(replies(data)[0]["response"]["key"], node.key)


class YggCtlTests(AdminInteropCase):
    def test_same_output_as_yggdrasilctl(self) -> None:
        """ygg ctl and yggdrasilctl on the same node print the same (volatile columns
        and members aside), tables and -json, on the Go node and on ours."""
        for node in (self.go, *self.ours()):
            for argv in [*self.commands(node), ["noSuchThing"], ["getNodeInfo", "key=zz"]]:
                for table in (True, False):
                    code, expected = yggdrasilctl(node, *argv, table=table)
                    got_code, got = ygg_ctl(node, *argv, table=table)
                    where = f"{node} {argv} table={table}"
                    self.assertEqual(got_code, code, where)
                    if table and argv[0] in ("getpeers", "getsessions"):
                        self.assertEqual(masked(got), masked(expected), where)
                    elif table and argv[0].startswith("debug"):  # printed as JSON
                        self.assertEqual(
                            masked_json(json.loads(got)), masked_json(json.loads(expected)), where
                        )
                        self.assertEqual(len(got), len(expected))
                    elif not table and code == 0:
                        self.assertEqual(
                            masked_json(json.loads(got)), masked_json(json.loads(expected)), where
                        )
                    else:
                        self.assertEqual(got, expected, where)
