"""What bench/fuzz.py and tests/test_fuzz.py feed, and how: one harness per entry point.

Each :class:`Target` builds, from a ``random.Random``, a harness whose ``generate`` makes
one input (tests/fuzzing.py's mutator over the target's seeds) and whose ``feed`` hands it
to the decoder, checks what the decoder promises, and raises on a broken promise.  An
exception of the target's ``expected`` types is the documented refusal of bad input; any
other is a finding.  Stateful entry points (the admin doors, the DNS server, a session
manager) run in memory, on a clock, exactly as the node builds them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.fuzzing import (
    INTERESTING_INTS,
    Mutator,
    PropertyViolation,
    text_of,
)
from tests.helpers import DATA, load_json
from ygg.errors import ConfigError, DecodeError
from ygg.links.uri import LinkURIError

Feed = Callable[[bytes], None]


@dataclass(frozen=True)
class Harness:
    generate: Callable[[], bytes]
    feed: Feed


@dataclass(frozen=True)
class Target:
    name: str
    entry: str  # the entry points it drives, for the table and the docs
    expected: tuple[type[BaseException], ...]
    build: Callable[[random.Random], Harness]


def check(ok: bool, what: str) -> None:
    if not ok:
        raise PropertyViolation(what)


# --------------------------------------------------------------------------- field values


def u64(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.3:
        return rng.choice(INTERESTING_INTS)
    if r < 0.6:
        return rng.randrange(1000)
    return rng.getrandbits(64)


def port(rng: random.Random) -> int:
    """A non-zero port: mostly small, as on a real node, sometimes huge."""
    return rng.randint(1, 20) if rng.random() < 0.8 else max(1, u64(rng))


def ports(rng: random.Random, most: int = 6) -> tuple[int, ...]:
    return tuple(port(rng) for _ in range(rng.randint(0, most)))


def unhex(text: str) -> bytes:
    return bytes.fromhex(text)


# --------------------------------------------------------------------------- v0.4 wire


def wire04_seeds() -> list[bytes]:
    """Every captured frame body of the 0.4.7 link captures (type byte first)."""
    bodies = []
    for direction in load_json("wire/frames.json")["directions"]:
        bodies += [unhex(frame["raw_hex"])[2:] for frame in direction["frames"]]
    for direction in load_json("handshake/link-handshake.json"):
        bodies += [unhex(frame["body_hex"]) for frame in direction["parsed"]["frames"]]
    return bodies


def wire04_fresh(rng: random.Random) -> bytes:
    from ygg.network import wire as w

    key, sig = (lambda: rng.randbytes(32)), (lambda: rng.randbytes(64))

    def label() -> w.Label:
        return w.Label(sig(), key(), key(), u64(rng), (*ports(rng), 0))

    def token() -> w.SetupToken:
        return w.SetupToken(sig(), key(), label())

    def notify() -> w.PathNotify:
        return w.PathNotify(sig(), key(), label())

    kind = rng.randrange(11)
    if kind == w.DUMMY:
        return w.priority_body(rng.randrange(256)) if rng.random() < 0.5 else b"\x00"
    if kind == w.TREE:
        hops = tuple(w.TreeHop(key(), port(rng), sig()) for _ in range(rng.randint(0, 4)))
        return w.body(kind, w.TreeInfo(key(), u64(rng), hops).encode())
    if kind == w.BOOTSTRAP:
        return w.body(kind, label().encode())
    if kind == w.BOOTSTRAP_ACK:
        return w.body(kind, w.BootstrapAck(label(), token()).encode())
    if kind == w.SETUP:
        return w.body(kind, w.Setup(sig(), u64(rng), token()).encode())
    if kind == w.TEARDOWN:
        return w.body(kind, w.Teardown(u64(rng), key(), key(), u64(rng)).encode())
    if kind == w.PATH_NOTIFY:
        return w.body(kind, notify().encode())
    if kind == w.PATH_LOOKUP:
        return w.body(kind, w.PathLookup(notify(), ports(rng)).encode())
    if kind == w.PATH_RESPONSE:
        return w.body(kind, w.PathResponse(key(), (*ports(rng), 0), ports(rng)).encode())
    payload = rng.randbytes(rng.randint(0, 80))
    if kind == w.DHT_TRAFFIC:
        return w.dht_traffic(key(), key(), rng.randrange(3), payload)
    return w.path_traffic((*ports(rng), 0), key(), key(), rng.randrange(3), payload)


def feed_wire04_body(body: bytes) -> None:
    """One frame body as the v0.4 router reads it: traffic by its helpers, the rest
    decoded, used as the router uses it, and re-encoded (forwarding re-encodes)."""
    from ygg.network import wire as w

    if body and body[0] == w.DUMMY:
        w.dummy_priority(body)
        return
    if body and body[0] == w.DHT_TRAFFIC:
        offset = w.split_dht_traffic(body)
        w.traffic_dest(body, offset)
        w.traffic_fields(body, offset)
        return
    if body and body[0] == w.PATH_TRAFFIC:
        route, offset = w.split_path_traffic(body)
        w.traffic_dest(body, offset)
        w.traffic_fields(body, offset)
        again = w.reroute_path_traffic(route, body, offset)
        check(w.split_path_traffic(again)[0] == route, "rerouted traffic reads back")
        w.path_to_dht_traffic(body, offset)
        return
    packet = w.decode_body(body)
    if isinstance(packet, w.TreeInfo):
        list(packet.signed_hops())
        packet.from_key(), packet.dest(), packet.ports(), packet.check_loops()
    elif isinstance(packet, w.Label):
        packet.message()
    again = w.body(body[0], packet.encode())
    check(w.decode_body(again) == packet, "a decoded packet re-encodes to itself")


def wire04_target(rng: random.Random) -> Harness:
    mutator = Mutator(rng, wire04_seeds(), fresh=wire04_fresh, max_size=2048)
    return Harness(mutator.generate, feed_wire04_body)


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    """``data`` cut where a TCP stream might cut it."""
    if not data or rng.random() < 0.3:
        return [data]
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 5)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def frames04_target(rng: random.Random) -> Harness:
    from ygg.network import wire as w

    seeds = []
    for direction in load_json("wire/frames.json")["directions"]:
        stream = b"".join(unhex(frame["raw_hex"]) for frame in direction["frames"])
        seeds += [stream[i : i + 600] for i in range(0, len(stream), 400)]

    def fresh(rng: random.Random) -> bytes:
        return b"".join(w.frame(wire04_fresh(rng)) for _ in range(rng.randint(1, 4)))

    mutator = Mutator(rng, seeds, fresh=fresh, max_size=4096)

    def feed(data: bytes) -> None:
        reader = w.FrameReader()
        bodies: list[bytes] = []
        try:
            for chunk in chunks(rng, data):
                bodies += reader.feed(chunk)
        except w.FrameError as e:
            bodies += e.bodies
            try:
                reader.feed(b"\x00\x01\x00")
            except w.FrameError:
                pass
            else:
                raise PropertyViolation("a failed frame reader read on") from None
        check(bodies == _frames04(data), "the frame reader splits as the spec says")
        for body in bodies:
            try:
                feed_wire04_body(body)
            except DecodeError:
                pass

    return Harness(mutator.generate, feed)


def _frames04(data: bytes) -> list[bytes]:
    """The complete frames of a v0.4 stream, up to the first zero length (spec §3.2)."""
    out, pos = [], 0
    while len(data) - pos >= 2:
        size = int.from_bytes(data[pos : pos + 2], "big")
        if size == 0 or len(data) - pos - 2 < size:
            break
        out.append(data[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return out


def beacon04_target(rng: random.Random) -> Harness:
    from ygg.links.multicast import beacon, parse_beacon

    def fresh(rng: random.Random) -> bytes:
        return beacon(rng.randbytes(32), "fe80::1:2", rng.randrange(65536))

    mutator = Mutator(rng, [], fresh=fresh, max_size=128)

    def feed(data: bytes) -> None:
        parsed = parse_beacon(data)
        if parsed is not None:
            key, address, where = parsed
            check(beacon(key, address, where) == data, "a beacon re-encodes to itself")

    return Harness(mutator.generate, feed)


# --------------------------------------------------------------------------- v0.5 wire


def _uvarint_at(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        shift += 7
        if b < 0x80:
            return value, pos


def wire05_seeds() -> list[bytes]:
    bodies = []
    for connection in load_json("v05/links.json"):
        for direction in connection["directions"]:
            for frame in direction.get("frames", []):
                raw = unhex(frame["raw_hex"])
                _, start = _uvarint_at(raw, 0)
                bodies.append(raw[start:])
    return bodies


def wire05_fresh(rng: random.Random) -> bytes:
    from ygg.v05.network import wire as w

    key, sig = (lambda: rng.randbytes(32)), (lambda: rng.randbytes(64))
    kind = rng.randrange(10)
    packet: Any
    if kind == w.DUMMY:
        packet = w.Dummy(rng.randbytes(rng.randint(0, 8)))
    elif kind == w.KEEPALIVE:
        packet = w.KeepAlive()
    elif kind == w.SIG_REQ:
        packet = w.SigReq(u64(rng), u64(rng))
    elif kind == w.SIG_RES:
        packet = w.SigRes(u64(rng), u64(rng), u64(rng), sig())
    elif kind == w.ANNOUNCE:
        packet = w.Announce(key(), key(), u64(rng), u64(rng), u64(rng), sig(), sig())
    elif kind == w.BLOOM:
        packet = w.Bloom(bloom_bits(rng))
    elif kind == w.PATH_LOOKUP:
        packet = w.PathLookup(key(), key(), ports(rng))
    elif kind == w.PATH_NOTIFY:
        info = w.PathNotifyInfo(u64(rng), ports(rng), sig())
        packet = w.PathNotify(ports(rng), u64(rng), key(), key(), info)
    elif kind == w.PATH_BROKEN:
        packet = w.PathBroken(ports(rng), u64(rng), key(), key())
    else:
        payload = rng.randbytes(rng.randint(0, 80))
        packet = w.Traffic(ports(rng), ports(rng), key(), key(), u64(rng), payload)
    return w.encode_body(packet)


def bloom_bits(rng: random.Random) -> int:
    """A filter with a mix of all-zero, all-one and mixed words, as real ones have."""
    words = []
    for _ in range(128):
        r = rng.random()
        words.append(0 if r < 0.6 else (1 << 64) - 1 if r < 0.7 else rng.getrandbits(64))
    return int.from_bytes(b"".join(w.to_bytes(8, "little") for w in words), "little")


def feed_wire05_body(body: bytes) -> None:
    from ygg.v05.network import bloom
    from ygg.v05.network import wire as w

    packet = w.decode_body(body)
    if isinstance(packet, w.Traffic):
        header = w.traffic_header(body)
        again = w.reroute_traffic(body, header, header.watermark)
        check(w.decode_body(again) == packet, "rerouted traffic reads back")
    elif isinstance(packet, w.Announce):  # what the tree builds from a received one
        packet.res.encode()
        packet.message()
    elif isinstance(packet, w.SigRes):
        packet.req.encode()
        packet.message(b"\1" * 32, b"\2" * 32)
    elif isinstance(packet, w.PathNotify):
        packet.info.message()
    elif isinstance(packet, w.Bloom):
        key = body[-32:].rjust(32, b"\0")
        bloom.contains(packet.bits, bloom.transform(key))
    check(w.decode_body(w.encode_body(packet)) == packet, "a decoded packet re-encodes to itself")


def wire05_target(rng: random.Random) -> Harness:
    mutator = Mutator(rng, wire05_seeds(), fresh=wire05_fresh, max_size=2048)
    return Harness(mutator.generate, feed_wire05_body)


def frames05_target(rng: random.Random) -> Harness:
    from ygg.v05.network import wire as w

    seeds = []
    for connection in load_json("v05/links.json"):
        for direction in connection["directions"]:
            stream = b"".join(unhex(f["raw_hex"]) for f in direction.get("frames", []))
            seeds += [stream[i : i + 600] for i in range(0, len(stream), 400)]

    def fresh(rng: random.Random) -> bytes:
        return b"".join(w.frame(wire05_fresh(rng)) for _ in range(rng.randint(1, 4)))

    mutator = Mutator(rng, [s for s in seeds if s], fresh=fresh, max_size=4096)

    def feed(data: bytes) -> None:
        limit = rng.choice((w.MAX_MESSAGE_SIZE, 300, 64))
        reader = w.FrameReader(limit)
        bodies: list[bytes] = []
        try:
            for chunk in chunks(rng, data):
                bodies += reader.feed(chunk)
        except w.FrameError as e:
            bodies += e.bodies
            check(reader.pending() == 0, "a failed frame reader holds nothing")
        check(bodies == _frames05(data, limit), "the frame reader splits as the spec says")
        for body in bodies:
            try:
                feed_wire05_body(body)
            except DecodeError:
                pass

    return Harness(mutator.generate, feed)


def _frames05(data: bytes, limit: int) -> list[bytes]:
    """The complete frames of a v0.5 stream, up to a bad length (spec §3.1)."""
    out, pos = [], 0
    while pos < len(data):
        size = shift = 0
        i = pos
        while i < len(data) and i - pos < 10:
            size |= (data[i] & 0x7F) << shift
            shift += 7
            i += 1
            if data[i - 1] < 0x80:
                break
        else:
            return out  # incomplete or overflowing: nothing more either way
        if size == 0 or size > limit or size >= 1 << 64 or len(data) - i < size:
            return out
        out.append(data[i : i + size])
        pos = i + size
    return out


def bloom05_target(rng: random.Random) -> Harness:
    from ygg.v05.network import bloom
    from ygg.v05.network import wire as w

    seeds = [s[1:] for s in wire05_seeds() if s[:1] == bytes((w.BLOOM,))]

    def fresh(rng: random.Random) -> bytes:
        return w.Bloom(bloom_bits(rng)).encode()

    mutator = Mutator(rng, seeds, fresh=fresh, max_size=1200)

    def feed(data: bytes) -> None:
        key = data[:32]
        bloom.locations(data)
        filt = w.Bloom.decode(data)
        if len(key) == 32:
            check(bloom.contains(bloom.add(filt.bits, key), key), "an added key is found")
        check(w.Bloom.decode(filt.encode()) == filt, "a filter re-encodes to itself")

    return Harness(mutator.generate, feed)


# --------------------------------------------------------------------------- sessions


def session_target(rng: random.Random) -> Harness:
    """A session manager with one session up (to A), fed packets "from" A and from made-up
    keys; and the session decoders on their own."""
    from twisted.internet.task import Clock

    from ygg.keys import NodeKey
    from ygg.session import wire as sw
    from ygg.session.manager import SessionManager

    captured = load_json("wire/session.json")
    seeds = [unhex(p["raw_hex"]) for p in captured["packets"]]
    a = NodeKey.from_seed(rng.randbytes(32))
    b = NodeKey.from_seed(rng.randbytes(32))
    clock = Clock()
    clock.advance(1_800_000_000)
    outbox: list[tuple[bytes, bytes, bytes]] = []

    def manager(key: NodeKey) -> SessionManager:
        return SessionManager(
            key,
            clock,
            lambda dest, data: outbox.append((key.public, dest, data)),
            lambda source, message: None,
        )

    managers = {a.public: manager(a), b.public: manager(b)}
    live: list[bytes] = []

    def pump() -> None:
        while outbox:
            source, dest, data = outbox.pop(0)
            if dest in managers:
                live.append(data)
                managers[dest].handle_packet(source, data)

    def talk(rounds: int) -> None:
        for i in range(rounds):
            managers[a.public].write_to(b.public, b"hello %d" % i)
            pump()
            managers[b.public].write_to(a.public, b"hi %d" % i)
            pump()

    talk(4)
    seeds += live
    check(len(managers[b.public].sessions()) == 1, "the fuzzed manager has a session up")
    target = managers[b.public]
    private = b.x25519_private()

    tokens = (b"\x01", b"\x02", b"\x03", b"\x00")
    mutator = Mutator(rng, seeds, tokens=tokens, max_size=400)
    links = ("link-1", "link-2", None)
    fed = [0]

    def feed(data: bytes) -> None:
        fed[0] += 1
        if fed[0] % 100 == 0:  # real traffic now and then keeps the session up (or renews it)
            outbox.clear()
            talk(1)
        clock.advance(rng.choice((0, 0, 0.01, 1.0)))
        source = a.public if rng.random() < 0.7 else rng.randbytes(32)
        target.handle_packet(source, data, rng.choice(links))
        outbox.clear()
        try:
            sw.decode_traffic_header(data)
        except DecodeError:
            pass
        sw.decode_init(data, private, source)

    return Harness(mutator.generate, feed)


# --------------------------------------------------------------------------- handshakes


def handshake04_target(rng: random.Random) -> Harness:
    from ygg.links import handshake as hs
    from ygg.v05.handshake import sniff_version

    seeds = [
        unhex(d["first_bytes_hex"])[: hs.META_SIZE]
        for d in load_json("handshake/link-handshake.json")
    ]
    for direction in load_json("wire/frames.json")["directions"]:
        seeds.append(unhex(direction["meta_hex"]))

    def fresh(rng: random.Random) -> bytes:
        return hs.encode_meta(rng.randbytes(32))

    mutator = Mutator(
        rng, seeds, fresh=fresh, tokens=(b"meta", b"\x00\x04", b"\x00\x05"), max_size=80
    )
    keys = [hs.decode_meta(s) for s in seeds]

    def feed(data: bytes) -> None:
        for size in (1, 4, 6):
            try:
                sniff_version(data[:size])
            except DecodeError:
                pass
        remote = hs.decode_meta(data)
        check(hs.encode_meta(remote) == data, "a handshake re-encodes to itself")
        hs.check_remote_key(
            remote,
            pinned=rng.choice(((), keys)),
            allowed=rng.choice(((), keys)),
            inbound=rng.random() < 0.5,
            forced=rng.random() < 0.5,
        )

    return Harness(mutator.generate, feed)


def handshake05_target(rng: random.Random) -> Harness:
    from ygg.keys import NodeKey
    from ygg.v05 import handshake as hs

    seeds, passwords = [], [b""]
    for connection in load_json("v05/links.json"):
        for direction in connection["directions"]:
            meta = direction.get("meta")
            if meta and meta.get("raw_hex"):
                seeds.append(unhex(meta["raw_hex"]))
                passwords.append((meta.get("password") or "").encode())
    signers = [NodeKey.from_seed(rng.randbytes(32)) for _ in range(3)]

    def fresh(rng: random.Random) -> bytes:
        key = rng.choice(signers)
        return hs.encode_meta(key, rng.randrange(256), rng.choice(passwords))

    tokens = (b"meta", b"\x00\x00\x00\x02", b"\x00\x02\x00\x20", b"\x00\x03\x00\x01", b"\xff\xff")
    mutator = Mutator(rng, seeds, fresh=fresh, tokens=tokens, max_size=400)

    def feed(data: bytes) -> None:
        try:
            hs.sniff_version(data[:6])
        except DecodeError:
            pass
        hs.body_length(data[:6])
        meta = hs.decode_meta(data)
        meta.verify(rng.choice(passwords))
        if len(meta.public_key) == hs.PUBLIC_KEY_SIZE and len(meta.signature) == 64:
            check(hs.decode_meta(meta.encode()) == meta, "a handshake re-encodes to itself")
        hs.check_meta(meta, rng.choice(passwords))

    return Harness(mutator.generate, feed)


# --------------------------------------------------------------------------- peer URIs

URI_SEEDS = (
    "tcp://1.2.3.4:5",
    "tcp://[2001:db8::1]:443",
    "tcp://[fe80::1%25eth0]:9001",
    "tcp://Host.Example:1?key=00&priority=1",
    "tls://example.com:443?sni=other.example&key=" + "ab" * 32,
    "tls://[::1]:0?sni=1.2.3.4",
    "unix:///var/run/ygg.sock",
    "unix://relative/path",
    "socks://user:p%40ss@proxy.example:1080/target.example:9001/extra",
    "socks://[::1]:1080/[2001:db8::5]:9001",
    "tcp://:9001",
    "tcp://[::1]x:1",
    "tcp://%zz:1",
    "tcp://h:1#frag%20ment",
    "TCP://H:1/path?;x=1&priority=255",
    "tcp:opaque",
    "*",
    "//no-scheme:1",
    "tcp://xn--nxasmq6b.example:1",
    "tcp://bücher.example:1",
    "quic://h:1",
    "bogus://h:1?priority=999&key=zz",
)
URI_TOKENS = tuple(
    t.encode("utf-8", "surrogatepass")
    for t in (
        "://", "[", "]", "%25", "%", "%2", "@", ":", "?", "&", "#", "/", "..", "key=",
        "priority=", "sni=", "password=", "tcp", "tls", "unix", "socks", "\ud800", "\udcff",
        "\u00e9", "\ufeff", "xn--", ".", "\x00", "\x7f", " ", "::ffff:1.2.3.4", "0x1",
        "99999999999999999999",
    )
)  # fmt: skip


def uri_seeds() -> list[bytes]:
    path = DATA.parent.parent / "ygg" / "popura" / "autopeer" / "peers.txt"
    peers = [line.strip() for line in path.read_text().splitlines()]
    # Each entry is a URI, then the version its peer serves: the URI is the seed.
    texts = list(URI_SEEDS) + [line.split()[0] for line in peers if line and line[0] != "#"]
    return [t.encode() for t in texts]


def uri_target(rng: random.Random) -> Harness:
    from ygg.links.uri import parse_listen_uri, parse_peer_uri

    mutator = Mutator(rng, uri_seeds(), tokens=URI_TOKENS, max_size=600)

    def feed(data: bytes) -> None:
        text = text_of(data)
        try:
            uri = parse_peer_uri(text)
        except LinkURIError:
            pass
        else:
            uri.server_name(), uri.link_name()
        uri = parse_listen_uri(text)
        uri.server_name(), uri.link_name()

    return Harness(mutator.generate, feed)


# --------------------------------------------------------------------------- config


CONFIG_TOKENS = tuple(
    t.encode("utf-8", "surrogatepass")
    for t in (
        "{", "}", "[", "]", ":", ",", '"', "'''", "\n", "#", "//", "/*", "*/", "\\u", "\\ud800",
        "true", "false", "null", "1e999", "-0", "9" * 400, "Peers", "Listen", "PrivateKey",
        "PublicKey", "AdminListen", "MulticastInterfaces", "Regex", "(", "*", "{99999999999}",
        "AllowedPublicKeys", "IfName", "IfMTU", "NodeInfo", "NodeInfoPrivacy", "Beacon",
        "InterfacePeers", "Meshname", "Autopeer", "\ufeff", "\x00", "\udcff",
    )
)  # fmt: skip


def config_target(rng: random.Random) -> Harness:
    from ygg import config

    seeds = [
        (DATA / "genconf.hjson").read_bytes(),
        (DATA / "genconf.json").read_bytes(),
        (DATA.parent.parent / "contrib" / "ygg.conf.example").read_bytes(),
        b'{"Peers": ["tcp://a:1"], "IfMTU": 1280}',
        b"Listen: [\n  tls://[::]:0\n]\nNodeInfo: {name: x}\n",
        b'{"MulticastInterfaces": [{"Regex": ".*", "Beacon": true, "Port": 0}]}',
        b'{"AllowedPublicKeys": ["00"], "InterfacePeers": {"eth0": ["tcp://h:1"]}}',
        '\ufeff{"IfName": "ygg0"}'.encode(),
        "{}".encode("utf-16"),
    ]
    mutator = Mutator(rng, seeds, tokens=CONFIG_TOKENS, max_size=8192)
    return Harness(mutator.generate, lambda data: config.parse(data))


# --------------------------------------------------------------------------- admin doors


FUZZ_METHOD = "fuzzArgs"


def admin_node(rng: random.Random) -> Any:
    """A real Node on a MemoryReactorClock, started, with every built-in admin method and
    one more taking each argument kind (none of the built-ins has number or bool ones)."""
    from twisted.internet.testing import MemoryReactorClock

    from ygg import config
    from ygg.features import Discovery
    from ygg.interfaces import Arg, Method
    from ygg.keys import NodeKey
    from ygg.service import Node

    key = NodeKey.from_seed(rng.randbytes(32))
    cfg, _ = config.parse(json.dumps({"PrivateKey": key.private.hex()}))
    cfg = dataclasses.replace(cfg, admin_listen="none", multicast_interfaces=(), if_name="none")
    node = Node(cfg, MemoryReactorClock(), discovery=Discovery((), (), ()))
    node.startService()
    node.reactor.advance(1)
    args = (Arg("n", "number"), Arg("b", "bool"), Arg("s", "string"))
    node.register_admin_method(Method(FUZZ_METHOD, "echo", lambda n, a: dict(a), args))
    return node


class Nodes:
    """The admin harnesses' node, started afresh every ``every`` inputs: the peers that
    addPeer adds keep redialling on the clock and would slow every later input."""

    def __init__(self, rng: random.Random, every: int = 1000) -> None:
        self.rng = rng
        self.every = every
        self.fed = 0
        self.node = admin_node(rng)

    def next(self) -> Any:
        self.fed += 1
        if self.fed % self.every == 0:
            self.node.stopService()
            self.node = admin_node(self.rng)
        return self.node


METHOD_NAMES = (
    "list", "getSelf", "getPeers", "getDHT", "getPaths", "getSessions", "addPeer", "removePeer",
    "getMulticastInterfaces", "getTUN", "getNodeInfo", "debug_remoteGetSelf",
    "debug_remoteGetPeers", "debug_remoteGetDHT", FUZZ_METHOD, "GETSELF", "nosuch", "",
)  # fmt: skip


def json_value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth < 3 and r < 0.15:
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and r < 0.3:
        return {rng.choice(("key", "uri", "x", "")): json_value(rng, depth + 1)}
    return rng.choice(
        (
            None,
            True,
            False,
            0,
            -1,
            2**64,
            1.5,
            "",
            "x",
            "\ud800",
            "00" * 32,
            rng.choice(URI_SEEDS),
        )
    )


def admin_request(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(METHOD_NAMES) if rng.random() < 0.9 else json_value(rng)
    request: dict[str, Any] = {"request": name}
    r = rng.random()
    if r < 0.5:
        key = rng.choice(("00" * 32, "ab" * 31 + "f", "zz", "\ud800", "ab" * 40, ""))
        uri = text_of(rng.choice(uri_seeds()))
        request["arguments"] = {
            "key": key,
            "uri": uri,
            "interface": rng.choice(("", "eth0", "\udcff")),
            "n": rng.choice((1, 2**70, 1e300, "1", None)),
            "b": rng.choice((True, False, 1, None)),
            "s": rng.choice(("s", "\ud800", 1)),
        }
    elif r < 0.6:
        request["arguments"] = json_value(rng)
    if rng.random() < 0.8:
        request["keepalive"] = rng.random() < 0.7 if rng.random() < 0.9 else json_value(rng)
    return request


def admin_fresh(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(1, 4)):
        text = json.dumps(admin_request(rng), ensure_ascii=rng.random() < 0.7)
        parts.append(text.encode("utf-8", "surrogatepass") + rng.choice((b"", b"\n", b" \r\n")))
    return b"".join(parts)


ADMIN_TOKENS = tuple(
    t.encode("utf-8", "surrogatepass")
    for t in (
        '{"request":"getSelf","keepalive":true}', '"request"', '"arguments"', '"keepalive"',
        "true", "false", "null", "{", "}", "[", "]", '"', ",", ":", "\\ud800", "\\u0000", "\\",
        "1e999", "9" * 5000, "[" * 3000, "\xff", "\xc3", "\ud800", " ", "\n",
    )
)  # fmt: skip


def admin_seeds() -> list[bytes]:
    index = load_json("admin/index.json")
    texts = [r["bytes_sent"] for r in index["yggdrasilctl_requests"]]
    texts += [r["request_text"] for r in index["replies"]]
    return [t.encode() for t in texts]


def expected_admin_replies(data: bytes, ended: bool) -> tuple[int, int]:
    """How many replies the client must get, as (least, most).

    Each complete JSON value in the stream gets one reply, in order, until one does not
    ask for keepalive; then one more may answer what follows it (an error), and must
    when the client has half-closed.  Values are read only from the part of the stream
    that is valid UTF-8.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        text = data[: e.start].decode()
    decoder = json.JSONDecoder()
    pos, replies = 0, 0
    while True:
        rest = text[pos:].lstrip(" \t\r\n")
        pos = len(text) - len(rest)
        if not rest:
            break
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            break
        pos = end
        replies += 1
        if not (
            isinstance(value, dict)
            and value.get("keepalive") is True
            and isinstance(value.get("request"), (str, type(None)))
        ):
            return replies, replies
    if ended:
        return replies + 1, replies + 1
    tail = data[len(text[:pos].encode("utf-8", "surrogatepass")) :].strip(b" \t\r\n")
    return replies, replies + (1 if tail else 0)


def admin_json_target(rng: random.Random) -> Harness:
    from twisted.internet.address import IPv4Address

    from ygg.admin.json_socket import AdminFactory

    nodes = Nodes(rng)
    mutator = Mutator(rng, admin_seeds(), fresh=admin_fresh, tokens=ADMIN_TOKENS, max_size=16384)
    address = IPv4Address("TCP", "127.0.0.1", 40000)

    def feed(data: bytes) -> None:
        node = nodes.next()
        factory = AdminFactory(node, node.admin, node.reactor)
        transport = StringTransport(peerAddress=address)
        protocol = factory.buildProtocol(address)
        protocol.makeConnection(transport)
        ended = rng.random() < 0.3
        for chunk in chunks(rng, data):
            if not transport.disconnecting:
                protocol.dataReceived(chunk)
        if ended and not transport.disconnecting:
            protocol.readConnectionLost()
        settle(node.reactor, transport)
        protocol.connectionLost(Failure(ConnectionDone()))
        replies = _replies(transport.value())
        least, most = expected_admin_replies(data, ended)
        check(
            least <= len(replies) <= most,
            f"{len(replies)} replies where {least}..{most} are due",
        )

    return Harness(mutator.generate, feed)


def settle(reactor: Any, transport: StringTransport) -> None:
    """Let time pass until the replies stop: a remote call times out in 6 s, so 7 s
    without a new byte written means nothing is waiting any more."""
    written = -1
    for _ in range(100):
        if len(transport.value()) == written:
            return
        written = len(transport.value())
        reactor.advance(7)


def _replies(output: bytes) -> list[dict[str, Any]]:
    """The replies on the wire; PropertyViolation unless each is one Go-style object."""
    decoder = json.JSONDecoder()
    text = output.decode()
    replies, pos = [], 0
    while pos < len(text):
        value, end = decoder.raw_decode(text, pos)
        check(isinstance(value, dict) and "status" in value, f"a reply without status: {value}")
        check(text[end : end + 1] == "\n", "a reply ends with a newline")
        replies.append(value)
        pos = end + 1
    return replies


def amp_box(pairs: dict[bytes, bytes]) -> bytes:
    from twisted.protocols import amp

    return amp.Box(pairs).serialize()


def amp_fresh(rng: random.Random) -> bytes:
    boxes = []
    for i in range(rng.randint(1, 3)):
        ask = b"%d" % (i + 1)
        r = rng.random()
        if r < 0.4:
            request = admin_request(rng)
            name = request["request"] if isinstance(request["request"], str) else "x"
            pairs = {
                b"_command": b"Call",
                b"_ask": ask,
                b"method": name.encode("utf-8", "surrogatepass"),
            }
            if "arguments" in request:
                text = json.dumps(request["arguments"], ensure_ascii=rng.random() < 0.7)
                pairs[b"arguments"] = text.encode("utf-8", "surrogatepass")
        elif r < 0.7:
            pairs = {
                b"_command": FUZZ_METHOD.encode(),
                b"_ask": ask,
                b"n": rng.choice((b"1", b"-2.5", b"1e999", b"9" * 5000, b"nan", b"x", b"\xff")),
                b"b": rng.choice((b"True", b"False", b"yes", b"\xff")),
                b"s": rng.choice((b"s", b"\xff\xfe", b"\xed\xa0\x80")),
            }
        elif r < 0.8:
            pairs = {b"_command": b"getNodeInfo", b"_ask": ask, b"key": b"00" * 32}
        elif r < 0.85:
            pairs = {b"_command": b"Next", b"_ask": ask, b"cursor": b"nope"}
        else:
            pairs = {
                rng.choice((b"_answer", b"_error", b"_command", b"x")): ask,
                b"_error_code": b"X",
                b"_error_description": b"d",
            }
            if rng.random() < 0.3:
                pairs = {}
        boxes.append(amp_box(pairs))
    return b"".join(boxes)


AMP_TOKENS = (
    b"\x00\x08_command", b"\x00\x04_ask", b"\x00\x07_answer", b"\x00\x06_error", b"\x00\x00",
    b"\x00\x04Call", b"\x00\x06method", b"\x00\x09arguments", b"\x00\x04Next", b"\xff\xff",
    b"\x01\x00", b"[" * 3000, b"9" * 4000, b"\xed\xa0\x80", b"\xff",
)  # fmt: skip


def amp_asks(data: bytes) -> list[bytes] | None:
    """The ``_ask`` tags of the commands in a client's stream, in order, up to the first
    box that ends the connection; None when the stream is not AMP framing at all."""
    from twisted.protocols import amp

    boxes: list[amp.AmpBox] = []
    parser = amp.BinaryBoxProtocol(_BoxList(boxes))
    transport = _NullTransport()
    parser.makeConnection(transport)
    parser.dataReceived(data)
    if transport.lost:
        return None
    asks = []
    for box in boxes:
        if b"_command" not in box or b"_answer" in box or b"_error" in box:
            break  # not a command: AMP ends the connection
        if b"_ask" in box:
            asks.append(box[b"_ask"])
    return asks


def amp_boxes(data: bytes) -> list[Any]:
    """The AMP boxes in ``data``, as far as it is AMP framing."""
    from twisted.protocols import amp

    boxes: list[amp.AmpBox] = []
    parser = amp.BinaryBoxProtocol(_BoxList(boxes))
    parser.makeConnection(_NullTransport())
    parser.dataReceived(data)
    return boxes


class _BoxList:
    """An AMP box receiver that keeps the boxes."""

    def __init__(self, boxes: list[Any]) -> None:
        self.ampBoxReceived = boxes.append

    def startReceivingBoxes(self, sender: Any) -> None:
        pass

    def stopReceivingBoxes(self, reason: Any) -> None:
        pass


class _NullTransport:
    def __init__(self) -> None:
        self.lost = False

    def loseConnection(self) -> None:
        self.lost = True

    def write(self, data: bytes) -> None:
        pass

    def getPeer(self) -> None:
        return None

    def getHost(self) -> None:
        return None


def amp_target(rng: random.Random) -> Harness:
    from twisted.internet.address import IPv4Address

    from ygg.admin.amp import AdminAMP

    nodes = Nodes(rng)
    seeds = [
        amp_box({b"_command": b"Call", b"_ask": b"1", b"method": b"getSelf"}),
        amp_box({b"_command": b"Call", b"_ask": b"2", b"method": b"list", b"arguments": b"{}"}),
        amp_box({b"_command": b"getTUN", b"_ask": b"3"}),
        amp_box({b"_command": FUZZ_METHOD.encode(), b"_ask": b"4", b"n": b"1", b"b": b"True"}),
    ]
    mutator = Mutator(rng, seeds, fresh=amp_fresh, tokens=AMP_TOKENS, max_size=16384)
    address = IPv4Address("TCP", "127.0.0.1", 40000)

    def feed(data: bytes) -> None:
        node = nodes.next()
        transport = StringTransport(peerAddress=address)
        protocol = AdminAMP(node, node.admin, node.reactor)
        protocol.makeConnection(transport)
        for chunk in chunks(rng, data):
            if not transport.disconnecting:
                protocol.dataReceived(chunk)
        settle(node.reactor, transport)
        open_at_end = not transport.disconnecting
        protocol.connectionLost(Failure(ConnectionDone()))
        asks = amp_asks(data)
        if asks is None or not open_at_end:
            return
        # Answers come as methods finish, not in order: AMP matches them by tag.
        answered = sorted(
            box.get(b"_answer", box.get(b"_error")) for box in amp_boxes(transport.value())
        )
        check(answered == sorted(asks), f"answers {answered} to the asks {asks}")

    return Harness(mutator.generate, feed)


# --------------------------------------------------------------------------- DNS


def dns_target(rng: random.Random) -> Harness:
    """The meshname service on a fake reactor (tests/test_meshname.py's harness): each
    input is a query over UDP, and the same bytes over TCP; a forwarded query's remote
    server sometimes answers, with a mutated reply."""
    from twisted.names import dns

    from tests.test_meshname import LABEL, REMOTE_LABEL, UPSTREAM, ServerHarness, query_bytes
    from ygg.popura.meshname.forwarder import UPSTREAM_TIMEOUT
    from ygg.popura.meshname.wire import MAX_UDP_REPLY

    server = ServerHarness()
    names = [
        f"{LABEL}.meshname",
        f"www.{LABEL}.meshname",
        f"alias.{LABEL}.meshname",
        f"loop.{LABEL}.meshname",
        f"nx.{LABEL}.meshname",
        f"{LABEL}.meship",
        f"{REMOTE_LABEL}.meshname",
        f"www.{REMOTE_LABEL}.ygg",
        "aaaa.meshname",
        "example.com",
        "",
    ]
    types = (dns.A, dns.AAAA, dns.SRV, dns.TXT, dns.CNAME, dns.SOA, dns.ALL_RECORDS, dns.AXFR, 0)

    def query(rng: random.Random) -> bytes:
        message = dns.Message(id=rng.randrange(65536), recDes=1, opCode=rng.choice((0, 0, 0, 2)))
        message.queries = [dns.Query(rng.choice(names), rng.choice(types))]
        if rng.random() < 0.3:
            ttl = rng.choice((0, 0, 1 << 16, 1 << 15))
            message.additional = [
                dns.RRHeader(b"", dns.OPT, rng.choice((512, 4096, 0)), ttl, dns.UnknownRecord(b""))
            ]
        return message.toStr()

    def reply(rng: random.Random, request: bytes) -> bytes:
        asked = dns.Message()
        asked.fromStr(request)
        message = dns.Message(id=asked.id, answer=1, rCode=rng.choice((0, 0, 3, 5)))
        message.queries = list(asked.queries)
        name = asked.queries[0].name.name if asked.queries else b"x"
        records = (
            dns.Record_AAAA("200::1"),
            dns.Record_A("192.0.2.1"),
            dns.Record_TXT(*[b"x" * rng.randrange(256) for _ in range(rng.randint(1, 3))]),
            dns.Record_CNAME(b"a." + name),
            dns.Record_SRV(1, 2, 3, b"t." + name),
            dns.Record_SOA(b"ns." + name, b"m." + name),
        )
        message.answers = [
            dns.RRHeader(name, r.TYPE, dns.IN, 60, r, auth=True)
            for r in rng.sample(records, rng.randint(0, 3))
        ]
        return message.toStr()

    seeds = [query_bytes(n) for n in names[:8]]
    tokens = (b"\x00\x00\x29\x10\x00", b"\xc0\x0c", b"\xc0\xff", b"\x3f", b"\x00\x01\x00\x01")
    mutator = Mutator(rng, seeds, fresh=query, tokens=tokens, max_size=5000)
    reply_mutator = Mutator(random.Random(rng.random()), [b"\x00" * 12], max_size=5000)
    streams = server.reactor.tcp_servers[0].factory
    client = ("::1", 5555)

    def feed(data: bytes) -> None:
        out = server.server.written
        out.clear()
        server.send(data, client)
        upstream = [p for p in server.reactor.udp if p is not server.server]
        for port in upstream:
            for request, _ in list(port.written)[-2:]:
                if rng.random() < 0.5:
                    answer = reply_mutator.mutate(reply(rng, request))
                    port.protocol.datagramReceived(answer, UPSTREAM)
            port.written.clear()
        server.reactor.advance(UPSTREAM_TIMEOUT + 1)
        readable = len(data) >= 12 and not data[2] & 0x80
        mine = [d for d, addr in out if addr == client]
        check(len(mine) == (1 if readable else 0), f"{len(mine)} UDP replies to one query")
        for data_out in mine:
            dns.Message().fromStr(data_out)
            check(len(data_out) <= MAX_UDP_REPLY, "a UDP reply within the limit")
        if rng.random() < 0.2:
            _over_tcp(data)

    def _over_tcp(data: bytes) -> None:
        protocol = streams.buildProtocol(client)
        if protocol is None:
            return
        transport = StringTransport()
        protocol.makeConnection(transport)
        framed = len(data).to_bytes(2, "big") + data if len(data) < 65536 else data
        for chunk in chunks(rng, framed):
            if not transport.disconnecting:
                protocol.dataReceived(chunk)
        server.reactor.advance(UPSTREAM_TIMEOUT + 1)
        protocol.connectionLost(Failure(ConnectionDone()))

    return Harness(mutator.generate, feed)


# --------------------------------------------------------------------------- the list


TARGETS = (
    Target("wire04", "ygg.network.wire: decode_body (types 1-8), traffic helpers, re-encode",
           (DecodeError,), wire04_target),
    Target("frames04", "ygg.network.wire.FrameReader, then every body as wire04",
           (DecodeError,), frames04_target),
    Target("beacon04", "ygg.links.multicast.parse_beacon", (), beacon04_target),
    Target("wire05", "ygg.v05.network.wire: decode_body (types 0-9), traffic_header, reroute",
           (DecodeError,), wire05_target),
    Target("frames05", "ygg.v05.network.wire.FrameReader, then every body as wire05",
           (DecodeError,), frames05_target),
    Target("bloom05", "ygg.v05.network.wire.Bloom.decode, ygg.v05.network.bloom",
           (DecodeError,), bloom05_target),
    Target("session", "ygg.session.wire decoders, SessionManager.handle_packet",
           (DecodeError,), session_target),
    Target("handshake04", "ygg.links.handshake: decode_meta, check_remote_key",
           (DecodeError,), handshake04_target),
    Target("handshake05", "ygg.v05.handshake: sniff_version, decode_meta, check_meta",
           (DecodeError,), handshake05_target),
    Target("uri", "ygg.links.uri: parse_peer_uri, parse_listen_uri (LinkURIError)",
           (LinkURIError,), uri_target),
    Target("config", "ygg.config.parse (ConfigError)", (ConfigError,), config_target),
    Target("admin-json", "ygg.admin.json_socket.AdminProtocol on a Node in memory",
           (), admin_json_target),
    Target("admin-amp", "ygg.admin.amp.AdminAMP on a Node in memory", (), amp_target),
    Target("dns", "meshname: wire.read_request, the server factory, UDP and TCP",
           (), dns_target),
)  # fmt: skip
BY_NAME = {t.name: t for t in TARGETS}
