"""``ygg ctl`` and the shared table code, against what yggdrasilctl 0.4.7 prints.

A scripted admin socket answers both clients with the same bytes (the captured replies in
``data/admin`` and made-up ones that reach the corners: units, long uptimes, wide
characters, compact JSON, odd replies); yggdrasilctl and ``ygg ctl`` must print the same
text, exit with the same status (but for yggdrasilctl's exit 0 after a fatal error) and
write the same request.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import threading
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import (
    DATA,
    YGG,
    YGGDRASILCTL,
    YGGDRASILCTL05,
    load_json,
    require_go,
    require_go05,
)
from tests.nodes import remove_tree, short_tempdir
from tests.processes import run
from ygg.admin import ctl, tables


class ScriptedAdmin:
    """A unix admin socket that answers every connection with ``reply`` (bytes) and
    remembers what each client wrote (up to its first newline)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reply = b""
        self.requests: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"unix://{self.path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(self.reply)

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept; the socket is closed only after it
        # has returned, so that its descriptor cannot be reused under it meanwhile.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()


def ygg_ctl(*argv: str, config_file: str = "/nonexistent/ygg.conf") -> tuple[int, str]:
    out = io.StringIO()
    code = ctl.run(list(argv), out, io.StringIO(), config_file=config_file)
    return code, out.getvalue()


def yggdrasilctl(*argv: str) -> tuple[int, str]:
    done = subprocess.run([YGGDRASILCTL, *argv], capture_output=True, text=True, timeout=20)
    return done.returncode, done.stdout


def go_reply(response: object, status: str = "success", error: str = "") -> bytes:
    """A reply as the Go node writes it."""
    reply: dict = {"status": status}
    if error:
        reply["error"] = error
    reply["request"] = None
    reply["response"] = response
    from ygg import gojson

    return (gojson.dumps(reply, indent=2) + "\n").encode()


PEER = {
    "address": "201:8c3a:d5b0:4fdf:3d78:8f2e:c29f:5411",
    "key": "5cf14a93ec0830a1dc344f582afbb7c1f5f1210b65c9239c476b99cdc3c3e781",
    "port": 1,
    "priority": 0,
    "coords": [1, 4],
    "remote": "tcp://127.0.0.1:52082",
    "bytes_recvd": 0,
    "bytes_sent": 0,
    "uptime": 0.5,
}
UNITS = [
    0,
    1,
    511,
    512,
    1023,
    1024,
    1536,
    1 << 20,
    (1 << 20) + 1,
    3 << 29,
    1 << 30,
    (1 << 30) + 1,
    (5 << 39) + 7,
    1 << 40,
    (1 << 40) + 1,
    (1 << 50) + 12345,
]
UPTIMES = [0, 0.999, 1, 59.999, 60, 61.5, 3599.9, 3600, 3725.2, 86400 * 3 + 5, 10_000_000.7]

MADE_UP = [
    # (command line, response) — each answered with a success reply
    (["getPeers"], {"peers": []}),
    (
        ["getPeers"],
        {
            "peers": [
                {
                    **PEER,
                    "port": i + 1,
                    "bytes_recvd": rx,
                    "bytes_sent": UNITS[-1 - i],
                    "uptime": up,
                }
                for i, (rx, up) in enumerate(zip(UNITS, UPTIMES * 2, strict=False))
            ]
        },
    ),
    (["getPeers"], {"peers": [{**PEER, "remote": "tls://[fe80::1%eth0]:1234", "priority": 255}]}),
    (
        ["getSessions"],
        {
            "sessions": [
                {
                    "address": PEER["address"],
                    "key": PEER["key"],
                    "bytes_recvd": rx,
                    "bytes_sent": 7,
                    "uptime": up,
                }
                for rx, up in zip(UNITS, UPTIMES, strict=False)
            ]
        },
    ),
    (["getSessions"], {"sessions": []}),
    (["getDHT"], {"dht": [{"address": "200::1", "key": "ab" * 32, "port": 12345, "rest": 0}]}),
    (["getDHT"], {"dht": []}),
    (["getPaths"], {"paths": [{"address": "200::1", "key": "ab" * 32, "path": [1, 22, 333]}]}),
    (["getPaths"], {"paths": [{"address": "200::1", "key": "ab" * 32, "path": []}]}),
    (["getMulticastInterfaces"], {"multicast_interfaces": ["eth0", "wlan0", "日本語"]}),
    (["getTUN"], {"enabled": True, "name": "ygg0", "mtu": 53049}),
    (["getTUN"], {"enabled": False}),
    (
        ["getSelf"],
        {
            "build_name": "ygg <dev>",
            "build_version": "0.1.0",
            "key": "ab" * 32,
            "address": "200::1",
            "coords": [],
            "subnet": "300::/64",
        },
    ),
    (["getSelf"], {"build_name": "x", "coords": [1, 2, 3]}),
    (
        ["list"],
        {
            "list": [
                {"command": "a", "description": "Ä wide 日本 cell", "fields": ["x", "y", "z"]},
                {"command": "addpeer", "description": "Add a peer", "fields": ["uri"]},
                {"command": "b", "description": ""},
            ]
        },
    ),
    (["addPeer", "uri=tcp://[::1]:1", "interface=eth0"], {}),
    (["removePeer", "uri=tcp://[::1]:1"], {}),
    (["getNodeInfo", "key=" + "ab" * 32], {"ab" * 32: {"name": "<&> é \u2028", "n": 1.5}}),
    (["getNodeInfo", "key=00"], {}),
    (["debug_remoteGetSelf", "key=ab"], {"200::1": {"coords": "[1 2]", "key": "ab" * 32}}),
    (["debug_remoteGetPeers", "key=ab"], {"200::1": {}}),
    (["somePluginMethod", "a=1", "b", "c=x=y", "a=2"], {"rows": [1, 2.5, "x", None, True]}),
    (["GETPEERS"], {"peers": [PEER]}),
    (["getself"], {"coords": None}),
    (["getPeers"], None),
    (["getPeers"], {"peers": [None, {}]}),
    (["getSelf"], None),
    (["getNodeInfo"], None),
    (["getTUN"], None),
    (["addPeer"], None),
]

RAW_REPLIES = [
    # (command line, exact reply bytes)
    (["getPeers"], b'{"status":"success","request":null,"response":{"peers":[]}}'),
    (
        ["somePlugin"],
        b'{"status":"success","request":null,"response":{"a" : [ 1 , {} , [] ],"b":"<"}}',
    ),
    (["somePlugin"], b'{"status":"success","request":null,"response":{"a":1.50,"b":1e3}}\n'),
    (["somePlugin"], b'{"status":"success","request":null}\n'),
    (["somePlugin"], b'{"status":"success","request":null,"response":null}\n'),
    (["somePlugin"], b'{"Status":"success","Response":{"x":"\\u00e9"}}\n'),
    (["getPeers"], b'{"status":"error","request":null,"response":null}\n'),
    (["getPeers"], b'{"status":"error","error":"bad <thing>","request":null,"response":null}\n'),
    (["getPeers"], b'{"status":"error","error":"x"}{"status":"success"}'),
]


class ScriptedCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = short_tempdir("yct")
        self.addCleanup(remove_tree, self.dir)
        self.admin = ScriptedAdmin(os.path.join(self.dir, "admin.sock"))
        self.addCleanup(self.admin.close)

    def assert_same(self, argv: list[str], reply: bytes) -> tuple[int, str]:
        """Both clients, table and -json: same output and status, same request bytes."""
        self.admin.reply = reply
        for flags in ([], ["-json"]):
            full = ["-endpoint", self.admin.endpoint, *flags, *argv]
            self.admin.requests.clear()
            expected = yggdrasilctl(*full)
            theirs = list(self.admin.requests)
            self.admin.requests.clear()
            got = ygg_ctl(*full)
            ours = list(self.admin.requests)
            self.assertEqual(got, expected, f"{full} answered with {reply!r}")
            self.assertEqual(ours, theirs)
        return got


class AgainstYggdrasilctlTests(ScriptedCase):
    """Requires the real yggdrasilctl: its output is the expected output."""

    def setUp(self) -> None:
        require_go()
        super().setUp()

    def test_captured_replies(self) -> None:
        """Every reply the real node gave (data/admin), printed for the command that
        asked for it; errors for any command."""
        for name in sorted(p.name for p in DATA.glob("admin/*.reply.json")):
            reply = (DATA / "admin" / name).read_bytes()
            method = name.split(".")[1].split("-")[0]
            if method in ("error", "request", "keepalive"):
                method = "getSelf"
            args = ["key=" + "ab" * 32] if method == "getNodeInfo" else []
            self.assert_same([method, *args], reply)

    def test_made_up_replies(self) -> None:
        for argv, response in MADE_UP:
            self.assert_same(argv, go_reply(response))

    def test_raw_replies(self) -> None:
        """Compact replies, unusual number and string forms, missing members, an error
        without text: the response is printed as the node wrote it."""
        for argv, reply in RAW_REPLIES:
            self.assert_same(argv, reply)

    def test_error_exit_status(self) -> None:
        code, out = self.assert_same(["getPeers"], go_reply(None, "error", "peer not configured"))
        self.assertEqual((code, out), (1, "Admin socket returned an error: peer not configured\n"))

    def test_arguments_as_yggdrasilctl_sends_them(self) -> None:
        """Arguments are strings, sorted, HTML-escaped; words without = are dropped; a
        flag after the command is an ignored argument; a first word that is a flag
        leaves the request name empty."""
        reply = go_reply({})
        for argv in (
            ["addPeer", "uri=tls://h:1?key=<&>", "interface=", "junk", "-json", "a=b=c"],
            ["-", "getSelf"],
            ["--", "-x", "getSelf", "y=1"],
            ["ünïcode", "k=\u2028"],
        ):
            self.assert_same(argv, reply)
        self.assertEqual(
            self.admin.requests[-1],
            b'{"request":"\xc3\xbcn\xc3\xafcode","arguments":{"k":"\\u2028"}}\n',
        )

    def test_unreadable_reply(self) -> None:
        """A reply that is not JSON, or a response of the wrong shape: yggdrasilctl
        prints its log and 'Fatal error' (and exits 0); so do we, exiting 1."""
        for argv, reply in (
            (["getPeers"], b"hello\n"),
            (["getPeers"], b'{"status":"success","response":{"peers":5}}'),
            (["getPeers"], b'{"status":"success","response":{"peers":[{"port":"x"}]}}'),
            (["getNodeInfo"], b'{"status":"success","response":[1]}'),
            (["getSelf"], b""),
        ):
            self.admin.reply = reply
            full = ["-endpoint", self.admin.endpoint, *argv]
            go_code, go_out = yggdrasilctl(*full)
            code, out = ygg_ctl(*full)
            self.assertEqual((go_code, code), (0, 1))
            self.assertIn("Fatal error:", go_out)
            self.assertIn("Fatal error:", out)
            self.assertEqual(
                [line.split(" ", 2)[2].split(":")[0] for line in out.splitlines()],
                [line.split(" ", 2)[2].split(":")[0] for line in go_out.splitlines()],
            )


def go05_reply(response: object, request: str = "getPeers", status: str = "success",
               error: str = "") -> bytes:  # fmt: skip
    """A reply as 0.5.12 writes it: the request echoed."""
    from ygg.admin.envelope import encode_reply

    reply: dict = {"status": status}
    if error:
        reply["error"] = error
    reply["request"] = None
    reply["response"] = response
    return encode_reply(reply, f'{{"request":"{request}","arguments":{{}}}}')


PEER05 = {
    "remote": "tls://[fe80::1%25eth0]:9100?key=ab",
    "up": True,
    "inbound": False,
    "address": PEER["address"],
    "key": PEER["key"],
    "port": 1,
    "priority": 3,
    "cost": 1,
    "bytes_recvd": 3655,
    "bytes_sent": 99,
    "rate_recvd": 1536,
    "uptime": 27.95,
    "latency": 944_999,
}

MADE_UP05 = [
    (["getPeers"], {"peers": []}),
    (
        ["getPeers"],
        {
            "peers": [
                PEER05,
                {**PEER05, "inbound": True, "latency": 999, "rate_sent": (3 << 30) + 5},
                {
                    "remote": "tcp://h:1",
                    "up": False,
                    "inbound": False,
                    "key": "",
                    "port": 0,
                    "priority": 0,
                    "cost": 0,
                    "last_error_time": 61_500_000_000,
                    "last_error": "dial tcp: connection refused",
                },
                *(
                    {**PEER05, "bytes_recvd": n, "bytes_sent": n + 1, "uptime": u}
                    for n, u in zip(UNITS, UPTIMES, strict=False)
                ),
                {**PEER05, "coords": [1, 2]},  # a v0.4 link of a dual node (less "version")
            ]
        },
    ),
    (["getSelf"], {"build_name": "ygg", "build_version": "0.1.0", "key": "ab" * 32,
                   "address": "200::1", "routing_entries": 12, "subnet": "300::/64"}),
    (["getSelf"], {"build_name": "ygg", "routing_entries": 3}),
    (["getTree"], {"tree": [{"address": "200::1", "key": "ab" * 32, "parent": "cd" * 32,
                             "sequence": 1796496041}]}),
    (["getTree"], {"tree": []}),
    (["getPaths"], {"paths": [{"address": "200::1", "key": "ab" * 32, "path": [1, 22],
                               "sequence": 5}, {"address": "200::2", "key": "cd" * 32,
                               "path": []}]}),
    (["getSessions"], {"sessions": [{"address": "200::1", "key": "ab" * 32, "bytes_recvd": n,
                                     "bytes_sent": 7, "uptime": 1.5} for n in UNITS]}),
    (["getMulticastInterfaces"], {"multicast_interfaces": [
        {"name": "lab0", "address": "[fe80::1%lab0]:9100", "beacon": True, "listen": False,
         "password": True}, {"name": "eth1", "address": "-", "beacon": False, "listen": True,
         "password": False}]}),
    (["getTUN"], {"enabled": True, "name": "ygg0", "mtu": 65535}),
    (["debug_remoteGetTree", "key=ab"], {"200::1": {"keys": ["ab" * 32]}}),
]  # fmt: skip


class AgainstYggdrasilctl05Tests(ScriptedCase):
    """ygg ctl against replies that echo the request (0.5.12's): the real yggdrasilctl
    0.5.12's output is the expected output."""

    def setUp(self) -> None:
        require_go05()
        super().setUp()

    def assert_same05(self, argv: list[str], reply: bytes) -> None:
        self.admin.reply = reply
        for flags in ([], ["-json"]):
            full = ["-endpoint", self.admin.endpoint, *flags, *argv]
            self.admin.requests.clear()
            done = subprocess.run(
                [YGGDRASILCTL05, *full], capture_output=True, text=True, timeout=20
            )
            theirs = list(self.admin.requests)
            self.admin.requests.clear()
            got = ygg_ctl(*full)
            self.assertEqual(got, (done.returncode, done.stdout), f"{full} answered {reply!r}")
            self.assertEqual(self.admin.requests, theirs)

    def test_captured_replies(self) -> None:
        """Every reply the 0.5.12 node gave (data/v05/admin), for its command."""
        for entry in load_json("v05/index.json")["replies"]:
            reply = (DATA / "v05" / "admin" / entry["reply_file"]).read_bytes()
            name = json.JSONDecoder().raw_decode(reply.decode())[0]["request"]["request"]
            name = name or "getSelf"
            args = ["key=" + "ab" * 32] if name.lower().startswith(("getnodeinfo", "debug")) else []
            self.assert_same05([name, *args], reply)

    def test_made_up_replies(self) -> None:
        """Units, round trips, a peer that is down, a union row (coords; ygg ctl adds a
        Version column where rows have "version", which yggdrasilctl does not show)."""
        for argv, response in MADE_UP05:
            self.assert_same05(argv, go05_reply(response, argv[0]))

    def test_error(self) -> None:
        self.assert_same05(
            ["getPeers"], go05_reply(None, status="error", error="peer is not configured")
        )


class EndpointTests(ScriptedCase):
    def test_connection_refused(self) -> None:
        """yggdrasilctl's log lines, then the error; status 1."""
        code, out = ygg_ctl("-endpoint", f"unix://{self.dir}/nothing.sock", "getSelf")
        self.assertEqual(code, 1)
        lines = [line.split(" ", 2)[2] for line in out.splitlines()]
        self.assertEqual(
            lines,
            [
                f"Using endpoint unix://{self.dir}/nothing.sock from command line",
                f"Connecting to UNIX socket {self.dir}/nothing.sock",
                f"Fatal error: dial unix {self.dir}/nothing.sock: connect: "
                "no such file or directory",
            ],
        )
        require_go()
        go_code, go_out = yggdrasilctl("-endpoint", f"unix://{self.dir}/nothing.sock", "getSelf")
        self.assertEqual(go_code, 0)  # sic
        self.assertEqual([line.split(" ", 2)[2] for line in go_out.splitlines()], lines)

    def test_unknown_scheme(self) -> None:
        code, out = ygg_ctl("-endpoint", "foo://x", "getSelf")
        self.assertEqual(code, 1)
        self.assertIn("Unknown protocol or malformed address - check your endpoint", out)
        self.assertIn("Fatal error: protocol not supported", out)

    def test_tcp_forms(self) -> None:
        """tcp://host:port as yggdrasilctl; bare host:port and [::1]:port too (which
        yggdrasilctl cannot use)."""
        server = socket.socket(socket.AF_INET6)
        server.bind(("::1", 0))
        server.listen(4)
        self.addCleanup(server.close)
        port = server.getsockname()[1]

        def answer() -> None:
            for _ in range(2):
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(go_reply({"enabled": False}))

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        for endpoint in (f"tcp://[::1]:{port}", f"[::1]:{port}"):
            self.assertEqual(
                ygg_ctl("-endpoint", endpoint, "getTUN"), (0, "TUN enabled:\tfalse\t\n")
            )
        thread.join(5)

    def test_default_endpoint_from_config_file(self) -> None:
        """No -endpoint (or the default spelled out): AdminListen of the config file,
        when it sets one other than none; else the default socket."""
        self.admin.reply = go_reply({"enabled": False})
        conf = Path(self.dir, "yggdrasil.conf")
        conf.write_text(f"{{\n  # a comment\n  AdminListen: {self.admin.endpoint}\n}}\n")
        for argv in (["getTUN"], ["-endpoint", ctl.DEFAULT_ENDPOINT, "getTUN"]):
            self.assertEqual(ygg_ctl(*argv, config_file=str(conf)), (0, "TUN enabled:\tfalse\t\n"))
        for text in ('{"AdminListen": "none"}', "{}", "not { hjson", ""):
            conf.write_text(text)
            code, out = ygg_ctl("getTUN", config_file=str(conf))
            self.assertEqual(code, 1)
            self.assertIn(f"Falling back to platform default {ctl.DEFAULT_ENDPOINT}", out)

    def test_flags(self) -> None:
        self.admin.reply = go_reply({"enabled": False})
        for argv in (
            ["--endpoint=" + self.admin.endpoint, "--json=true", "getTUN"],
            ["-json", "-endpoint", self.admin.endpoint, "getTUN"],
        ):
            self.assertEqual(ygg_ctl(*argv), (0, '{\n  "enabled": false\n}\n'))
        self.assertEqual(ygg_ctl("-nope", "getTUN")[0], 2)
        self.assertEqual(ygg_ctl("-json=maybe", "getTUN")[0], 2)
        self.assertEqual(ygg_ctl("-endpoint")[0], 2)
        self.assertEqual(ygg_ctl()[0], 0)
        self.assertEqual(ygg_ctl("-h")[0], 0)
        code, out = ygg_ctl("-version")
        self.assertEqual(code, 0)
        self.assertIn("Build name: ygg\n", out)

    def test_ygg_ctl_command(self) -> None:
        """``ygg ctl`` is a subcommand of the installed ygg."""
        self.admin.reply = go_reply({"multicast_interfaces": []})
        done = run([YGG, "ctl", "-endpoint", self.admin.endpoint, "getMulticastInterfaces"])
        self.assertEqual((done.returncode, done.stdout), (0, "Interface \n"), done.stderr)
        done = run([YGG, "--help"])
        self.assertIn("ctl ", done.stdout)


class TableTests(SynchronousTestCase):
    """The table code alone (what yggdrasilctl printed in the runs above)."""

    def test_captured_get_peers(self) -> None:
        response = load_json("admin/A.getPeers.reply.json")["response"]
        self.assertEqual(
            tables.render("getPeers", response),
            "Port\t                           Public Key                           \t"
            "              IP Address              \tUptime\t RX \t TX \tPr\t         URI"
            "          \n"
            "1   \t5cf14a93ec0830a1dc344f582afbb7c1f5f1210b65c9239c476b99cdc3c3e781\t"
            "201:8c3a:d5b0:4fdf:3d78:8f2e:c29f:5411\t4s    \t 2kb\t 2kb\t0 \t"
            "tcp://127.0.0.1:52082\t\n",
        )

    def test_units_and_durations(self) -> None:
        self.assertEqual(
            [tables.data_unit(n) for n in (0, 512, 1536, 1 << 20, (1 << 20) + 1, 5 << 40)],
            [" 0kb", " 0kb", " 2kb", "1024kb", " 1mb", " 5tb"],
        )
        self.assertEqual(
            [tables.go_duration(s) for s in (0, 0.9, 59.9, 60, 3600, 3725.5, -61)],
            ["0s", "0s", "59s", "1m0s", "1h0m0s", "1h2m5s", "-1m1s"],
        )

    def test_unknown_command_has_no_table(self) -> None:
        self.assertIsNone(tables.render("getNodeInfo", {}))
        self.assertEqual(tables.render("addPeer", {}), "")
        self.assertRaises(TypeError, tables.render, "getPeers", [])

    def test_generic(self) -> None:
        self.assertEqual(
            tables.generic([{"a": 1, "b": [1, 2]}, {"b": True, "c": None}]),
            "a\t  b  \tc \n1\t[1 2]\t \t\n \ttrue \t \t\n",
        )

    def test_go_indent(self) -> None:
        raw = '{"a" : [ 1 , {} , [ ] ],"b":"<x>","c":{"d":null}}'
        self.assertEqual(
            ctl.go_indent(raw),
            '{\n  "a": [\n    1,\n    {},\n    []\n  ],\n  "b": "\\u003cx\\u003e",\n'
            '  "c": {\n    "d": null\n  }\n}',
        )
        self.assertEqual(json.loads(ctl.go_indent(raw)), json.loads(raw))
