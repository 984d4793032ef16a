"""Every ironwood v0.5 link packet, encoded and decoded (docs/spec-v05.md §3-§4).

A link carries frames ``uv(len) ‖ body`` and a body is ``type ‖ payload``.  Unlike v0.4,
every varint is strict: a truncated or overflowing one is a decode error, and so is any
byte left over after a packet's last field (traffic excepted: its payload is the rest).
Non-minimal varints are accepted, as Go accepts them; signed bytes are always rebuilt from
the decoded values, never taken from the wire.  Decoders raise only
:class:`~ygg.errors.DecodeError`; signatures are checked by the caller with the messages
built here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from ygg.errors import DecodeError

(
    DUMMY,
    KEEPALIVE,
    SIG_REQ,
    SIG_RES,
    ANNOUNCE,
    BLOOM,
    PATH_LOOKUP,
    PATH_NOTIFY,
    PATH_BROKEN,
    TRAFFIC,
) = range(10)

TYPE_NAMES = (
    "dummy",
    "keepAlive",
    "sigReq",
    "sigRes",
    "announce",
    "bloom",
    "pathLookup",
    "pathNotify",
    "pathBroken",
    "traffic",
)

KEY_SIZE = 32
SIG_SIZE = 64
MAX_UINT64 = (1 << 64) - 1
WATERMARK_NONE = MAX_UINT64  # a fresh packet's watermark: no distance seen yet

# yggdrasil sets WithPeerMaxMessageSize(65535*2); ironwood's own default is 1 MiB.
MAX_MESSAGE_SIZE = 131070
IRONWOOD_DEFAULT_MAX_MESSAGE_SIZE = 1048576
# type ‖ empty path ‖ empty from ‖ source ‖ dest ‖ uv(WATERMARK_NONE)
TRAFFIC_OVERHEAD = 1 + 1 + 1 + KEY_SIZE + KEY_SIZE + 10
NETWORK_MTU = MAX_MESSAGE_SIZE - TRAFFIC_OVERHEAD  # 130993

KEEPALIVE_FRAME = b"\x01\x01"

# Bloom filter wire format: 128 64-bit words, two 16-byte flag maps, then the mixed words.
BLOOM_WORDS = 128
BLOOM_FLAG_BYTES = BLOOM_WORDS // 8
BLOOM_BITS = BLOOM_WORDS * 64  # 8192
_ALL_ONES = MAX_UINT64
_WORDS_LE = struct.Struct(f"<{BLOOM_WORDS}Q")
_U64BE = struct.Struct(">Q")

_BYTE = [bytes((i,)) for i in range(256)]

Verify = Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature) -> ok
Signer = Callable[[bytes], bytes]


# -- varints and paths ------------------------------------------------------------------------


def put_uvarint(value: int) -> bytes:
    """``value`` as Go ``binary.AppendUvarint`` writes it (1-10 bytes)."""
    if 0 <= value < 0x80:
        return _BYTE[value]
    if 0 < value < 0x4000:  # every frame length at IfMTU 1280: one per packet
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if not 0 <= value <= MAX_UINT64:
        raise ValueError(f"a uvarint holds 0..2**64-1, not {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def get_uvarint(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """(value, position after it) of the varint at ``buf[pos:end]``; ironwood's wireChopUint.

    A truncated or overflowing varint is an error, not a value (v0.4 read it as 0).
    """
    if pos >= end:
        raise DecodeError(f"{what}: missing varint")
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = 0
    shift = 0
    for i in range(10):
        if pos + i >= end:
            raise DecodeError(f"{what}: truncated varint")
        b = buf[pos + i]
        if b < 0x80:
            if i == 9 and b > 1:
                break
            return result | (b << shift), pos + i + 1
        result |= (b & 0x7F) << shift
        shift += 7
    raise DecodeError(f"{what}: varint overflows 64 bits")


def put_path(ports: Iterable[int]) -> bytes:
    """``uv(p1) ‖ … ‖ uv(pn) ‖ 00``: a path always ends with a 0, which is never a port."""
    out = bytearray()
    for port in ports:
        if port == 0:
            raise ValueError("a path holds ports 1..2**64-1; 0 ends it")
        out += put_uvarint(port)
    out.append(0)
    return bytes(out)


def get_path(buf: bytes, pos: int, end: int, what: str) -> tuple[tuple[int, ...], int]:
    """The ports up to the terminating 0 (not included) and the position after it."""
    ports = []
    while True:
        if pos < end and buf[pos] < 0x80:  # nearly every port: one byte
            port = buf[pos]
            pos += 1
        else:
            port, pos = get_uvarint(buf, pos, end, what)
        if port == 0:
            return tuple(ports), pos
        ports.append(port)


def _key(buf: bytes, pos: int, end: int, what: str) -> bytes:
    if end - pos < KEY_SIZE:
        raise DecodeError(f"{what}: too short for a key")
    return buf[pos : pos + KEY_SIZE]


def _sig(buf: bytes, pos: int, end: int, what: str) -> bytes:
    if end - pos < SIG_SIZE:
        raise DecodeError(f"{what}: too short for a signature")
    return buf[pos : pos + SIG_SIZE]


def _done(pos: int, end: int, what: str) -> None:
    if pos != end:
        raise DecodeError(f"{what}: {end - pos} bytes after the last field")


def _need(value: bytes, size: int, what: str) -> None:
    # Go's fields are fixed arrays: another size would misalign the peer's decoder.
    if len(value) != size:
        raise ValueError(f"{what} is {size} bytes, not {len(value)}")


def _uint64(value: int, what: str) -> None:
    if not 0 <= value <= MAX_UINT64:
        raise ValueError(f"{what} is a uint64, not {value}")


def sig_message(node: bytes, parent: bytes, seq: int, nonce: int, port: int) -> bytes:
    """What both signatures of a tree announcement cover (spec §4.3).

    ``node`` ‖ ``parent`` ‖ uv(seq) ‖ uv(nonce) ‖ uv(port): the parent signs it in its sig
    response, the node in its announcement; a root signs it with node = parent, port 0.
    """
    return b"".join((node, parent, put_uvarint(seq), put_uvarint(nonce), put_uvarint(port)))


# -- packets ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dummy:
    """Type 0: ignored by the receiver, whatever it holds."""

    TYPE: ClassVar[int] = DUMMY
    payload: bytes = b""

    def encode(self) -> bytes:
        return bytes(self.payload)

    @classmethod
    def decode(cls, payload: bytes) -> Dummy:
        return cls(bytes(payload))


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Type 1: "I am here", sent 1 s after receiving traffic if nothing else was sent."""

    TYPE: ClassVar[int] = KEEPALIVE
    payload: bytes = b""  # Go sends none and ignores any

    def encode(self) -> bytes:
        return bytes(self.payload)

    @classmethod
    def decode(cls, payload: bytes) -> KeepAlive:
        return cls(bytes(payload))


@dataclass(frozen=True, slots=True)
class SigReq:
    """Type 2: asks a peer to sign us as its child; ``seq`` is our next tree seq."""

    TYPE: ClassVar[int] = SIG_REQ
    seq: int
    nonce: int

    def __post_init__(self) -> None:
        _uint64(self.seq, "seq")
        _uint64(self.nonce, "nonce")

    def encode(self) -> bytes:
        return put_uvarint(self.seq) + put_uvarint(self.nonce)

    @classmethod
    def decode(cls, payload: bytes) -> SigReq:
        buf = bytes(payload)
        end = len(buf)
        seq, pos = get_uvarint(buf, 0, end, "sig req")
        nonce, pos = get_uvarint(buf, pos, end, "sig req")
        _done(pos, end, "sig req")
        return cls(seq, nonce)


@dataclass(frozen=True, slots=True)
class SigRes:
    """Type 3: the request echoed, the signer's port for us, and its signature ``psig``."""

    TYPE: ClassVar[int] = SIG_RES
    seq: int
    nonce: int
    port: int
    psig: bytes

    def __post_init__(self) -> None:
        _uint64(self.seq, "seq")
        _uint64(self.nonce, "nonce")
        _uint64(self.port, "port")
        _need(self.psig, SIG_SIZE, "psig")

    @property
    def req(self) -> SigReq:
        return SigReq(self.seq, self.nonce)

    def message(self, node: bytes, parent: bytes) -> bytes:
        """The bytes ``parent`` (the responder) signed for ``node`` (the requester)."""
        return sig_message(node, parent, self.seq, self.nonce, self.port)

    def check(self, node: bytes, parent: bytes, verify: Verify) -> bool:
        return verify(parent, self.message(node, parent), self.psig)

    def encode(self) -> bytes:
        return b"".join(
            (put_uvarint(self.seq), put_uvarint(self.nonce), put_uvarint(self.port), self.psig)
        )

    @classmethod
    def decode(cls, payload: bytes) -> SigRes:
        buf = bytes(payload)
        return _sig_res_at(buf, 0, len(buf), "sig res", exact=True)[0]


def _sig_res_at(buf: bytes, pos: int, end: int, what: str, exact: bool) -> tuple[SigRes, int]:
    seq, pos = get_uvarint(buf, pos, end, what)
    nonce, pos = get_uvarint(buf, pos, end, what)
    port, pos = get_uvarint(buf, pos, end, what)
    psig = _sig(buf, pos, end, what)
    pos += SIG_SIZE
    if exact:
        _done(pos, end, what)
    return SigRes(seq, nonce, port, psig), pos


@dataclass(frozen=True, slots=True)
class Announce:
    """Type 4: ``key``'s tree entry: its ``parent``, the parent's response, its signature."""

    TYPE: ClassVar[int] = ANNOUNCE
    key: bytes
    parent: bytes
    seq: int
    nonce: int
    port: int
    psig: bytes
    sig: bytes

    def __post_init__(self) -> None:
        _need(self.key, KEY_SIZE, "announce key")
        _need(self.parent, KEY_SIZE, "announce parent")
        _uint64(self.seq, "seq")
        _uint64(self.nonce, "nonce")
        _uint64(self.port, "port")
        _need(self.psig, SIG_SIZE, "psig")
        _need(self.sig, SIG_SIZE, "sig")

    @classmethod
    def from_res(cls, key: bytes, parent: bytes, res: SigRes, sig: bytes) -> Announce:
        return cls(key, parent, res.seq, res.nonce, res.port, res.psig, sig)

    @property
    def res(self) -> SigRes:
        return SigRes(self.seq, self.nonce, self.port, self.psig)

    def message(self) -> bytes:
        return sig_message(self.key, self.parent, self.seq, self.nonce, self.port)

    def is_root(self) -> bool:
        return self.key == self.parent

    def check(self, verify: Verify) -> bool:
        """Go's receive check (a failure closes the link): port 0 only for a root, then
        ``sig`` by ``key`` and ``psig`` by ``parent`` over :meth:`message`."""
        if self.port == 0 and self.key != self.parent:
            return False
        message = self.message()
        return verify(self.key, message, self.sig) and verify(self.parent, message, self.psig)

    def encode(self) -> bytes:
        return b"".join((self.key, self.parent, self.res.encode(), self.sig))

    @classmethod
    def decode(cls, payload: bytes) -> Announce:
        buf = bytes(payload)
        end = len(buf)
        key = _key(buf, 0, end, "announce")
        parent = _key(buf, KEY_SIZE, end, "announce")
        res, pos = _sig_res_at(buf, 2 * KEY_SIZE, end, "announce", exact=False)
        sig = _sig(buf, pos, end, "announce")
        _done(pos + SIG_SIZE, end, "announce")
        return cls.from_res(key, parent, res, sig)


@dataclass(frozen=True, slots=True)
class Bloom:
    """Type 5: a peer's 8192-bit filter; bit i of ``bits`` is bit i of the filter.

    Bit i lives in 64-bit word i // 64 at position i % 64 (least significant first), as
    in the Go bitset.  On the wire: a 16-byte map of all-zero words, a 16-byte map of
    all-one words (word i is bit 0x80 >> i % 8 of byte i // 8), then every other word as
    u64be in order.  Hashing keys into the bits is :mod:`ygg.v05.network.bloom`'s job.
    """

    TYPE: ClassVar[int] = BLOOM
    bits: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.bits < 1 << BLOOM_BITS:
            raise ValueError("a bloom filter holds 8192 bits")

    def words(self) -> tuple[int, ...]:
        return _WORDS_LE.unpack(self.bits.to_bytes(BLOOM_BITS // 8, "little"))

    @classmethod
    def from_words(cls, words: Iterable[int]) -> Bloom:
        return cls(int.from_bytes(_WORDS_LE.pack(*words), "little"))

    def encode(self) -> bytes:
        zeros = bytearray(BLOOM_FLAG_BYTES)
        ones = bytearray(BLOOM_FLAG_BYTES)
        kept = bytearray()
        for i, word in enumerate(self.words()):
            if word == 0:
                zeros[i >> 3] |= 0x80 >> (i & 7)
            elif word == _ALL_ONES:
                ones[i >> 3] |= 0x80 >> (i & 7)
            else:
                kept += _U64BE.pack(word)
        return bytes(zeros + ones + kept)

    @classmethod
    def decode(cls, payload: bytes) -> Bloom:
        buf = bytes(payload)
        end = len(buf)
        if end < 2 * BLOOM_FLAG_BYTES:
            raise DecodeError("bloom: too short for the flags")
        pos = 2 * BLOOM_FLAG_BYTES
        words = []
        for i in range(BLOOM_WORDS):
            mask = 0x80 >> (i & 7)
            zero = buf[i >> 3] & mask
            one = buf[BLOOM_FLAG_BYTES + (i >> 3)] & mask
            if zero and one:
                raise DecodeError(f"bloom: word {i} flagged both all-zero and all-one")
            if zero:
                words.append(0)
            elif one:
                words.append(_ALL_ONES)
            else:
                if end - pos < 8:
                    raise DecodeError("bloom: too few words")
                words.append(_U64BE.unpack_from(buf, pos)[0])
                pos += 8
        _done(pos, end, "bloom")
        return cls.from_words(words)


@dataclass(frozen=True, slots=True)
class PathLookup:
    """Type 6: ``source`` looks for ``dest`` (a key transformed for the blooms, or partial);
    ``from_path`` are the source's tree coords, for the notify to come back along."""

    TYPE: ClassVar[int] = PATH_LOOKUP
    source: bytes
    dest: bytes
    from_path: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _need(self.source, KEY_SIZE, "lookup source")
        _need(self.dest, KEY_SIZE, "lookup dest")

    def encode(self) -> bytes:
        return self.source + self.dest + put_path(self.from_path)

    @classmethod
    def decode(cls, payload: bytes) -> PathLookup:
        buf = bytes(payload)
        end = len(buf)
        source = _key(buf, 0, end, "path lookup")
        dest = _key(buf, KEY_SIZE, end, "path lookup")
        path, pos = get_path(buf, 2 * KEY_SIZE, end, "path lookup")
        _done(pos, end, "path lookup")
        return cls(source, dest, path)


@dataclass(frozen=True, slots=True)
class PathNotifyInfo:
    """The signed part of a notify: the notifier's coords ``path`` at time ``seq``."""

    seq: int
    path: tuple[int, ...]
    sig: bytes

    def __post_init__(self) -> None:
        _uint64(self.seq, "seq")
        _need(self.sig, SIG_SIZE, "notify signature")

    @staticmethod
    def signed_bytes(seq: int, path: Iterable[int]) -> bytes:
        return put_uvarint(seq) + put_path(path)

    @classmethod
    def signed(cls, sign: Signer, seq: int, path: Iterable[int]) -> PathNotifyInfo:
        path = tuple(path)
        return cls(seq, path, sign(cls.signed_bytes(seq, path)))

    def message(self) -> bytes:
        return self.signed_bytes(self.seq, self.path)

    def encode(self) -> bytes:
        return self.message() + self.sig


@dataclass(frozen=True, slots=True)
class PathNotify:
    """Type 7: ``source`` (the looked-up node) tells ``dest`` (the looker) its coords,
    routed by tree distance towards ``path`` (the looker's coords)."""

    TYPE: ClassVar[int] = PATH_NOTIFY
    path: tuple[int, ...]
    watermark: int
    source: bytes
    dest: bytes
    info: PathNotifyInfo

    def __post_init__(self) -> None:
        _uint64(self.watermark, "watermark")
        _need(self.source, KEY_SIZE, "notify source")
        _need(self.dest, KEY_SIZE, "notify dest")

    def check(self, verify: Verify) -> bool:
        return verify(self.source, self.info.message(), self.info.sig)

    def with_watermark(self, watermark: int) -> PathNotify:
        return PathNotify(self.path, watermark, self.source, self.dest, self.info)

    def encode(self) -> bytes:
        return b"".join(
            (
                put_path(self.path),
                put_uvarint(self.watermark),
                self.source,
                self.dest,
                self.info.encode(),
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> PathNotify:
        buf = bytes(payload)
        end = len(buf)
        path, pos = get_path(buf, 0, end, "path notify")
        watermark, pos = get_uvarint(buf, pos, end, "path notify")
        source = _key(buf, pos, end, "path notify")
        dest = _key(buf, pos + KEY_SIZE, end, "path notify")
        seq, pos = get_uvarint(buf, pos + 2 * KEY_SIZE, end, "path notify")
        coords, pos = get_path(buf, pos, end, "path notify")
        sig = _sig(buf, pos, end, "path notify")
        _done(pos + SIG_SIZE, end, "path notify")
        return cls(path, watermark, source, dest, PathNotifyInfo(seq, coords, sig))


@dataclass(frozen=True, slots=True)
class PathBroken:
    """Type 8: traffic from ``source`` to ``dest`` hit a dead end; routed back towards
    ``path`` (the traffic's ``from_path``, the source's coords).  Unsigned."""

    TYPE: ClassVar[int] = PATH_BROKEN
    path: tuple[int, ...]
    watermark: int
    source: bytes
    dest: bytes

    def __post_init__(self) -> None:
        _uint64(self.watermark, "watermark")
        _need(self.source, KEY_SIZE, "broken source")
        _need(self.dest, KEY_SIZE, "broken dest")

    def with_watermark(self, watermark: int) -> PathBroken:
        return PathBroken(self.path, watermark, self.source, self.dest)

    def encode(self) -> bytes:
        return b"".join((put_path(self.path), put_uvarint(self.watermark), self.source, self.dest))

    @classmethod
    def decode(cls, payload: bytes) -> PathBroken:
        buf = bytes(payload)
        end = len(buf)
        path, pos = get_path(buf, 0, end, "path broken")
        watermark, pos = get_uvarint(buf, pos, end, "path broken")
        source = _key(buf, pos, end, "path broken")
        dest = _key(buf, pos + KEY_SIZE, end, "path broken")
        _done(pos + 2 * KEY_SIZE, end, "path broken")
        return cls(path, watermark, source, dest)


@dataclass(frozen=True, slots=True)
class Traffic:
    """Type 9: ``payload`` from ``source`` to ``dest``, routed by tree distance towards the
    coords ``path``; ``from_path`` are the source's coords (for a path-broken reply)."""

    TYPE: ClassVar[int] = TRAFFIC
    path: tuple[int, ...]
    from_path: tuple[int, ...]
    source: bytes
    dest: bytes
    watermark: int
    payload: bytes

    def __post_init__(self) -> None:
        _need(self.source, KEY_SIZE, "traffic source")
        _need(self.dest, KEY_SIZE, "traffic dest")
        _uint64(self.watermark, "watermark")

    def with_watermark(self, watermark: int) -> Traffic:
        return Traffic(self.path, self.from_path, self.source, self.dest, watermark, self.payload)

    def encode(self) -> bytes:
        return b"".join(
            (
                put_path(self.path),
                put_path(self.from_path),
                self.source,
                self.dest,
                put_uvarint(self.watermark),
                self.payload,
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> Traffic:
        buf = bytes(payload)
        path, from_path, source, dest, watermark, pos = _traffic_at(buf, 0, len(buf))
        return cls(path, from_path, source, dest, watermark, buf[pos:])


def _traffic_at(
    buf: bytes, pos: int, end: int
) -> tuple[tuple[int, ...], tuple[int, ...], bytes, bytes, int, int]:
    path, pos = get_path(buf, pos, end, "traffic")
    from_path, pos = get_path(buf, pos, end, "traffic")
    if end - pos < 2 * KEY_SIZE:
        raise DecodeError("traffic: too short for the keys")
    source = bytes(buf[pos : pos + KEY_SIZE])
    dest = bytes(buf[pos + KEY_SIZE : pos + 2 * KEY_SIZE])
    watermark, pos = get_uvarint(buf, pos + 2 * KEY_SIZE, end, "traffic")
    return path, from_path, source, dest, watermark, pos


Packet = (
    Dummy
    | KeepAlive
    | SigReq
    | SigRes
    | Announce
    | Bloom
    | PathLookup
    | PathNotify
    | PathBroken
    | Traffic
)

_DECODERS: tuple[Callable[[bytes], Packet], ...] = (
    Dummy.decode,
    KeepAlive.decode,
    SigReq.decode,
    SigRes.decode,
    Announce.decode,
    Bloom.decode,
    PathLookup.decode,
    PathNotify.decode,
    PathBroken.decode,
    Traffic.decode,
)


def encode_body(packet: Packet) -> bytes:
    """``type ‖ payload`` of a packet."""
    return _BYTE[packet.TYPE] + packet.encode()


def decode_body(body: bytes) -> Packet:
    """The packet in a frame body.  An unknown type byte closes the link in Go
    (ErrUnrecognizedMessage), an empty body too (ErrEmptyMessage)."""
    if not body:
        raise DecodeError("empty message")
    ptype = body[0]
    if ptype >= len(_DECODERS):
        raise DecodeError(f"unrecognized message type {ptype}")
    return _DECODERS[ptype](memoryview(body)[1:])


# -- traffic on the forwarding path -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafficHeader:
    """The routing fields of a type-9 body; the payload is ``body[payload_offset:]``."""

    path: tuple[int, ...]
    from_path: tuple[int, ...]
    source: bytes
    dest: bytes
    watermark: int
    payload_offset: int


def traffic_header(body: bytes) -> TrafficHeader:
    """Decode the header of a whole traffic body (type byte included) without copying the
    payload; DecodeError if malformed."""
    end = len(body)
    if not end or body[0] != TRAFFIC:
        raise DecodeError("traffic: not a traffic body")
    return TrafficHeader(*_traffic_at(body, 1, end))


def traffic_body(
    path: Iterable[int],
    from_path: Iterable[int],
    source: bytes,
    dest: bytes,
    watermark: int,
    payload: bytes,
) -> bytes:
    """A whole type-9 body, built the way Go re-encodes traffic at every hop."""
    return b"".join(
        (
            b"\x09",
            put_path(path),
            put_path(from_path),
            source,
            dest,
            put_uvarint(watermark),
            payload,
        )
    )


def split_traffic(body: bytes) -> tuple[int, int, int, int] | None:
    """The per-packet decode of a whole traffic body whose ports are all one byte (ports
    number a node's links, so nearly every body): ``(p, f, watermark, payload_offset)``
    where ``body[1:p]`` are the path's ports and ``body[p]`` its 0, ``body[p + 1:f]`` the
    from path's, the source key is at ``f + 1`` and the dest key at ``f + 33``.  None for
    any other body: :func:`traffic_header` then decodes it or says what is wrong.

    One-byte ports are their own canonical encoding, so a forwarded body may keep the
    bytes up to its watermark (:func:`with_watermark`) where Go re-encodes them.
    """
    if type(body) is not bytes or not body or body[0] != TRAFFIC:
        return None
    p = body.find(0, 1)
    if p < 0:
        return None
    f = body.find(0, p + 1)
    if f < 0 or not body[1:f].isascii():
        return None
    at = f + 1 + 2 * KEY_SIZE  # the watermark
    end = len(body)
    if at >= end:
        return None
    watermark = body[at]
    if watermark < 0x80:
        return p, f, watermark, at + 1
    watermark, pos = get_uvarint(body, at, end, "traffic")
    return p, f, watermark, pos


def with_watermark(body: bytes, at: int, payload_offset: int, watermark: int) -> bytes:
    """A traffic body whose routing fields end at ``at`` (its keys' end), sent on with
    ``watermark``: the bytes Go re-encodes when every port is one byte."""
    view = memoryview(body)
    return b"".join((view[:at], put_uvarint(watermark), view[payload_offset:]))


def reroute_traffic(body: bytes, header: TrafficHeader, watermark: int) -> bytes:
    """The body to forward: the same traffic with the watermark this hop lowered it to."""
    return traffic_body(
        header.path,
        header.from_path,
        header.source,
        header.dest,
        watermark,
        memoryview(body)[header.payload_offset :],
    )


# -- framing ----------------------------------------------------------------------------------


def frame(body: bytes, max_size: int = MAX_MESSAGE_SIZE) -> bytes:
    """``uv(len) ‖ body``.  Go silently drops a body over the limit: so must the caller."""
    size = len(body)
    if not 0 < size <= max_size:
        raise ValueError(f"a frame body is 1-{max_size} bytes, not {size}")
    return put_uvarint(size) + body


def _length_at(buf: bytes | bytearray, pos: int, end: int) -> tuple[int, int]:
    """A frame length as Go's binary.ReadUvarint reads it: (value, position after it),
    (0, 0) while incomplete, (0, -1) on overflow."""
    result = 0
    for i in range(10):
        if pos + i >= end:
            return 0, 0
        b = buf[pos + i]
        if b < 0x80:
            if i == 9 and b > 1:
                return 0, -1
            return result | (b << (7 * i)), pos + i + 1
        result |= (b & 0x7F) << (7 * i)
    return 0, -1


class FrameError(DecodeError):
    """A broken length prefix; ``bodies`` are the complete frames that came before it."""

    def __init__(self, message: str, bodies: list[bytes]) -> None:
        super().__init__(message)
        self.bodies = bodies


class FrameReader:
    """Splits one link's byte stream into frame bodies (spec §3.1).

    Holds at most one incomplete frame (≤ ``max_size`` + 10 bytes).  A zero length, a
    length over ``max_size`` or an overflowing length varint raises :class:`FrameError`,
    and the reader stays broken: Go closes the link.

    A frame split across reads (every one at 64 KiB) is held as views of the chunks it
    came in (kept alive with them) and joined once when complete: one copy of its body,
    as for any other frame.
    """

    __slots__ = ("_broken", "_held", "_max", "_need", "_parts", "_prefix")

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._parts: list[memoryview] = []  # the incomplete frame's bytes so far
        self._held = 0  # their length
        self._need = 0  # the whole frame's length with its prefix; 0 while that is cut
        self._prefix = 0  # the length of that prefix
        self._broken = False
        self._max = max_size

    def pending(self) -> int:
        """Bytes held for a frame not yet complete."""
        return self._held

    def _fail(self, message: str, bodies: list[bytes]) -> FrameError:
        self._broken = True
        self._parts = []
        self._held = self._need = 0
        return FrameError(message, bodies)

    def feed(self, data: bytes) -> list[bytes]:
        if self._broken:
            raise FrameError("stream already failed", [])
        if type(data) is not bytes:
            data = bytes(data)
        bodies: list[bytes] = []
        parts = self._parts
        pos = 0
        src = data
        if parts:
            held = self._held + len(data)
            need = self._need
            if need and held < need:
                parts.append(memoryview(data))
                self._held = held
                return bodies
            if need:  # the held frame ends in this chunk: its body in one join
                pos = len(data) - (held - need)
                parts[0] = parts[0][self._prefix :]
                parts.append(memoryview(data)[:pos])
                bodies.append(b"".join(parts))
            else:  # the length itself was cut (rare): parse the held bytes and these
                parts.append(memoryview(data))
                src = b"".join(parts)
            self._parts = parts = []
            self._held = self._need = 0
        view = memoryview(src)
        end = len(src)
        while pos < end:
            size = src[pos]
            if size < 0x80:
                start = pos + 1
            elif pos + 1 < end and src[pos + 1] < 0x80:  # two bytes: up to 16383
                size = (size & 0x7F) | (src[pos + 1] << 7)
                start = pos + 2
            else:
                size, start = _length_at(src, pos, end)
                if start < 0:
                    raise self._fail("binary: varint overflows a 64-bit integer", bodies)
                if start == 0:
                    break  # the rest of the length is still on its way
            if size == 0:
                raise self._fail("empty message", bodies)
            if size > self._max:
                raise self._fail("oversized message", bodies)
            if end - start < size:
                self._prefix = start - pos
                self._need = self._prefix + size
                break
            bodies.append(bytes(view[start : start + size]))
            pos = start + size
        if pos < end:
            parts.append(view[pos:])
            self._held = end - pos
        return bodies
