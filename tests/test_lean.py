"""A lean node: what it imports (and what it leaves out until a config or a runtime change
needs it), the TUN configured without pyroute2, entry points without importlib.metadata,
JSON configs without hjson, and the start-up heap given back (issue 18)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import PYTHON, ROOT, require_go, require_root
from tests.nodes import GoNode, YggNode, remove_tree, short_tempdir
from tests.processes import run
from ygg import config, entrypoints, heap
from ygg.keys import NodeKey, VerifyCache
from ygg.links.manager import Links
from ygg.network.router import Router

#: Never in a node without tls://, wss://, sockstls:// or quic:// links, the SSH shell or AMP.
TLS_AND_SSH = (
    "OpenSSL",
    "cryptography",
    "service_identity",
    "twisted.internet.ssl",
    "twisted.protocols.tls",
    "twisted.conch",
)
#: Never in a node at all unless something asks: the TUN needs none of them either.
UNUSED = (
    "pyroute2",
    "hjson",
    "importlib.metadata",
    "http.client",
    "urllib.request",
    "email",
    "ssl",
    "hashlib",
    "asyncio",
    "concurrent.futures",
    "decimal",
    "twisted.protocols.amp",
    "twisted.names",
    "autobahn",
    "aioquic",
)


def python(code: str, timeout: float = 60.0, wrap: tuple[str, ...] = ()) -> str:
    """Run ``code`` in a fresh interpreter (this checkout's ygg); its standard output."""
    done = run([*wrap, PYTHON, "-c", code], timeout=timeout, cwd=str(ROOT))
    if done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


# -- a running node -----------------------------------------------------------------------

#: ``ygg run`` with the real reactor; after a second, the modules it has imported.
_NODE = """
import json, sys
import ygg
from twisted.internet import reactor
from ygg import runner

def report():
    print("MODULES " + json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))
    reactor.stop()

reactor.callLater(1.5, report)
sys.exit(runner.run(["--config", {path!r}], reactor))
"""


class RunningNodeImportTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = short_tempdir("ygglean")
        self.addCleanup(remove_tree, self.dir)

    def node_modules(self, settings: dict[str, object], wrap: tuple[str, ...] = ()) -> list[str]:
        key = NodeKey.generate()
        cfg = {
            "PrivateKey": key.private.hex(),
            "Listen": ["tcp://127.0.0.1:0"],
            "Peers": ["tcp://127.0.0.1:1"],
            "AdminListen": f"unix://{self.dir}/admin.sock",
            "IfName": "none",
            "MulticastInterfaces": [{"Regex": "^lo$", "Beacon": True, "Listen": True, "Port": 0}],
            **settings,
        }
        path = Path(self.dir, "config.json")
        path.write_text(json.dumps(cfg))
        out = python(_NODE.format(path=str(path)), wrap=wrap)
        self.assertIn("Your IPv6 address is", out)
        line = next(line for line in out.splitlines() if line.startswith("MODULES "))
        return json.loads(line.removeprefix("MODULES "))

    def test_no_tls_no_shell_no_amp(self) -> None:
        """The everyday node (both versions) has imported no OpenSSL, cryptography or conch."""
        modules = self.node_modules({})
        self.assertEqual(loaded(modules, TLS_AND_SSH), [])
        self.assertEqual(loaded(modules, UNUSED), [])

    def test_v04_only(self) -> None:
        modules = self.node_modules({"ProtocolVersions": ["0.4"]})
        self.assertEqual(loaded(modules, TLS_AND_SSH + UNUSED), [])

    def test_with_the_tun(self) -> None:
        """The TUN is set up (MTU, address, up) without pyroute2."""
        require_root()
        modules = self.node_modules({"IfName": "auto"}, wrap=("unshare", "--net", "--"))
        self.assertIn("twisted.pair.tuntap", modules)
        self.assertEqual(loaded(modules, TLS_AND_SSH + UNUSED), [])

    def test_a_tls_listener_loads_tls(self) -> None:
        modules = self.node_modules({"Listen": ["tls://127.0.0.1:0"]})
        self.assertEqual(
            loaded(modules, ("OpenSSL", "twisted.protocols.tls")),
            [
                "OpenSSL",
                "twisted.protocols.tls",
            ],
        )
        self.assertEqual(loaded(modules, ("twisted.conch",)), [])


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


class RuntimeTLSPeerTests(SynchronousTestCase):
    """A node started without TLS dials a tls:// peer added at runtime: pyOpenSSL and
    cryptography load then, and the link comes up."""

    def test_add_tls_peer_at_runtime(self) -> None:
        require_go()
        work = short_tempdir("ygglt")
        self.addCleanup(remove_tree, work)
        go = GoNode(f"{work}/go", listen=["tls://127.0.0.1:0"])
        go.start()
        self.addCleanup(go.stop)
        ours = YggNode(f"{work}/ours", listen=["tcp://127.0.0.1:0"])
        ours.start()
        self.addCleanup(ours.stop)
        assert ours.process is not None
        pid = ours.process.proc.pid
        # cryptography's Rust extension carries its OpenSSL: not mapped before the peer.
        self.assertNotIn("_rust.abi3.so", _maps(pid))
        ours.ctl("addPeer", f"uri={go.listen_uri('tls')}")
        rows = ours.wait_peer(go.key, timeout=30)
        self.assertTrue(rows[0]["remote"].startswith("tls://"), rows)
        self.assertIn("_rust.abi3.so", _maps(pid))
        # And the Go node sees us over it.
        go.wait_peer(ours.key, timeout=30)


# -- Twisted without TLS until it is needed -------------------------------------------------

_BEFORE = """
import sys
import ygg
from twisted.internet import reactor
import twisted.internet.endpoints as endpoints, twisted.internet.posixbase as posixbase
import asyncio.base_events, asyncio.sslproto
from twisted.internet.interfaces import IReactorSSL
assert "OpenSSL" not in sys.modules and "ssl" not in sys.modules, sorted(sys.modules)
assert endpoints.TLSMemoryBIOFactory is None and posixbase.tls is None
assert not IReactorSSL.providedBy(reactor)
assert asyncio.base_events.ssl is None
assert not hasattr(endpoints, "optionsForClientTLS")
"""

_AFTER_TLS = """
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.internet import ssl as twisted_ssl
assert endpoints.TLSMemoryBIOFactory is TLSMemoryBIOFactory
assert posixbase.tls is not None and posixbase.ssl is twisted_ssl
assert IReactorSSL.providedBy(reactor)
assert endpoints.optionsForClientTLS is twisted_ssl.optionsForClientTLS
assert endpoints.SNIConnectionCreator is not None and endpoints._TLSServerEndpoint is not None
assert ygg.leanimport.left_out() == {"ssl"} or "ssl" in sys.modules
print("ok")
"""

#: An actual TLS connection over loopback with Twisted's own helpers, after the give-back.
_HANDSHAKE = """
from twisted.internet import defer, protocol, ssl as twisted_ssl
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from ygg.links import tls as ygg_tls
from ygg.keys import NodeKey

class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)

class Ask(protocol.Protocol):
    def __init__(self):
        self.answer = defer.Deferred()
    def connectionMade(self):
        self.transport.write(b"ping")
    def dataReceived(self, data):
        self.answer.callback(data)

server = ygg_tls.server_context_factory(NodeKey.generate())
port = reactor.listenSSL(0, protocol.Factory.forProtocol(Echo), server, interface="127.0.0.1")
creator = ygg_tls.client_connection_creator(NodeKey.generate(), None)
endpoint = wrapClientTLS(creator, TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port))
result = []
def done(answer):
    result.append(answer)
    reactor.stop()
connectProtocol(endpoint, Ask()).addCallback(lambda p: p.answer).addBoth(done)
reactor.callLater(10, reactor.stop)
reactor.run()
assert result == [b"ping"], result
print("handshake ok")
"""


class LeanImportTests(SynchronousTestCase):
    """Each in a fresh interpreter: ``import ygg`` before Twisted, as ``ygg run`` does."""

    def given_back_after(self, first: str) -> None:
        out = python(_BEFORE + first + "\n" + _AFTER_TLS)
        self.assertEqual(out.split()[-1], "ok", out)

    def test_pyopenssl_first(self) -> None:
        self.given_back_after("import OpenSSL")

    def test_twisted_ssl_first(self) -> None:
        self.given_back_after("from twisted.internet.ssl import CertificateOptions")

    def test_twisted_tls_protocol_first(self) -> None:
        self.given_back_after("from twisted.protocols.tls import TLSMemoryBIOFactory")

    def test_sslverify_first(self) -> None:
        self.given_back_after("import twisted.internet._sslverify")

    def test_sni_first(self) -> None:
        self.given_back_after("import twisted.protocols._sni")

    def test_service_identity_first(self) -> None:
        """service_identity imports pyOpenSSL, and Twisted's TLS imports service_identity."""
        self.given_back_after("import service_identity")

    def test_aioquic_first(self) -> None:
        self.given_back_after("import aioquic.tls")

    def test_ygg_tls_first(self) -> None:
        self.given_back_after(
            "import ygg.links.tls, ygg.keys\n"
            "assert 'OpenSSL' not in sys.modules  # the module alone loads nothing\n"
            "ygg.links.tls.make_certificate(ygg.keys.NodeKey.generate())"
        )

    def test_twisted_tls_works_after(self) -> None:
        """listenSSL and wrapClientTLS, both left out at import, carry a real handshake."""
        out = python(_BEFORE + "import ygg.links.tls\n" + _HANDSHAKE)
        self.assertIn("handshake ok", out)

    def test_asyncio_gets_ssl_back(self) -> None:
        out = python(
            _BEFORE
            + "import ssl\n"
            + "assert asyncio.base_events.ssl is ssl and asyncio.sslproto.ssl is ssl\n"
            + "assert asyncio.sslproto.SSLAgainErrors == "
            + "(ssl.SSLWantReadError, ssl.SSLSyscallError)\n"
            + "assert ygg.leanimport.left_out() == {'OpenSSL'}\n"
            + "print('ok')"
        )
        self.assertEqual(out.split()[-1], "ok", out)

    def test_defer_without_asyncio(self) -> None:
        """Deferreds run coroutines with the stand-in; asyncio, imported later, is whole and
        defer gets its own names back (Deferred.fromFuture on a real loop)."""
        out = python(
            "import sys\n"
            "import ygg\n"
            "from twisted.internet import defer, reactor\n"
            "assert 'asyncio' not in sys.modules and 'concurrent' not in sys.modules\n"
            "assert defer.iscoroutine.__module__ == 'ygg.leanimport'\n"
            "async def answer():\n"
            "    return await defer.succeed(42)\n"
            "got = []\n"
            "defer.ensureDeferred(answer()).addCallback(got.append)\n"
            "assert got == [42], got\n"
            "def gen():\n"
            "    yield 1\n"
            "for obj in (answer(), gen(), 1, b'x'):\n"
            "    assert defer.iscoroutine(obj) == isinstance(obj, type(answer())), obj\n"
            "@defer.inlineCallbacks\n"  # a coroutine yielded is awaited
            "def flow():\n"
            "    return (yield answer()) + 1\n"
            "flow().addCallback(got.append)\n"
            "assert got == [42, 43], got\n"
            "import asyncio\n"
            "assert defer.iscoroutine is asyncio.iscoroutine and defer.Future is asyncio.Future\n"
            "assert defer.AbstractEventLoop is asyncio.AbstractEventLoop\n"
            "loop = asyncio.new_event_loop()\n"
            "future = loop.create_future()\n"
            "seen = []\n"
            "defer.Deferred.fromFuture(future).addCallback(seen.append)\n"
            "loop.call_soon(future.set_result, 'done')\n"
            "loop.run_until_complete(asyncio.sleep(0.01))\n"
            "assert seen == ['done'], seen\n"
            "print('ok')"
        )
        self.assertEqual(out.split()[-1], "ok", out)

    def test_cookiejar_loads_when_used(self) -> None:
        out = python(
            _BEFORE
            + "assert 'urllib.request' not in sys.modules\n"
            + "from twisted.python import compat\n"
            + "import http.cookiejar\n"
            + "assert http.cookiejar.CookieJar().__class__.__name__ == 'CookieJar'\n"
            + "assert 'urllib.request' in sys.modules\n"
            + "print('ok')"
        )
        self.assertEqual(out.split()[-1], "ok", out)

    def test_twisted_first_changes_nothing(self) -> None:
        """Twisted's reactor imported before ygg: stock Twisted, TLS and all."""
        out = python(
            "import sys\n"
            "from twisted.internet import reactor\n"
            "import twisted.internet.endpoints as endpoints\n"
            "import ygg\n"
            "assert endpoints.TLSMemoryBIOFactory is not None\n"
            "print('ok')"
        )
        self.assertEqual(out.split()[-1], "ok", out)


# -- the certificate: made by the first TLS link -------------------------------------------


class CertificateTests(SynchronousTestCase):
    def test_made_when_a_tls_link_needs_it(self) -> None:
        key = NodeKey.generate()
        clock = Clock()
        router = Router(key, clock, lambda source, message: None)
        links = Links(clock, router, key, peers=["tcp://127.0.0.1:1"])
        self.assertIsNone(links._certificate)
        self.assertIsNone(links.certificate_for("tcp"))
        self.assertIsNone(links.certificate_for("unix"))
        certificate = links.certificate_for("tls")
        self.assertIsNotNone(certificate)
        self.assertIs(links.certificate_for("quic"), certificate)  # one for every link
        self.assertIs(links.certificate, certificate)


# -- the TUN's settings ----------------------------------------------------------------------

_TUN = """
import fcntl, json, os, socket, struct, subprocess, errno
from ygg.tun.ifconfig import InterfaceConfig
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, 0x400454CA, struct.pack("16sH", b"lean0", 0x0001 | 0x1000))
with InterfaceConfig("lean0") as interface:
    interface.set_mtu(1400)
    mtu = interface.mtu()
    interface.add_address(socket.inet_pton(socket.AF_INET6, "200:1234::1"), 7)
    interface.up()
    try:
        interface.set_mtu(70000)
        refused = None
    except OSError as e:
        refused = errno.errorcode[e.errno]
shown = json.loads(subprocess.run(["ip", "-j", "addr", "show", "dev", "lean0"],
                                  capture_output=True, text=True, check=True).stdout)[0]
routes = subprocess.run(["ip", "-6", "route", "show", "dev", "lean0"],
                        capture_output=True, text=True, check=True).stdout
print(json.dumps({"mtu": mtu, "shown": shown, "routes": routes, "refused": refused}))
"""


class InterfaceConfigTests(SynchronousTestCase):
    def test_mtu_address_up(self) -> None:
        require_root()
        out = json.loads(python(_TUN, wrap=("unshare", "--net", "--")))
        shown = out["shown"]
        self.assertEqual(out["mtu"], 1400)
        self.assertEqual(shown["mtu"], 1400)
        self.assertIn("UP", shown["flags"])
        addresses = [(a["local"], a["prefixlen"]) for a in shown["addr_info"]]
        self.assertIn(("200:1234::1", 7), addresses)
        self.assertIn("200::/7", out["routes"])  # the kernel's prefix route, as with netlink
        self.assertEqual(out["refused"], "EINVAL")  # above what a TUN takes

    def test_unknown_interface(self) -> None:
        from ygg.tun.ifconfig import InterfaceConfig

        with self.assertRaises(OSError):
            InterfaceConfig("nosuch-lean0")


# -- entry points ---------------------------------------------------------------------------


class EntryPointTests(SynchronousTestCase):
    def test_same_as_importlib_metadata(self) -> None:
        from importlib import metadata

        for group in ("ygg.features", "console_scripts"):
            ours = sorted((e.name, e.value, e.dist.name) for e in entrypoints.entry_points(group))
            theirs = sorted(
                (e.name, e.value, e.dist.metadata["Name"])
                for e in metadata.entry_points(group=group)
            )
            self.assertEqual(ours, theirs, group)

    def test_layouts(self) -> None:
        """dist-info (RECORD) and egg-info (installed-files.txt, SOURCES.txt); the first
        distribution of a name on the path wins; comments and other groups are skipped."""
        top = tempfile.mkdtemp(prefix="yggep")
        self.addCleanup(remove_tree, top)
        first, second = Path(top, "a"), Path(top, "b")

        def dist(where: Path, dirname: str, name: str, files: dict[str, str]) -> None:
            meta = where / dirname
            meta.mkdir(parents=True)
            header = "METADATA" if dirname.endswith(".dist-info") else "PKG-INFO"
            (meta / header).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1\n")
            for filename, text in files.items():
                (meta / filename).write_text(text)

        points = "# a comment\n[other]\nx = nope:x\n\n[ygg.features]\none = pkg_one.mod:feature\n"
        dist(
            first,
            "pkg_one-1.0.dist-info",
            "pkg-one",
            {
                "entry_points.txt": points,
                "RECORD": 'pkg_one/mod.py,sha256=x,1\n"ygg/odd, name.py",,\n',
            },
        )
        dist(
            first,
            "pkg_two.egg-info",
            "pkg_two",
            {
                "entry_points.txt": "[ygg.features]\ntwo = pkg_two:obj.attr [extra]\n",
                "installed-files.txt": "../pkg_two/__init__.py\n",
            },
        )
        dist(
            second,
            "Pkg.One-2.0.dist-info",
            "Pkg.One",
            {
                "entry_points.txt": "[ygg.features]\nshadowed = other:x\n",
            },
        )
        dist(second, "pkg_three.egg-info", "pkg-three", {"SOURCES.txt": "pkg_three/x.py\n"})
        saved = list(sys.path)
        self.addCleanup(setattr, sys, "path", saved)
        sys.path[:] = [str(first), str(second), str(Path(top, "missing"))]
        found = {e.name: e for e in entrypoints.entry_points("ygg.features")}
        self.assertEqual(sorted(found), ["one", "two"])
        self.assertEqual(found["one"].value, "pkg_one.mod:feature")
        self.assertEqual(found["one"].dist.files(), ["pkg_one/mod.py", "ygg/odd, name.py"])
        self.assertEqual(found["two"].dist.files(), ["pkg_two/__init__.py"])
        names = {d.name: d for d in entrypoints.distributions()}
        self.assertEqual(sorted(names), ["pkg-one", "pkg-three", "pkg_two"])
        self.assertEqual(names["pkg-three"].files(), ["pkg_three/x.py"])

    def test_load(self) -> None:
        dist = entrypoints.Distribution("x", "/nonexistent")
        point = entrypoints.EntryPoint("k", "ygg.keys:NodeKey.generate [extra]", "g", dist)
        self.assertEqual(point.load(), NodeKey.generate)
        self.assertIs(
            entrypoints.EntryPoint("m", "ygg.keys", "g", dist).load(), sys.modules["ygg.keys"]
        )


# -- config ----------------------------------------------------------------------------------


class ConfigReadingTests(SynchronousTestCase):
    def setUp(self) -> None:
        saved = {n: m for n, m in sys.modules.items() if n == "hjson" or n.startswith("hjson.")}
        for name in saved:
            del sys.modules[name]
        self.addCleanup(sys.modules.update, saved)

    def test_json_without_hjson(self) -> None:
        cfg, _ = config.parse('{"IfMTU": 1400, "Peers": ["tcp://[::1]:1"]}')
        self.assertEqual((cfg.if_mtu, cfg.peers), (1400, ("tcp://[::1]:1",)))
        self.assertNotIn("hjson", sys.modules)

    def test_hjson_read_then_dropped(self) -> None:
        cfg, _ = config.parse('# comment\n{\n  IfMTU: 1400\n  Peers: ["tcp://[::1]:1"]\n}')
        self.assertEqual((cfg.if_mtu, cfg.peers), (1400, ("tcp://[::1]:1",)))
        self.assertNotIn("hjson", sys.modules)

    def test_json_and_hjson_agree(self) -> None:
        """What the stdlib reads, hjson reads the same (numbers, nesting, duplicates)."""
        text = '{"IfMTU": 1300, "IfMTU": 1400, "NodeInfo": {"a": [1, 2.5, -3e2, true, null]}}'
        import hjson

        self.assertEqual(config._loads(text), hjson.loads(text))

    def test_not_json_constants_go_to_hjson(self) -> None:
        """NaN and Infinity are not JSON: hjson reads them (as strings), as before."""
        import hjson

        text = '{"NodeInfo": {"x": NaN\n}}'
        self.assertEqual(config._loads(text), hjson.loads(text))
        self.assertEqual(config._loads(text)["NodeInfo"]["x"], "NaN")


# -- heap, verify cache ----------------------------------------------------------------------


class HeapTests(SynchronousTestCase):
    def test_release(self) -> None:
        self.assertIsInstance(heap.release(), bool)

    def test_release_when_running(self) -> None:
        calls: list[tuple[object, ...]] = []

        class Reactor:
            def callWhenRunning(self, *args: object) -> None:
                calls.append(args)

            def callLater(self, *args: object) -> None:
                raise AssertionError("not before the reactor runs")

        reactor = Reactor()
        heap.release_when_running(reactor)
        self.assertEqual(calls, [(reactor.callLater, 0, heap.release)])


class VerifyCacheTests(SynchronousTestCase):
    def test_counts_and_cap(self) -> None:
        key = NodeKey.generate()
        cache = VerifyCache(size=2)
        signed = [(key.public, m, key.sign(m)) for m in (b"a", b"b", b"c")]
        for entry in signed:
            self.assertTrue(cache.verify(*entry))
        self.assertTrue(cache.verify(*signed[2]))
        self.assertFalse(cache.verify(key.public, b"a", signed[1][2]))
        self.assertEqual((cache.hits, cache.misses, cache.entries), (1, 4, 2))
        self.assertTrue(VerifyCache())  # empty, still a cache to use
        self.assertTrue(cache.verify(*signed[0]))  # evicted first in, so checked again
        self.assertEqual(cache.misses, 5)

    def test_trace_env(self) -> None:
        """YGG_VERIFY_TRACE (a benchmark's): the lookups, written when the process exits."""
        out_dir = tempfile.mkdtemp(prefix="yggvt")
        self.addCleanup(remove_tree, out_dir)
        run(
            [
                PYTHON,
                "-c",
                "from ygg.keys import NodeKey, VerifyCache\n"
                "k = NodeKey.generate(); c = VerifyCache(8); s = k.sign(b'm')\n"
                "c.verify(k.public, b'm', s); c.verify(k.public, b'm', s)",
            ],
            env={"YGG_VERIFY_TRACE": out_dir},
            cwd=str(ROOT),
        )
        (written,) = os.listdir(out_dir)
        record = json.loads(Path(out_dir, written).read_text())
        self.assertEqual((record["hits"], record["misses"], record["size"]), (1, 1, 8))
        self.assertEqual(len(record["lookups"]), 2)
        self.assertEqual(record["lookups"][0], record["lookups"][1])
        self.assertEqual(record["lookups"][0] & 1, 1)  # it verified


class HashTests(SynchronousTestCase):
    """The three hashes a node makes come from libsodium (no libcrypto), the same bytes
    as hashlib's."""

    def test_same_as_hashlib(self) -> None:
        import hashlib

        from ygg.v05.handshake import password_hash
        from ygg.v05.session.group import group_secret

        key = NodeKey.generate()
        self.assertEqual(key.x25519_private(), hashlib.sha512(key.seed).digest()[:32])
        for password in (b"", b"x", bytes(range(64))):
            self.assertEqual(
                password_hash(key.public, password),
                hashlib.blake2b(key.public, digest_size=64, key=password).digest(),
            )
        self.assertEqual(group_secret("pw"), hashlib.sha256(b"ironwood/encrypted\x00pw").digest())
        self.assertEqual(group_secret(""), b"")
