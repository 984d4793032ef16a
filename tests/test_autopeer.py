"""Autopeering (ygg.popura.autopeer), deterministically: a task.Clock, a fake node, an
injected latency measurement and an injected dialer.  Nothing here dials anything; the
built-in lists are only read.  (The handshake probe itself, INode.probe_peer, is tested
in tests/test_links_probe.py; real nodes in tests/test_interop_autopeer.py.)"""

from __future__ import annotations

import io
import random
import runpy
import shutil
import subprocess
import tempfile
from collections import Counter
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests import scrape
from tests.helpers import PYTHON, ROOT
from ygg import features
from ygg.admin.registry import Registry
from ygg.config import parse_section
from ygg.errors import ConfigError
from ygg.interfaces import IFeature, INode, PeerSummary, ProbeError
from ygg.popura import autopeer as glue
from ygg.popura.autopeer import AutopeeringConfig
from ygg.popura.autopeer import service as autopeer
from ygg.popura.autopeer.service import (
    CLOSEST,
    GRACE,
    QUARANTINE,
    QUARANTINE_MAX,
    SETTLE,
    AutopeerService,
    Candidate,
    HandshakeProbe,
    Measurement,
    choose,
    is_internet_peer,
    parse_peer_list,
)

KEY = bytes(32)
V04, V05 = "0.4", "0.5"


def uri(i: int) -> str:
    return f"tls://192.0.2.{i}:{1000 + i}"


def latencies(count: int = 30, dead: tuple[int, ...] = ()) -> dict[str, float | None]:
    """Peer i answers in (i + 1) ms, so peers 0–9 are the 10 fastest; ``dead`` do not."""
    return {uri(i): None if i in dead else (i + 1) / 1000 for i in range(count)}


def measurements(table: dict[str, float | None]) -> list[Measurement]:
    found = parse_peer_list(table)[0]
    return [Measurement(c, table[c.uri], "" if table[c.uri] else "refused") for c in found]


@implementer(INode)
class FakeNode:
    """The INode parts autopeering uses, with links the test puts up and takes down."""

    def __init__(
        self, configured: tuple[str, ...] = (), versions: tuple[str, ...] = (V04,)
    ) -> None:
        self.reactor = Clock()
        self.config = None
        self.public_key = KEY
        self.address = b""
        self.subnet = b""
        self.running = versions
        #: (remote, inbound, version, when it came up)
        self.links: list[tuple[str, bool, str, float]] = []
        self.configured = [(u, "") for u in configured]
        self.admin = Registry()
        self.collectors: list = []

    def versions(self) -> tuple[str, ...]:
        return self.running

    def up(self, remote: str, inbound: bool = False, version: str = V04) -> None:
        self.links.append((remote, inbound, version, self.reactor.seconds()))

    def down(self, remote: str) -> None:
        self.links = [link for link in self.links if link[0] != remote]

    def peers(self) -> list[PeerSummary]:
        now = self.reactor.seconds()
        return [
            PeerSummary(KEY, remote, inbound, now - since, port, version)
            for port, (remote, inbound, version, since) in enumerate(self.links, 1)
        ]

    def configured_peers(self) -> list[tuple[str, str]]:
        return list(self.configured)

    def register_admin_method(self, method: Any) -> bool:
        self.admin.register(method)
        return True

    def register_metrics(self, collector: Any) -> bool:
        self.collectors.append(collector)  # what a scrape would collect
        return True

    def unregister_admin_method(self, name: str) -> None:
        self.admin.unregister(name)

    def feature_config(self, name: str) -> Any:
        return None

    def resolve_dial_address(self, host: str) -> Deferred[str]:
        raise AssertionError("the tests inject their resolver")

    def call_admin(self, name: str, arguments: Any = None) -> Any:
        return self.admin.call(self, name, arguments)

    def call_peer(self, uri: str, interface: str = "", version: str | None = None) -> Any:
        raise AssertionError("the tests inject their dialer")

    def probe_peer(self, uri: str, version: str, timeout: float = 6.0) -> Any:
        raise AssertionError("the tests inject their measurement")

    def features(self) -> list[str]:
        return ["autopeer"]

    def tun_enabled(self) -> bool:
        return False

    def get_node_info(self, key: bytes, version: str | None = None) -> Any: ...
    def remote_get_self(self, key: bytes, version: str | None = None) -> Any: ...
    def remote_get_peers(self, key: bytes, version: str | None = None) -> Any: ...
    def remote_get_dht(self, key: bytes, version: str | None = None) -> Any: ...
    def remote_get_tree(self, key: bytes) -> Any: ...


#: What a peer answers a probe with: seconds, None (down), or a ProbeError kind (refused).
Answer = float | str | None


class FakeMeasure:
    """Answers from a table (URI -> Answer, or URI -> {version: Answer}), synchronously
    or not."""

    def __init__(self, table: dict[str, Any], hold: bool = False) -> None:
        self.table = table
        self.hold = hold
        self.calls: list[list[Candidate]] = []
        self.versions: list[str] = []
        self.pending: list[Deferred[list[Measurement]]] = []
        self.cancelled = 0

    def answer(self, candidate: Candidate, version: str) -> Measurement:
        answer = self.table.get(candidate.uri)
        if isinstance(answer, dict):
            answer = answer.get(version)
        if isinstance(answer, str):
            return Measurement(candidate, None, f"refused: {answer}", answer)
        return Measurement(candidate, answer, "" if answer is not None else "timed out")

    def __call__(self, candidates: list[Candidate], version: str) -> Deferred[list[Measurement]]:
        self.calls.append(candidates)
        self.versions.append(version)
        result = [self.answer(c, version) for c in candidates]
        if self.hold:
            d: Deferred[list[Measurement]] = Deferred(self._cancel)
            self.pending.append(d)
            return d
        return succeed(result)

    def _cancel(self, d: Deferred[Any]) -> None:
        self.cancelled += 1


class FakeDialer:
    """Records dials.  ``mode``: "up" (the link comes up at once), "refuse" (the dial
    fails), "hold" (the dial never ends)."""

    def __init__(self, node: FakeNode, mode: str = "up") -> None:
        self.node = node
        self.mode = mode
        self.dialled: list[tuple[float, str]] = []
        self.versions: list[str] = []

    def __call__(self, uri: str, version: str) -> Deferred[None]:
        self.dialled.append((self.node.reactor.seconds(), uri))
        self.versions.append(version)
        if self.mode == "up":
            self.node.up(autopeer.link_name(uri), version=version)
            return succeed(None)
        if self.mode == "refuse":
            return fail(ConnectionRefusedError("connection refused"))
        return Deferred()

    @property
    def uris(self) -> list[str]:
        return [u for _, u in self.dialled]


def config(**values: Any) -> AutopeeringConfig:
    return parse_section(AutopeeringConfig, {"Enable": True, **values}, "Autopeering")


class ServiceCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.patch(autopeer, "log", Logger(observer=self.events.append))

    def make(
        self,
        table: dict[str, Any] | None = None,
        *,
        configured: tuple[str, ...] = (),
        versions: tuple[str, ...] = (V04,),
        mode: str = "up",
        seed: int = 1,
        hold_measure: bool = False,
        **values: Any,
    ) -> AutopeerService:
        table = latencies() if table is None else table
        node = FakeNode(configured, versions)
        measure = FakeMeasure(table, hold_measure)
        dialer = FakeDialer(node, mode)
        values.setdefault("Peers", list(table))
        service = AutopeerService(
            node, config(**values), measure=measure, dial=dialer, rng=random.Random(seed)
        )
        self.service, self.node, self.measure, self.dialer = service, node, measure, dialer
        return service

    @property
    def state(self) -> str:
        """The state of the first (in these tests usually the only) network's autopeer."""
        return next(iter(self.service.networks.values())).state

    def advance_to(self, until: float) -> None:
        """Start (if needed) and let the clock run to ``until`` seconds, a second a step."""
        service, node = self.service, self.node
        if not service.running:
            service.startService()
            self.addCleanup(lambda: service.running and service.stopService())
        clock = node.reactor
        while clock.seconds() < until:
            clock.advance(1)

    def logged(self, level: str) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events if e["log_level"].name == level]


# -- the list -------------------------------------------------------------------------------


class PeerListTests(SynchronousTestCase):
    def test_comments_blank_lines_duplicates_and_non_peers(self) -> None:
        found, rejected = parse_peer_list(
            [
                "# a comment",
                "",
                "   ",
                "tls://[2001:db8::1]:443?key=00ff&sni=example.net",
                "tcp://example.net:80",
                "tcp://example.net:80",
                "  tls://192.0.2.1:1  ",
                "quic://example.net:1",
                "tcp://no-port.example",
                "not a uri",
            ]
        )
        self.assertEqual(
            found,
            [
                Candidate("tls://[2001:db8::1]:443?key=00ff&sni=example.net", "2001:db8::1", 443),
                Candidate("tcp://example.net:80", "example.net", 80),
                Candidate("tls://192.0.2.1:1", "192.0.2.1", 1),
            ],
        )
        self.assertEqual(rejected, ["quic://example.net:1", "tcp://no-port.example", "not a uri"])
        self.assertEqual(found[0].name, "tls://[2001:db8::1]:443")

    def test_builtin_list_is_all_peers(self) -> None:
        """The shipped data: only tcp/tls host:port URIs and comments, each peer once."""
        text = glue.BUILTIN_PEERS.read_text(encoding="utf-8")
        lines = [x for x in text.splitlines() if x.strip() and not x.startswith("#")]
        found, rejected = parse_peer_list(text.splitlines())
        self.assertEqual(rejected, [])
        self.assertEqual(len(found), len(lines))
        self.assertGreaterEqual(len(found), 100)
        self.assertIn(f"# {len(found)} peers;", text)
        self.assertEqual({c.uri.split("://")[0] for c in found}, {"tcp", "tls"})

    def test_service_uses_builtin_list_unless_overridden(self) -> None:
        node = FakeNode()
        builtin = AutopeerService(node, config(), builtin=glue.BUILTIN_LISTS)
        self.assertEqual(builtin.source, "the built-in list (v0.4: peers.txt)")
        self.assertGreaterEqual(len(builtin.candidates), 100)

        directory = tempfile.mkdtemp(prefix="ygg-autopeer-")
        self.addCleanup(shutil.rmtree, directory)
        path = Path(directory, "peers.txt")
        path.write_text("# mine\ntcp://192.0.2.7:7\n\ntls://192.0.2.8:8\n")
        both = AutopeerService(
            FakeNode(),
            config(Peers=["tcp://192.0.2.6:6"], PeersFile=str(path)),
            builtin=glue.BUILTIN_LISTS,
        )
        self.assertEqual(
            [c.uri for c in both.candidates],
            ["tcp://192.0.2.6:6", "tcp://192.0.2.7:7", "tls://192.0.2.8:8"],
        )
        self.assertIn(str(path), both.source)

    def test_unreadable_peers_file_names_the_key(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            AutopeerService(FakeNode(), config(PeersFile="/nonexistent/peers.txt"))
        self.assertEqual(caught.exception.key, "Autopeering.PeersFile")
        self.assertIn("/nonexistent/peers.txt", str(caught.exception))

    def test_version_tags(self) -> None:
        """A URI may be followed by the version its peer serves; anything else after it
        makes the line a bad one."""
        found, rejected = parse_peer_list(
            [
                "tcp://192.0.2.1:1 v0.4",
                "tls://192.0.2.2:2\tv0.5",
                "tcp://192.0.2.3:3",
                "tcp://192.0.2.1:1 v0.5",  # the same peer again: its first line counts
                "tcp://192.0.2.3:3",
                "tcp://192.0.2.4:4 v0.6",
                "tcp://192.0.2.5:5 v0.5 extra",
                "tcp://192.0.2.6:6 0.5",
                "v0.5",
            ]
        )
        self.assertEqual(
            found,
            [
                Candidate("tcp://192.0.2.1:1", "192.0.2.1", 1, "0.4"),
                Candidate("tls://192.0.2.2:2", "192.0.2.2", 2, "0.5"),
                Candidate("tcp://192.0.2.3:3", "192.0.2.3", 3, None),
            ],
        )
        self.assertEqual(
            rejected,
            [
                "tcp://192.0.2.4:4 v0.6",
                "tcp://192.0.2.5:5 v0.5 extra",
                "tcp://192.0.2.6:6 0.5",
                "v0.5",
            ],
        )
        self.assertEqual(found[1].name, "tls://192.0.2.2:2")

    def test_builtin_lists_are_tagged(self) -> None:
        """peers.txt is public-peers' 2022 snapshot, all v0.4; peers-v05.txt a later commit
        (named in its header), all v0.5, with peers the old list does not have."""
        lists = {}
        for path, version in ((glue.BUILTIN_PEERS, "0.4"), (glue.BUILTIN_PEERS_V05, "0.5")):
            text = path.read_text(encoding="utf-8")
            found, rejected = parse_peer_list(text.splitlines())
            self.assertEqual(rejected, [], path)
            self.assertGreaterEqual(len(found), 100, path)
            self.assertEqual({c.version for c in found}, {version}, path)
            self.assertIn(f"# {len(found)} peers;", text)
            self.assertRegex(text.splitlines()[1], r" at commit [0-9a-f]{7,} \(\d{4}-\d\d-\d\d\),$")
            lists[version] = {c.uri for c in found}
        self.assertIn("at commit bcf561e (2022-10-24)", glue.BUILTIN_PEERS.read_text())
        self.assertTrue(lists["0.5"] - lists["0.4"])

    def test_each_version_reads_its_own_list(self) -> None:
        """A node reads the built-in lists of the versions it runs, each on its own: a
        host on both is a candidate of each version."""
        counts = {}
        for versions in ((V04,), (V05,), (V04, V05)):
            service = AutopeerService(
                FakeNode(versions=versions), config(), builtin=glue.BUILTIN_LISTS
            )
            self.assertEqual({c.version for c in service.candidates}, set(versions))
            counts[versions] = len(service.candidates)
            for version in versions:
                network = service.networks[version]
                self.assertEqual({c.version for c in network.candidates}, {version})
        self.assertEqual(counts[(V04, V05)], counts[(V04,)] + counts[(V05,)])
        both = AutopeerService(FakeNode(versions=(V04, V05)), config(), builtin=glue.BUILTIN_LISTS)
        self.assertEqual(both.source, "the built-in list (v0.4: peers.txt, v0.5: peers-v05.txt)")
        uris = Counter(c.uri for c in both.candidates)
        self.assertTrue(any(n == 2 for n in uris.values()))  # hosts that moved to 0.5


def load_compile_peers() -> dict[str, Any]:
    return runpy.run_path(str(ROOT / "contrib" / "compile-peers.py"), run_name="compile_peers")


COUNTRY = """# Testland Peers

* City A, operated by someone
  * `tcp://a.example:1`
  * `tls://a.example:2` (v0.4 only)
  * `quic://a.example:3`

* City B, public node, 100 Mbit/s, *(v0.5 testing only)*
  * node1:
  * `tcp://b.example:1`
  * `tls://b.example:2` _IPv6 by a tunnel (v0.4)_
* `tcp://c.example:1` (v0.5)
  * `tcp://c.example:2?password=secret`
  * `tcp://c.example:3` `tls://c.example:4`

### Heading (v0.4 only)

* `tcp://d.example:1`
"""


class CompilePeersTests(SynchronousTestCase):
    """contrib/compile-peers.py's tagging, on made-up country files (nothing is dialled)."""

    def test_marks_and_the_default(self) -> None:
        script = load_compile_peers()
        self.assertEqual(
            script["tagged_uris"](COUNTRY, "0.4"),
            [
                ("tcp://a.example:1", "0.4"),
                ("tls://a.example:2", "0.4"),
                ("tcp://b.example:1", "0.5"),
                ("tls://b.example:2", "0.4"),  # its own mark beats its bullet's
                ("tcp://c.example:1", "0.5"),
                ("tcp://c.example:2?password=secret", "0.5"),
                ("tcp://c.example:3", "0.4"),  # the bullet's mark was its own URI's
                ("tls://c.example:4", "0.4"),
                ("tcp://d.example:1", "0.4"),  # the heading's bullet starts a new node
            ],
        )
        self.assertEqual(script["tagged_uris"](COUNTRY, "0.5")[0], ("tcp://a.example:1", "0.5"))
        self.assertEqual(script["unmarked_version"]("2022-10-24"), "0.4")
        self.assertEqual(script["unmarked_version"]("2023-11-17"), "0.4")
        self.assertEqual(script["unmarked_version"]("2023-11-18"), "0.5")
        self.assertEqual(script["unmarked_version"]("2026-06-09"), "0.5")

    def test_a_repository_compiled_and_read_back(self) -> None:
        """By the commit's date: a 2022 commit's unmarked peers are v0.4, a 2024 one's
        v0.5; the output reads back through the list reader with those tags."""
        directory = Path(tempfile.mkdtemp(prefix="ygg-peers-"))
        self.addCleanup(shutil.rmtree, directory)
        repo = directory / "public-peers"
        (repo / "europe").mkdir(parents=True)
        (repo / "other").mkdir()
        (repo / "other" / "tor.md").write_text("* `tcp://onion.example:1`\n")

        def git(*args: str, date: str = "2022-10-24T12:00:00Z") -> str:
            env = {
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@example.net",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.net",
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_DATE": date,
                "PATH": "/usr/bin:/bin",
                "HOME": str(directory),
            }
            done = subprocess.run(
                ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True
            )
            self.assertEqual(done.returncode, 0, done.stderr)
            return done.stdout.strip()

        git("init", "-q")
        (repo / "europe" / "testland.md").write_text(COUNTRY)
        git("add", ".")
        git("commit", "-q", "-m", "old")
        old = git("rev-parse", "--short", "HEAD")
        (repo / "europe" / "testland.md").write_text(COUNTRY.replace("(v0.4 only)", ""))
        git("commit", "-q", "-am", "new", date="2024-02-01T12:00:00Z")
        script = load_compile_peers()
        outputs = {}
        for rev, name in ((old, "old.txt"), ("HEAD", "new.txt")):
            out = directory / name
            err = io.StringIO()
            with redirect_stderr(err):
                self.assertEqual(script["main"]([str(repo), "--rev", rev, "-o", str(out)]), 0)
            outputs[name] = out.read_text()
        old_text, new_text = outputs["old.txt"], outputs["new.txt"]
        self.assertIn(f"at commit {old} (2022-10-24),", old_text)
        self.assertIn("else v0.4 as the list implied", old_text)
        self.assertIn("else v0.5 as the list implied", new_text)
        self.assertNotIn("onion", old_text)
        self.assertNotIn("quic", old_text)
        versions = {
            name: {c.uri: c.version for c in parse_peer_list(text.splitlines())[0]}
            for name, text in outputs.items()
        }
        self.assertEqual(len(versions["old.txt"]), 9)
        self.assertEqual(versions["old.txt"]["tcp://a.example:1"], "0.4")
        self.assertEqual(versions["new.txt"]["tcp://a.example:1"], "0.5")
        self.assertEqual(versions["new.txt"]["tls://a.example:2"], "0.5")  # mark removed
        self.assertEqual(versions["new.txt"]["tcp://d.example:1"], "0.5")
        self.assertEqual(versions["new.txt"]["tcp://b.example:1"], "0.5")
        # A plain directory has no date: the version must be given.
        plain = directory / "plain"
        (plain / "europe").mkdir(parents=True)
        (plain / "europe" / "testland.md").write_text(COUNTRY)
        with redirect_stderr(io.StringIO()):
            with self.assertRaises(SystemExit) as caught:
                script["main"]([str(plain)])
            self.assertIn("--default-version", str(caught.exception))
            out = directory / "plain.txt"
            script["main"]([str(plain), "--default-version", "0.5", "-o", str(out)])
        self.assertIn("tcp://a.example:1 v0.5\n", out.read_text())


class InternetPeerTests(SynchronousTestCase):
    def test_link_local_links_do_not_count(self) -> None:
        for remote in (
            "tls://[fe80::1]:1234",  # multicast, dialled (zone stripped)
            "tls://[fe80::1%eth0]:1234",  # multicast, accepted
            "tcp://[fe80::2%eth0]:80",  # a static LAN peer by link-local address
            "tcp://169.254.1.1:80",
        ):
            self.assertFalse(is_internet_peer(remote), remote)

    def test_everything_else_counts(self) -> None:
        for remote in (
            "tls://192.0.2.1:443",
            "tcp://127.0.0.1:9001",
            "tcp://[2001:db8::1]:80",
            "tls://example.net:443",
            "tcp://192.168.1.2:5000",
            "unix:///run/ygg.sock",
            "socks://127.0.0.1:9050/example.net:443",
        ):
            self.assertTrue(is_internet_peer(remote), remote)


# -- choosing -------------------------------------------------------------------------------


class ChooseTests(SynchronousTestCase):
    def test_always_among_the_ten_fastest_and_spread_over_them(self) -> None:
        table = latencies(40)
        fastest = {uri(i) for i in range(CLOSEST)}
        counts: Counter[str] = Counter()
        for seed in range(2000):
            picked = choose(measurements(table), "random", random.Random(seed))
            assert picked is not None
            counts[picked[0].candidate.uri] += 1
            self.assertEqual(picked[1], 40)
        self.assertEqual(set(counts), fastest)
        self.assertGreater(min(counts.values()), 2000 / CLOSEST * 0.7, counts)

    def test_dead_peers_are_never_chosen(self) -> None:
        dead = (0, 1, 2, 5, 11, 13)
        table = latencies(20, dead)
        alive_fastest = [uri(i) for i in range(20) if i not in dead][:CLOSEST]
        for seed in range(500):
            picked = choose(measurements(table), "random", random.Random(seed))
            assert picked is not None
            self.assertIn(picked[0].candidate.uri, alive_fastest)
            self.assertEqual(picked[1], 14)
        self.assertIsNone(choose(measurements(latencies(5, dead=tuple(range(5)))), "random", None))

    def test_fewer_than_ten_answering(self) -> None:
        table = latencies(6, dead=(0, 3))
        chosen = {
            choose(measurements(table), "random", random.Random(s))[0].candidate.uri  # type: ignore[index]
            for s in range(200)
        }
        self.assertEqual(chosen, {uri(1), uri(2), uri(4), uri(5)})

    def test_fastest_mode_is_always_the_fastest(self) -> None:
        table = latencies(30, dead=(0,))
        for seed in range(50):
            picked = choose(measurements(table), "fastest", random.Random(seed))
            self.assertEqual(picked[0].candidate.uri, uri(1))  # type: ignore[index]

    def test_held_peers_sit_out_unless_all_are_held(self) -> None:
        table = latencies(12)
        held = frozenset(uri(i) for i in range(5))
        chosen = {
            choose(measurements(table), "random", random.Random(s), held)[0].candidate.uri  # type: ignore[index]
            for s in range(500)
        }
        self.assertEqual(chosen, {uri(i) for i in range(5, 12)})
        everyone = frozenset(table)
        picked = choose(measurements(table), "random", random.Random(0), everyone)
        self.assertIn(picked[0].candidate.uri, {uri(i) for i in range(CLOSEST)})  # type: ignore[index]


# -- the service ----------------------------------------------------------------------------


class StartTests(ServiceCase):
    def test_without_configured_peers_it_autopeers_at_once(self) -> None:
        self.make()
        self.advance_to(0)
        self.assertEqual(len(self.measure.calls), 1)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.assertIn(self.dialer.uris[0], {uri(i) for i in range(CLOSEST)})
        self.assertEqual(self.state, "connected")
        (choice,) = [m for m in self.logged("info") if "chose" in m]
        latency = latencies()[self.dialer.uris[0]] * 1000  # type: ignore[operator]
        self.assertIn(
            f"Autopeering: chose {self.dialer.uris[0]} for v0.4 ({latency:.1f} ms;", choice
        )
        self.assertIn("30 of 30 peers answered", choice)

    def test_configured_peers_get_a_grace_period(self) -> None:
        static = "tls://198.51.100.1:443"
        self.make(configured=(static,))
        self.advance_to(GRACE - 1)
        self.assertEqual(self.dialer.dialled, [])
        self.assertEqual(self.state, "waiting")
        self.advance_to(GRACE)
        self.assertEqual([t for t, _ in self.dialer.dialled], [GRACE])

    def test_configured_peer_that_connects_suppresses_autopeering(self) -> None:
        static = "tls://198.51.100.1:443"
        self.make(configured=(static,))
        self.advance_to(5)
        self.node.up(static)
        self.advance_to(600)
        self.assertEqual(self.measure.calls, [])
        self.assertEqual(self.dialer.dialled, [])
        self.assertEqual(self.state, "online")

    def test_configured_peers_are_never_autopeered(self) -> None:
        table = latencies(12)
        configured = (uri(0) + "?key=" + "00" * 32, uri(1))
        self.make(table, configured=configured)
        self.advance_to(GRACE)
        self.assertEqual(len(self.measure.calls[0]), 10)
        self.assertNotIn(uri(0), [c.uri for c in self.measure.calls[0]])
        self.assertNotIn(uri(1), [c.uri for c in self.measure.calls[0]])
        self.assertNotIn(self.dialer.uris[0], (uri(0), uri(1)))

    def test_empty_list_idles(self) -> None:
        self.make({}, Peers=["quic://192.0.2.1:1"])
        self.advance_to(120)
        self.assertEqual(self.state, "no peers")
        self.assertEqual(self.measure.calls, [])
        self.assertEqual(len(self.logged("error")), 1)
        self.assertEqual(len(self.logged("warn")), 1)  # the skipped entry


class InternetPeersTests(ServiceCase):
    def test_no_autopeering_while_internet_peers_are_up(self) -> None:
        for remote, inbound in (
            ("tcp://203.0.113.5:41234", True),
            ("tls://example.net:443", False),
        ):
            self.make()
            self.node.up(remote, inbound)
            self.advance_to(1800)
            self.assertEqual(self.measure.calls, [], remote)
            self.assertEqual(self.dialer.dialled, [], remote)
            self.assertEqual(self.state, "online")
            self.service.stopService()

    def test_multicast_peers_do_not_count(self) -> None:
        self.make()
        self.node.up("tls://[fe80::1%eth0]:3000", inbound=True)
        self.node.up("tls://[fe80::2]:3001")
        self.advance_to(0)
        self.assertEqual(len(self.dialer.dialled), 1)

    def test_internet_peer_appearing_stops_the_waiting(self) -> None:
        self.make(mode="refuse")
        self.advance_to(0)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.node.up("tcp://203.0.113.5:41234", inbound=True)
        self.advance_to(600)
        self.assertEqual(len(self.dialer.dialled), 1)


class HealTests(ServiceCase):
    def test_replaced_30_to_40_seconds_after_it_went(self) -> None:
        self.make()
        self.advance_to(0)
        first = self.dialer.uris[0]
        self.advance_to(25)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.node.down(autopeer.link_name(first))  # gone at 25 s; seen gone at 30 s
        self.advance_to(59)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.assertEqual(self.state, "waiting")
        self.advance_to(60)
        self.assertEqual([t for t, _ in self.dialer.dialled], [0, 60])
        self.assertEqual(len(self.measure.calls), 2)
        self.assertIn(self.dialer.uris[1], {uri(i) for i in range(CLOSEST)})
        self.assertEqual(self.state, "connected")

    def test_gone_just_after_a_check(self) -> None:
        self.make()
        self.advance_to(10)
        self.node.down(autopeer.link_name(self.dialer.uris[0]))  # gone at 10 s; seen gone at 20 s
        self.advance_to(49)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.advance_to(50)
        self.assertEqual([t for t, _ in self.dialer.dialled], [0, 50])

    def test_gone_before_any_check_saw_it(self) -> None:
        self.make()
        self.advance_to(1)
        self.node.down(autopeer.link_name(self.dialer.uris[0]))  # gone at 1 s; seen at 10 s
        self.advance_to(39)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.advance_to(40)
        self.assertEqual([t for t, _ in self.dialer.dialled], [0, 40])

    def test_back_within_the_grace_period(self) -> None:
        self.make()
        self.advance_to(5)
        name = autopeer.link_name(self.dialer.uris[0])
        self.node.down(name)
        self.advance_to(25)
        self.node.up(name)  # the core's quick redial brought it back
        self.advance_to(300)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.assertEqual(self.state, "connected")

    def test_failed_dial_retried_after_the_grace_and_logged_once(self) -> None:
        self.make(mode="refuse")
        self.advance_to(0)
        self.advance_to(29)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.advance_to(95)
        self.assertEqual([t for t, _ in self.dialer.dialled], [0, 30, 60, 90])
        self.assertEqual(len(set(self.dialer.uris)), 4)  # a failed peer sits out the next picks
        self.assertEqual(len(self.logged("warn")), 1)
        self.assertIn("connection refused", self.logged("warn")[0])
        self.assertEqual(len([m for m in self.logged("info") if "chose" in m]), 4)
        self.assertEqual(self.state, "waiting")

        self.dialer.mode = "up"
        self.advance_to(120)
        self.assertEqual(self.state, "connected")
        self.node.down(autopeer.link_name(self.dialer.uris[-1]))
        self.dialer.mode = "refuse"
        self.advance_to(200)
        self.assertEqual(len(self.logged("warn")), 2)  # a new outage warns again

    def test_fastest_mode_retries_the_fastest(self) -> None:
        self.make(latencies(20, dead=(0,)), mode="refuse", Pick="fastest")
        self.advance_to(95)
        self.assertEqual(self.dialer.uris, [uri(1)] * 4)

    def test_nobody_answering_is_logged_once(self) -> None:
        self.make(latencies(8, dead=tuple(range(8))))
        self.advance_to(300)
        self.assertEqual(self.dialer.dialled, [])
        self.assertEqual(len(self.measure.calls), 11)  # at 0, 30, … 300 s
        (warning,) = self.logged("warn")
        self.assertIn("none of the 8 peers answered", warning)

    def test_dead_peers_never_dialled(self) -> None:
        dead = tuple(range(0, 30, 2))
        for seed in range(20):
            self.make(latencies(30, dead), mode="refuse", seed=seed)
            self.advance_to(300)
            self.assertEqual(len(self.dialer.dialled), 11)  # at 0, 30, … 300 s
            self.assertFalse({uri(i) for i in dead} & set(self.dialer.uris))
            self.service.stopService()


class OneAtATimeTests(ServiceCase):
    def test_no_new_pick_while_a_dial_is_under_way(self) -> None:
        self.make(mode="hold")
        self.advance_to(600)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.assertEqual(len(self.measure.calls), 1)
        self.assertEqual(self.state, "dialing")

    def test_no_new_pick_while_measuring(self) -> None:
        self.make(hold_measure=True)
        self.advance_to(600)
        self.assertEqual(len(self.measure.calls), 1)
        self.assertEqual(self.state, "measuring")
        self.measure.pending[0].callback(measurements(latencies()))
        self.assertEqual(len(self.dialer.dialled), 1)
        self.assertEqual(self.state, "connected")

    def test_internet_peer_up_while_measuring(self) -> None:
        self.make(hold_measure=True)
        self.advance_to(2)
        self.node.up("tcp://203.0.113.5:41234", inbound=True)
        self.measure.pending[0].callback(measurements(latencies()))
        self.assertEqual(self.dialer.dialled, [])
        self.assertEqual(self.state, "online")
        self.advance_to(600)
        self.assertEqual(len(self.measure.calls), 1)

    def test_connected_autopeer_stays_the_only_one(self) -> None:
        self.make()
        self.advance_to(3600)
        self.assertEqual(len(self.dialer.dialled), 1)
        self.assertEqual(len(self.node.links), 1)

    def test_stop_cancels_the_measurement(self) -> None:
        self.make(hold_measure=True)
        self.advance_to(0)
        self.service.stopService()
        self.assertEqual(self.measure.cancelled, 1)
        self.assertEqual(self.events, [e for e in self.events if e["log_level"].name == "info"])
        self.assertEqual(self.state, "stopped")
        self.node.reactor.advance(600)
        self.assertEqual(self.dialer.dialled, [])


class MetricsTests(ServiceCase):
    def test_probes_switches_candidates_quarantine(self) -> None:
        """What /metrics shows of autopeering (docs/metrics.md)."""
        table: dict[str, Any] = latencies(12, dead=(11,))
        table[uri(0)] = ProbeError.VERSION
        self.make(table)
        self.advance_to(0)
        (collector,) = self.node.collectors
        found = scrape.samples(scrape.page(collector))
        probes = {
            dict(labels)["result"]: count
            for labels, count in scrape.named(found, "ygg_autopeer_probes_total").items()
        }
        self.assertEqual(probes, {"ok": 10, "version": 1, "error": 1})
        self.assertEqual(
            scrape.value(found, "ygg_autopeer_switches_total", version="0.4", result="connected"),
            1,
        )
        self.assertEqual(scrape.value(found, "ygg_autopeer_candidates", version="0.4"), 12)
        self.assertEqual(scrape.value(found, "ygg_autopeer_quarantined", version="0.4"), 1)
        (chosen,) = self.dialer.uris
        self.assertEqual(
            scrape.value(found, "ygg_autopeer_chosen_latency_seconds", version="0.4", uri=chosen),
            table[chosen],
        )


class AdminTests(ServiceCase):
    def test_get_autopeer(self) -> None:
        service = self.make(latencies(12, dead=(3,)))
        self.assertIsNone(self.node.admin.lookup("getAutopeer"))  # registered at start
        reply = service.describe()
        self.assertEqual(list(reply["networks"]), [V04])
        network = reply["networks"][V04]
        self.assertEqual(network["state"], "stopped")
        self.assertEqual(network["uri"], "")
        self.assertIsNone(network["latency_ms"])
        self.assertEqual(reply["measurements"], [])
        self.assertEqual(reply["quarantined"], [])

        self.advance_to(7)
        reply = self.successResultOf(self.node.call_admin("getAutopeer"))
        chosen = self.dialer.uris[0]
        network = reply["networks"][V04]
        self.assertEqual(network["state"], "connected")
        self.assertEqual(network["uri"], chosen)
        self.assertEqual(network["latency_ms"], round(latencies()[chosen] * 1000, 3))  # type: ignore[operator]
        self.assertEqual(network["chosen_ago"], 7)
        self.assertEqual(network["measured_ago"], 7)
        self.assertEqual(network["candidates"], 12)
        self.assertEqual(network["answered"], 11)
        self.assertEqual(reply["pick"], "random")
        self.assertEqual(reply["list_size"], 12)
        rows = reply["measurements"]
        self.assertEqual(len(rows), 12)
        self.assertEqual(rows[0], {"version": V04, "uri": uri(0), "latency_ms": 1.0, "error": ""})
        self.assertEqual(rows[-1]["uri"], uri(3))
        self.assertIsNone(rows[-1]["latency_ms"])
        self.assertEqual(self.node.admin.lookup("getAutopeer").table, "measurements")


# -- versions -------------------------------------------------------------------------------


def tagged(table: dict[str, Any], tags: dict[str, str]) -> list[str]:
    """The table's URIs as list lines, those in ``tags`` followed by their tag."""
    return [f"{u} v{tags[u]}" if u in tags else u for u in table]


class VersionTests(ServiceCase):
    """One autopeer per running version, chosen among the peers of that version."""

    def table(self) -> dict[str, Any]:
        """Peers 0–9 serve v0.4 only, 10–19 v0.5 only (each refuses the other version,
        as Go nodes do); 20–29 do not answer."""
        table: dict[str, Any] = {}
        for i in range(30):
            latency = (i + 1) / 1000
            if i < 10:
                table[uri(i)] = {V04: latency, V05: ProbeError.VERSION}
            elif i < 20:
                table[uri(i)] = {V04: ProbeError.VERSION, V05: latency}
            else:
                table[uri(i)] = None
        return table

    def test_a_dual_node_keeps_one_peer_of_each_version(self) -> None:
        self.make(self.table(), versions=(V04, V05))
        self.advance_to(0)
        self.assertEqual(sorted(self.measure.versions), [V04, V05])
        by_version = dict(zip(self.dialer.versions, self.dialer.uris, strict=True))
        self.assertIn(by_version[V04], {uri(i) for i in range(10)})
        self.assertIn(by_version[V05], {uri(i) for i in range(10, 20)})
        self.assertEqual({n.state for n in self.service.networks.values()}, {"connected"})
        self.advance_to(600)
        self.assertEqual(len(self.dialer.dialled), 2)
        # Its v0.5 peer gone, only v0.5 is autopeered again.
        self.node.down(autopeer.link_name(by_version[V05]))
        self.advance_to(650)
        self.assertEqual(self.dialer.versions, [V04, V05, V05])
        self.assertIn(self.dialer.uris[-1], {uri(i) for i in range(10, 20)})

    def test_single_version_nodes(self) -> None:
        for version, serving in ((V04, range(10)), (V05, range(10, 20))):
            self.make(self.table(), versions=(version,))
            self.advance_to(0)
            self.assertEqual(self.measure.versions, [version])
            self.assertEqual(self.dialer.versions, [version])
            self.assertIn(self.dialer.uris[0], {uri(i) for i in serving})
            self.service.stopService()

    def test_an_internet_peer_counts_for_its_version_only(self) -> None:
        self.make(self.table(), versions=(V04, V05))
        self.node.up("tcp://203.0.113.5:41234", inbound=True, version=V05)
        self.advance_to(300)
        self.assertEqual(self.dialer.versions, [V04])
        self.assertEqual(self.service.networks[V05].state, "online")

    def test_tags_decide_and_untagged_peers_are_probed_for_each_version(self) -> None:
        table = self.table()
        tags = {uri(0): V04, uri(10): V05, uri(11): V04}  # uri(11) is tagged wrong
        self.make(table, versions=(V04, V05), Peers=tagged(table, tags))
        self.advance_to(0)
        asked = dict(zip(self.measure.versions, self.measure.calls, strict=True))
        v04 = {c.uri for c in asked[V04]}
        v05 = {c.uri for c in asked[V05]}
        self.assertIn(uri(0), v04)
        self.assertNotIn(uri(0), v05)
        self.assertIn(uri(10), v05)
        self.assertNotIn(uri(10), v04)
        self.assertIn(uri(11), v04)  # the wrong tag: probed for v0.4, and refuses it
        self.assertNotIn(uri(11), v05)
        self.assertEqual(v04 & v05, {uri(i) for i in (*range(1, 10), *range(12, 30))})
        quarantined = {(e.uri, e.version) for e in self.service.quarantine.active()}
        self.assertIn((uri(11), V04), quarantined)
        self.assertIn((uri(1), V05), quarantined)
        self.assertIn((uri(12), V04), quarantined)
        self.assertNotIn((uri(1), V04), quarantined)

    def test_a_network_without_candidates_idles(self) -> None:
        table = {uri(0): 0.001}
        self.make(table, versions=(V04, V05), Peers=[f"{uri(0)} v0.4"])
        self.advance_to(120)
        self.assertEqual(self.service.networks[V05].state, "no peers")
        self.assertEqual(self.dialer.versions, [V04])
        (error,) = self.logged("error")
        self.assertIn("no v0.5 peers to choose from in Autopeering.Peers", error)


class QuarantineTests(ServiceCase):
    def test_a_refusing_peer_sits_out_its_window_then_backs_off(self) -> None:
        """Peer 0 answers v0.4 fastest but refuses the version: never chosen, probed
        again only when its window ends, each window twice the last, one line each."""
        table: dict[str, Any] = latencies(12)
        table[uri(0)] = ProbeError.VERSION
        self.make(table, mode="refuse")  # no peer ever connects: a pick every 30 s
        windows = []
        t = 0.0
        while len(windows) < 4:
            self.advance_to(t)
            entry = self.service.quarantine.entries.get((uri(0), V04))
            if entry is not None and (not windows or windows[-1][1] != entry.until):
                windows.append((t, entry.until, entry.strikes))
            t += 10
        self.assertNotIn(uri(0), self.dialer.uris)
        self.assertEqual([s for _, _, s in windows], [1, 2, 3, 4])
        self.assertEqual(
            [until - start for start, until, _ in windows],
            [QUARANTINE, 2 * QUARANTINE, 4 * QUARANTINE, 8 * QUARANTINE],
        )
        probed = [
            t
            for t, calls in zip(self.dialer_times(), self.measure.calls, strict=False)
            if uri(0) in {c.uri for c in calls}
        ]
        self.assertEqual(probed, [start for start, _, _ in windows])
        lines = [m for m in self.logged("info") if "is not chosen" in m]
        self.assertEqual(len(lines), 4)
        self.assertIn(f"{uri(0)} is not chosen for v0.4 for 600 s: refused: version", lines[0])
        self.assertIn("for 1200 s", lines[1])

    def dialer_times(self) -> list[float]:
        return [t for t, _ in self.dialer.dialled]

    def test_the_window_has_a_ceiling(self) -> None:
        clock = Clock()
        quarantine = autopeer.Quarantine(clock)
        for _ in range(12):
            entry = quarantine.add(uri(0), V05, "remote speaks v0.4, not v0.5")
            clock.advance(entry.until - clock.seconds())
        self.assertEqual(entry.until - clock.seconds(), 0)
        self.assertEqual(entry.strikes, 12)
        last = quarantine.add(uri(0), V05, "again")
        self.assertEqual(last.until - clock.seconds(), QUARANTINE_MAX)
        self.assertTrue(quarantine.holds(uri(0), V05))
        self.assertFalse(quarantine.holds(uri(0), V04))

    def test_key_and_handshake_refusals_too_but_not_a_dead_peer(self) -> None:
        table: dict[str, Any] = latencies(12)
        table[uri(0)] = ProbeError.KEY
        table[uri(1)] = ProbeError.HANDSHAKE
        table[uri(2)] = ProbeError.TIMEOUT
        table[uri(3)] = ProbeError.UNREACHABLE
        self.make(table)
        self.advance_to(0)
        held = {e.uri for e in self.service.quarantine.active()}
        self.assertEqual(held, {uri(0), uri(1)})
        self.assertEqual(
            self.successResultOf(self.node.call_admin("getAutopeer"))["quarantined"][0]["uri"],
            uri(0),
        )

    def test_fastest_mode_honours_the_quarantine(self) -> None:
        table: dict[str, Any] = latencies(12)
        table[uri(0)] = ProbeError.VERSION
        self.make(table, Pick="fastest", mode="refuse")
        self.advance_to(95)
        self.assertEqual(self.dialer.uris, [uri(1)] * 4)


class SettleTests(ServiceCase):
    def test_a_link_that_drops_within_seconds_is_quarantined(self) -> None:
        self.make(latencies(12))
        self.advance_to(0)
        first = self.dialer.uris[0]
        self.advance_to(3)
        self.node.down(autopeer.link_name(first))
        self.advance_to(SETTLE)
        (entry,) = self.service.quarantine.active()
        self.assertEqual((entry.uri, entry.version), (first, V04))
        self.assertIn("dropped within 10 s of connecting", entry.reason)
        self.advance_to(SETTLE + GRACE + 10)
        self.assertEqual(len(self.dialer.dialled), 2)
        self.assertNotEqual(self.dialer.uris[1], first)
        self.assertNotIn(first, [c.uri for c in self.measure.calls[1]])

    def test_dropped_and_back_is_quarantined_too(self) -> None:
        self.make(latencies(12))
        self.advance_to(0)
        name = autopeer.link_name(self.dialer.uris[0])
        self.advance_to(4)
        self.node.down(name)
        self.node.up(name)  # the link layer's quick redial
        self.advance_to(SETTLE)
        (entry,) = self.service.quarantine.active()
        self.assertIn("dropped within 10 s and came back", entry.reason)

    def test_a_link_up_in_the_other_version_is_quarantined(self) -> None:
        self.make(latencies(12), versions=(V04, V05), Peers=[f"{u} v0.5" for u in latencies(12)])
        self.dialer.mode = "hold"
        self.advance_to(0)
        (dialing,) = [d for d in (self.service.networks[V05]._dialing,) if d is not None]
        chosen = self.dialer.uris[0]
        self.node.up(autopeer.link_name(chosen), version=V04)  # a dual remote answered v0.4
        dialing.callback(None)
        self.advance_to(SETTLE)
        (entry,) = self.service.quarantine.active()
        self.assertEqual((entry.uri, entry.version), (chosen, V05))
        self.assertEqual(entry.reason, "the link came up in v0.4")

    def test_a_link_that_stays_is_not(self) -> None:
        self.make(latencies(12))
        self.advance_to(3600)
        self.assertEqual(self.service.quarantine.entries, {})


# -- measuring with the node's probe ----------------------------------------------------------


class HandshakeProbeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.probing: dict[str, Deferred[float]] = {}
        self.asked: list[tuple[str, str, float]] = []
        self.cancelled: list[str] = []
        self.probe = HandshakeProbe(self.probe_peer, timeout=5.0, concurrency=3)

    def probe_peer(self, uri: str, version: str, timeout: float) -> Deferred[float]:
        self.asked.append((uri, version, timeout))
        if uri == "tcp://bad":
            raise ValueError("not a URI")
        d: Deferred[float] = Deferred(lambda d: self.cancelled.append(uri))
        self.probing[uri] = d
        return d

    def test_bounded_concurrency_latency_and_failures(self) -> None:
        candidates = [Candidate(uri(i), f"192.0.2.{i}", 1000 + i) for i in range(5)]
        result = self.probe(candidates, V05)
        self.assertEqual(len(self.probing), 3)  # at most 3 at a time
        self.assertEqual({(v, t) for _, v, t in self.asked}, {(V05, 5.0)})
        self.probing.pop(uri(1)).callback(0.025)
        self.assertEqual(len(self.probing), 3)  # the fourth started
        self.probing.pop(uri(2)).errback(
            ProbeError(ProbeError.VERSION, "remote speaks v0.4, not v0.5")
        )
        self.probing.pop(uri(0)).errback(ProbeError(ProbeError.TIMEOUT, "no handshake"))
        self.probing.pop(uri(3)).errback(ConnectionRefusedError())
        self.probing.pop(uri(4)).callback(0.050)
        measured = self.successResultOf(result)
        self.assertEqual([m.candidate.uri for m in measured], [uri(i) for i in range(5)])
        self.assertEqual(measured[1].latency, 0.025)
        self.assertEqual(measured[4].latency, 0.050)
        self.assertEqual(
            (measured[2].latency, measured[2].kind, measured[2].refused),
            (None, "version", True),
        )
        self.assertEqual(measured[2].error, "remote speaks v0.4, not v0.5")
        self.assertEqual((measured[0].kind, measured[0].refused), ("timeout", False))
        self.assertEqual((measured[3].kind, measured[3].refused), ("", False))
        self.assertIn("refused", measured[3].error)

    def test_a_probe_that_raises_is_a_failed_measurement(self) -> None:
        (m,) = self.successResultOf(self.probe([Candidate("tcp://bad", "bad", 1)], V04))
        self.assertEqual((m.latency, m.error), (None, "not a URI"))

    def test_cancel(self) -> None:
        result = self.probe([Candidate(uri(i), "h", i) for i in range(2)], V04)
        result.cancel()
        self.assertEqual(sorted(self.cancelled), [uri(0), uri(1)])
        self.assertEqual([m.latency for m in self.successResultOf(result)], [None, None])


# -- the feature ----------------------------------------------------------------------------


class FeatureTests(SynchronousTestCase):
    def test_feature(self) -> None:
        verifyObject(IFeature, glue.feature)
        self.assertIn("autopeer", [f.name for f in features.discover().features])
        (option,) = glue.feature.options
        self.assertEqual(
            (option.name, option.key, option.takes_value), ("autopeer", "Enable", False)
        )

    def test_enabled_by_section_or_switch(self) -> None:
        from ygg.config import parse

        off, _ = parse("{}")
        self.assertFalse(features.is_enabled(features.feature_config(glue.feature, off)))
        on = features.feature_config(glue.feature, off, {"autopeer": True})
        self.assertTrue(features.is_enabled(on))
        section, _ = parse('{"Autopeering": {"Enable": true, "Pick": "fastest"}}')
        enabled = features.feature_config(glue.feature, section)
        self.assertTrue(features.is_enabled(enabled))
        self.assertEqual(enabled.pick, "fastest")

    def test_yggdrasil_style_switch(self) -> None:
        from ygg.cli import _feature_flags, parse_go_flags

        bools, _ = _feature_flags()
        flags, _ = parse_go_flags(
            ["-useconffile", "x", "-autopeer"], bools | {"x"}, {"useconffile"}
        )
        self.assertEqual(flags, {"useconffile": "x", "autopeer": True})

    def test_make_service_uses_the_builtin_lists(self) -> None:
        service = glue.feature.makeService(FakeNode(versions=(V04, V05)), config())
        self.assertIsInstance(service, AutopeerService)
        self.assertTrue(service.source.startswith("the built-in list (v0.4: peers.txt, v0.5"))
        self.assertEqual({n.state for n in service.networks.values()}, {"stopped"})

    def test_cheap_to_import(self) -> None:
        done = subprocess.run(
            [
                PYTHON,
                "-c",
                "import sys, ygg.popura.autopeer; "
                "print('ygg.popura.autopeer.service' in sys.modules, "
                "'twisted.internet.reactor' in sys.modules)",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        self.assertEqual(done.stdout.split(), ["False", "False"])
